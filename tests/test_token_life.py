"""Token life: sliding TTL, renewal at most once per threshold, the absolute cap, every revocation
path, and the hot path's cost (one statement, one round trip, no write while fresh)."""

import hashlib
import re
import time

import psycopg
import pytest

from tests.fixtures import DEMO, db_rows

TTL, THRESHOLD, MAX_LIFETIME = 60, 10, 600


@pytest.fixture
def short_app(app_factory):
    """Short lifetimes, so ageing a row by seconds crosses each boundary."""
    return app_factory(
        TOKEN_TTL_SECONDS=TTL, TOKEN_RENEW_THRESHOLD_SECONDS=THRESHOLD, TOKEN_MAX_LIFETIME_SECONDS=MAX_LIFETIME
    )


@pytest.fixture
def client(short_app):
    return short_app.test_client()


def login(client, username="alice", password=None):
    response = client.post("/auth/login", json={"username": username, "password": password or DEMO[username]})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["token"]


def digest(token):
    return hashlib.sha256(token.encode()).digest()


class Rows:
    """The token rows of the test database, read and aged directly."""

    def __init__(self, url):
        self.url = url

    def get(self, token):
        """modified_at and created_at as Unix seconds, and xmin (changes with every write)."""
        found = db_rows(
            self.url,
            "select extract(epoch from modified_at)::float8 as modified_at,"
            " extract(epoch from created_at)::float8 as created_at, xmin::text as xmin,"
            " extract(epoch from now())::float8 as now"
            " from auth.tokens_cache where token_hash = %s",
            [digest(token)],
        )
        return found[0] if found else None

    def age(self, token, modified=0, created=None):
        """Move modified_at (and created_at) that many seconds into the past, and the deadline with
        them, as the server would have set it then."""
        created = modified if created is None else created
        db_rows(
            self.url,
            "update auth.tokens_cache set modified_at = now() - make_interval(secs => %(modified)s),"
            " created_at = now() - make_interval(secs => %(created)s),"
            " expires_at = least(now() - make_interval(secs => %(modified)s) + make_interval(secs => %(ttl)s),"
            "                    now() - make_interval(secs => %(created)s) + make_interval(secs => %(cap)s))"
            " where token_hash = %(hash)s",
            {"modified": modified, "created": created, "ttl": TTL, "cap": MAX_LIFETIME, "hash": digest(token)},
        )

    def of_user(self, username):
        return db_rows(
            self.url,
            "select count(*) as n from auth.tokens_cache t join auth.users u on u.id = t.user_id where u.username = %s",
            [username],
        )[0]["n"]


@pytest.fixture
def rows(test_database):
    return Rows(test_database)


def check(client, token, service="stock", **extra):
    return client.post("/check-token", json={"token": token, "service_id": service, **extra})


def profile(client, token):
    return client.get("/auth/profile", headers={"token": token})


USES = {"check-token": check, "profile": profile}


# --- sliding TTL ---------------------------------------------------------------------


@pytest.mark.parametrize("use", USES.values(), ids=USES.keys())
def test_token_lives_until_ttl_after_its_last_renewal(client, rows, use):
    token = login(client)
    rows.age(token, modified=TTL - 3)
    assert use(client, token).status_code == 200

    other = login(client)
    rows.age(other, modified=TTL + 1)
    response = use(client, other)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    # The expired row was not brought back to life by the attempt.
    assert rows.get(other)["modified_at"] < rows.get(other)["now"] - TTL


@pytest.mark.parametrize("use", USES.values(), ids=USES.keys())
def test_use_after_the_threshold_renews_once(client, rows, use):
    token = login(client)
    rows.age(token, modified=THRESHOLD + 10)
    aged = rows.get(token)

    first = use(client, token)

    assert first.status_code == 200
    assert first.get_json()["renewed"] is True
    renewed = rows.get(token)
    assert renewed["xmin"] != aged["xmin"]
    assert abs(renewed["modified_at"] - renewed["now"]) < 2
    # expires_at moved from modified_at + TTL of the aged row to about now + TTL.
    assert first.get_json()["expires_at"] == int(renewed["modified_at"] + TTL)
    assert first.get_json()["expires_at"] > aged["modified_at"] + TTL + THRESHOLD
    assert TTL - 2 <= first.get_json()["expires_in"] <= TTL

    second = use(client, token)

    assert second.get_json()["renewed"] is False
    assert second.get_json()["expires_at"] == first.get_json()["expires_at"]
    assert rows.get(token)["xmin"] == renewed["xmin"]


