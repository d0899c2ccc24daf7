"""The SDK with a service key, against the live service: the key on every check, and the
revocation feed that evicts cached answers. The guards here run on a clock that never
moves, so a cached answer would be served forever: only the feed can take it away."""

import hashlib
import time

import psycopg
import pytest
from eqeqo_auth_client import (
    AuthClient,
    AuthUnavailable,
    CursorExpired,
    Forbidden,
    InvalidToken,
    ServiceKeyRejected,
    TokenGuard,
)

SETTLE_SECONDS = 5  # the longest a test waits for the feed to act; it normally takes milliseconds


@pytest.fixture
def service_key(admin):
    """A fresh key of service stock, and its id."""
    created = admin.call("POST", "/services/stock/keys", json={"name": "sdk tests"})
    assert created.status_code == 201, created.text
    return created.json()["key"], created.json()["id"]


@pytest.fixture
def keyed_client(auth_url, service_key):
    with AuthClient(auth_url, service_key=service_key[0]) as client:
        yield client


@pytest.fixture
def guard(keyed_client, clock):
    guard = TokenGuard(keyed_client, clock=clock)
    deadline = time.monotonic() + SETTLE_SECONDS
    while not guard.feed.healthy:
        assert time.monotonic() < deadline, "the guard never started following the feed"
        time.sleep(0.01)
    yield guard
    guard.close()


def refused_soon(guard, token, service="stock", refusal=InvalidToken):
    """Read every 10 ms until the guard refuses; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_SECONDS:
        try:
            guard.authorize(token, service, method="GET")
        except refusal:
            return time.monotonic() - started
        time.sleep(0.01)
    pytest.fail("the cached answer was still served")


def test_checks_carry_the_key(keyed_client, alice_token):
    assert keyed_client.check_token(alice_token, "stock").payload.service == "stock"


def test_a_key_of_another_service_is_refused(keyed_client, alice_token):
    with pytest.raises(Exception, match="own service") as refused:
        keyed_client.check_token(alice_token, "sales")
    assert refused.value.status == 403


def test_a_wrong_key_fails_closed_as_unavailable(auth_url, alice_token):
    with AuthClient(auth_url, service_key="eqsk_wrong") as client, pytest.raises(ServiceKeyRejected) as refused:
        client.check_token(alice_token, "stock")
    assert isinstance(refused.value, AuthUnavailable)


def test_the_feed_pages_from_its_head(keyed_client, auth_client, alice):
    cursor = keyed_client.revocations().cursor
    token = auth_client.login(alice.username, alice.password).token
    auth_client.logout(token)
    page = keyed_client.revocations(cursor)
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert digest in [e.token_hash for e in page.events if e.kind == "token"]
    assert page.cursor != cursor and page.more is False


def test_a_logout_evicts_the_cached_read_at_once(guard, auth_client, alice):
    token = auth_client.login(alice.username, alice.password).token
    assert guard.authorize(token, "stock", method="GET").username == "alice"
    auth_client.logout(token)
    assert refused_soon(guard, token) < SETTLE_SECONDS


def test_without_a_key_the_cached_read_outlives_the_logout(auth_url, auth_client, alice, clock):
    """The behaviour the feed fixes: the answer stays for the whole window."""
    with AuthClient(auth_url) as plain:
        guard = TokenGuard(plain, clock=clock)
        assert guard.feed is None
        token = auth_client.login(alice.username, alice.password).token
        guard.authorize(token, "stock", method="GET")
        auth_client.logout(token)
        time.sleep(0.5)
        assert guard.authorize(token, "stock", method="GET").username == "alice"


def test_taking_a_users_role_evicts_his_answers(guard, admin, auth_url):
    clerk = admin.create_user(service="stock", role="clerk")
    with AuthClient(auth_url) as client:
        token = client.login(clerk.username, clerk.password).token
    guard.authorize(token, "stock", method="GET")
    role = admin.find_id("/roles", "clerk")
    body = {"user_id": clerk.id, "service_id": "stock", "role_id": role}
    assert admin.call("DELETE", "/person-service-roles", json=body).status_code == 204
    assert refused_soon(guard, token, refusal=Forbidden) < SETTLE_SECONDS


def test_changing_a_roles_permissions_evicts_the_services_answers(guard, admin, auth_url):
    role = admin.stock_writer_role()
    clerk = admin.create_user(service="stock", role=role)
    with AuthClient(auth_url) as client:
        token = client.login(clerk.username, clerk.password).token
    assert "stock.write" in guard.authorize(token, "stock", method="GET").permissions
    link = {"role_id": admin.find_id("/roles", role), "permission_id": admin.find_id("/permissions", "stock.write")}
    assert admin.call("DELETE", "/role-permissions", json=link).status_code == 204
    deadline = time.monotonic() + SETTLE_SECONDS
    while "stock.write" in guard.authorize(token, "stock", method="GET").permissions:
        assert time.monotonic() < deadline, "the old permissions were still served"
        time.sleep(0.01)


def test_a_lost_feed_empties_the_cache_and_fails_closed(guard, admin, auth_client, alice, service_key):
    token = auth_client.login(alice.username, alice.password).token
    guard.authorize(token, "stock", method="GET")
    assert admin.call("DELETE", f"/services/stock/keys/{service_key[1]}").status_code == 204
    assert refused_soon(guard, token, refusal=AuthUnavailable) < SETTLE_SECONDS
    assert not guard.feed.healthy


def test_an_expired_cursor_empties_the_cache_and_restarts_from_the_head(
    guard, keyed_client, auth_client, alice, postgres
):
    url = postgres.url("auth_live")
    token = auth_client.login(alice.username, alice.password).token
    guard.authorize(token, "stock", method="GET")
    cursor = keyed_client.revocations().cursor
    with psycopg.connect(url, autocommit=True) as conn:
        saved = conn.execute("select txid, id from auth.revocations_horizon").fetchone()
        # As a purge would leave it: every event up to now gone.
        conn.execute(
            "update auth.revocations_horizon set txid = pg_current_xact_id(), id = (select coalesce(max(id), 0) + 1"
            " from auth.revocations)"
        )
        try:
            with pytest.raises(CursorExpired):
                keyed_client.revocations(cursor)
            auth_client.login(alice.username, alice.password)  # something for the feed to say
            deadline = time.monotonic() + SETTLE_SECONDS
            while len(guard._cache):
                assert time.monotonic() < deadline, "the cache was not emptied"
                time.sleep(0.01)
        finally:
            conn.execute("update auth.revocations_horizon set txid = %s, id = %s", saved)
    deadline = time.monotonic() + SETTLE_SECONDS + 25
    while not guard.feed.healthy:
        assert time.monotonic() < deadline, "the guard did not follow again"
        time.sleep(0.05)