@pytest.mark.parametrize("use", USES.values(), ids=USES.keys())
def test_use_within_the_threshold_writes_nothing(client, rows, use):
    token = login(client)
    rows.age(token, modified=THRESHOLD - 3)
    before = rows.get(token)

    response = use(client, token)

    assert response.status_code == 200
    assert response.get_json()["renewed"] is False
    after = rows.get(token)
    assert (after["xmin"], after["modified_at"]) == (before["xmin"], before["modified_at"])
    assert response.get_json()["expires_at"] == int(before["modified_at"] + TTL)
    assert TTL - THRESHOLD - 1 <= response.get_json()["expires_in"] <= TTL - THRESHOLD + 3


def test_a_refused_check_does_not_renew(client, rows, test_database):
    token = login(client)
    rows.age(token, modified=THRESHOLD + 10)
    before = rows.get(token)
    bob_id = db_rows(test_database, "select id from auth.users where username = 'bob'")[0]["id"]

    for refused in (
        check(client, token, "manufacturing"),
        check(client, token, "no-such-service"),
        check(client, token, "stock", user_id=bob_id),
        client.get("/users", headers={"token": token}),
    ):
        assert refused.status_code == 403
        assert rows.get(token)["xmin"] == before["xmin"]

    # The same token used within its rights is renewed.
    assert check(client, token).get_json()["renewed"] is True


def test_admin_calls_renew_the_token_too(client, rows):
    token = login(client, "admin")
    rows.age(token, modified=THRESHOLD + 10)
    before = rows.get(token)

    assert client.get("/users", headers={"token": token}).status_code == 200

    after = rows.get(token)
    assert after["xmin"] != before["xmin"]
    assert abs(after["modified_at"] - after["now"]) < 2


def test_a_token_dies_in_real_time(app_factory):
    client = app_factory(TOKEN_TTL_SECONDS=2, TOKEN_RENEW_THRESHOLD_SECONDS=1).test_client()
    token = login(client)
    assert check(client, token).status_code == 200

    time.sleep(2.2)

    assert check(client, token).status_code == 401
    assert profile(client, token).status_code == 401


# --- absolute cap --------------------------------------------------------------------


@pytest.mark.parametrize("use", USES.values(), ids=USES.keys())
def test_no_token_outlives_its_maximum_lifetime(client, rows, use):
    token = login(client)
    rows.age(token, modified=0, created=MAX_LIFETIME + 1)

    response = use(client, token)

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert client.post("/auth/logout-all", headers={"token": token}).status_code == 401


@pytest.mark.parametrize("use", USES.values(), ids=USES.keys())
def test_expiry_never_passes_the_cap_even_when_renewed(client, rows, use):
    token = login(client)
    rows.age(token, modified=THRESHOLD + 10, created=MAX_LIFETIME - 20)

    body = use(client, token).get_json()

    assert body["renewed"] is True
    row = rows.get(token)
    assert body["expires_at"] == int(row["created_at"] + MAX_LIFETIME)
    assert body["expires_in"] <= 20


# --- revocation ----------------------------------------------------------------------


def change_own_password(client, tokens, alice_id):
    return client.put(
        "/auth/password",
        json={"current_password": DEMO["alice"], "new_password": "a-brand-new-secret-21"},
        headers={"token": tokens[0]},
    )


def admin(method, path_for, body=None):
    def act(client, tokens, alice_id):
        headers = {"token": login(client, "admin")}
        return client.open(path_for(alice_id), method=method, json=body, headers=headers)

    return act


REVOCATIONS = {
    "own-password-change": (change_own_password, 200, 1),
    "admin-sets-password": (admin("PUT", lambda i: f"/users/{i}", {"password": "a-brand-new-secret-21"}), 200, 0),
    "admin-disables": (admin("PUT", lambda i: f"/users/{i}", {"active": False}), 200, 0),
    "delete": (admin("DELETE", lambda i: f"/users/{i}"), 204, 0),
    "hard-delete": (admin("DELETE", lambda i: f"/users/{i}?hard=true"), 204, 0),
}


@pytest.mark.parametrize(("action", "status", "kept"), REVOCATIONS.values(), ids=REVOCATIONS.keys())
def test_revocation_kills_every_token_of_the_user_at_once(client, rows, test_database, action, status, kept):
    alice_id = db_rows(test_database, "select id from auth.users where username = 'alice'")[0]["id"]
    tokens = [login(client) for _ in range(3)]
    bob = login(client, "bob")

    response = action(client, tokens, alice_id)

    assert response.status_code == status, response.get_json()
    # PUT /auth/password keeps the caller's own session (tokens[0]); every other path keeps none.
    for token in tokens[:kept]:
        assert check(client, token).status_code == 200
    for token in tokens[kept:]:
        assert check(client, token).status_code == 401
        assert profile(client, token).status_code == 401
        assert rows.get(token) is None
    assert rows.of_user("alice") == kept
    assert check(client, bob, "manufacturing").status_code == 200


def test_enabling_a_user_again_does_not_revive_old_tokens(client, rows, test_database):
    alice_id = db_rows(test_database, "select id from auth.users where username = 'alice'")[0]["id"]
    token = login(client)
    headers = {"token": login(client, "admin")}
    assert client.put(f"/users/{alice_id}", json={"active": False}, headers=headers).status_code == 200
    assert client.put(f"/users/{alice_id}", json={"active": True}, headers=headers).status_code == 200

    assert check(client, token).status_code == 401
    assert check(client, login(client)).status_code == 200


def test_a_disabled_users_surviving_row_opens_nothing(client, test_database):
    """Even a row that escaped revocation is dead once its user is inactive."""
    token = login(client)
    db_rows(test_database, "update auth.users set active = false where username = 'alice'")
    assert check(client, token).status_code == 401
    assert profile(client, token).status_code == 401


# --- the hot path: one statement, one round trip -------------------------------------

TRACE_FLAGS = psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE
FRONTEND_MESSAGE = re.compile(r"^F\t\d+\t(\w+)", re.MULTILINE)


@pytest.fixture
def one_connection_app(app_factory):
    """A pool of exactly one connection, so the traced connection is the one every request uses."""
    return app_factory(
        DB_POOL_MIN_SIZE=1,
        DB_POOL_MAX_SIZE=1,
        TOKEN_TTL_SECONDS=TTL,
        TOKEN_RENEW_THRESHOLD_SECONDS=THRESHOLD,
        TOKEN_MAX_LIFETIME_SECONDS=MAX_LIFETIME,
    )


def traced(app, path, send):
    """Send one request with libpq tracing on the pool's only connection; the response and
    the names of the messages the app sent to the server."""
    pool = app.extensions["db_pool"]
    with path.open("w") as trace:
        with pool.connection() as conn:
            conn.pgconn.trace(trace.fileno())
            conn.pgconn.set_trace_flags(TRACE_FLAGS)
        try:
            response = send()
        finally:
            with pool.connection() as conn:
                conn.pgconn.untrace()
    return response, FRONTEND_MESSAGE.findall(path.read_text())


def round_trips(messages):
    """A round trip ends with Sync (extended protocol) or is one Query (simple protocol)."""
    return sum(name in ("Sync", "Query") for name in messages)


@pytest.mark.parametrize("warm", [False, True], ids=["first-use", "steady-state"])
@pytest.mark.parametrize("use", USES.values(), ids=USES.keys())
def test_a_fresh_token_costs_one_round_trip_and_no_write(one_connection_app, rows, tmp_path, use, warm):
    client = one_connection_app.test_client()
    token = login(client)
    if warm:
        # Past the one-time preparation of the statement on this connection, as on a busy server.
        for _ in range(8):
            assert use(client, token).status_code == 200
    before = rows.get(token)

    response, messages = traced(one_connection_app, tmp_path / "trace", lambda: use(client, token))

    assert response.status_code == 200
    assert response.get_json()["renewed"] is False
    assert messages, "the trace caught nothing: the request did not use the traced connection"
    if not warm:
        # A connection's first use of the statement prepares it (Parse, Sync), and only then.
        assert messages[:2] == ["Parse", "Sync"], messages
        messages = messages[2:]
    assert messages == ["Bind", "Describe", "Execute", "Sync"]  # one round trip, no BEGIN/COMMIT
    assert rows.get(token)["xmin"] == before["xmin"]


@pytest.mark.parametrize("use", USES.values(), ids=USES.keys())
def test_a_renewal_is_in_the_same_round_trip(one_connection_app, rows, tmp_path, use):
    client = one_connection_app.test_client()
    token = login(client)
    rows.age(token, modified=THRESHOLD + 10)
    before = rows.get(token)

    response, messages = traced(one_connection_app, tmp_path / "trace", lambda: use(client, token))

    assert response.get_json()["renewed"] is True
    assert messages[:2] == ["Parse", "Sync"], messages  # the connection's first use prepares the statement
    assert messages[2:] == ["Bind", "Describe", "Execute", "Sync"]  # then one round trip renews too
    assert rows.get(token)["xmin"] != before["xmin"]
