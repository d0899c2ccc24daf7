"""Service keys: their lifecycle, the 401/403 rules of check-token with a key, the audit
that names the key, the one statement a check still costs, and who may manage keys."""

import base64
import hashlib
import threading

import pytest

from tests.fixtures import DEMO, assert_error, db_rows, last_audit_id
from tests.test_delegation import people, rbacw  # noqa: F401 (fixtures)
from tests.test_token_life import one_connection_app, round_trips, traced  # noqa: F401 (fixture)

STOCK_KEY = "eqsk_demo_stock_key_not_secret"
SALES_KEY = "eqsk_demo_sales_key_not_secret"


@pytest.fixture
def keyed(app_factory):
    """The app as production runs it: check-token requires a key."""
    return app_factory(CHECK_TOKEN_REQUIRES_KEY=True).test_client()


def login(client, username="alice"):
    answer = client.post("/auth/login", json={"username": username, "password": DEMO[username]})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["token"]


def check(client, token, service="stock", key=None, headers=None):
    headers = dict(headers or {})
    if key is not None:
        headers["service-token"] = key
    return client.post("/check-token", json={"token": token, "service_id": service}, headers=headers)


def token_row(url, token):
    rows = db_rows(url, "select xmin::text as xmin from auth.tokens_cache where token_hash = %s", [digest(token)])
    return rows[0]


def audit_since(url, last_id):
    """The audit events written after `last_id`, oldest first: name and detail."""
    return db_rows(url, "select event, detail from auth.audit_events where id > %s order by id", [last_id])


def digest(secret):
    return hashlib.sha256(secret.encode()).digest()


def create_key(client, headers, service="stock", **body):
    answer = client.post(f"/services/{service}/keys", json=body, headers=headers)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


# --- the lifecycle --------------------------------------------------------------------------


def test_a_key_is_shown_once_and_stored_as_a_digest(keyed, api, test_database):
    created = create_key(keyed, api.headers(), name="stock backend, blue")
    secret = created["key"]
    assert secret.startswith("eqsk_")
    assert len(base64.urlsafe_b64decode(secret.removeprefix("eqsk_") + "=")) == 32  # 256 bits
    assert created["prefix"] == secret[:13]
    assert created["name"] == "stock backend, blue"
    stored = db_rows(test_database, "select * from auth.service_keys where id = %s", [created["id"]])[0]
    assert bytes(stored["key_hash"]) == digest(secret)
    assert secret not in str(stored)
    listed = keyed.get("/services/stock/keys", headers=api.headers()).get_json()["items"]
    mine = next(key for key in listed if key["id"] == created["id"])
    assert "key" not in mine and "key_hash" not in mine
    assert mine["prefix"] == created["prefix"] and mine["last_used_at"] is None


def test_a_key_answers_for_its_service_and_records_its_use(keyed, api, test_database):
    secret = create_key(keyed, api.headers())["key"]
    answer = check(keyed, login(keyed), key=secret)
    assert answer.status_code == 200
    assert answer.get_json()["payload"]["service"] == "stock"
    listed = keyed.get("/services/stock/keys", headers=api.headers()).get_json()["items"]
    assert next(key for key in listed if key["prefix"] == secret[:13])["last_used_at"] is not None


def test_last_used_is_written_at_most_once_a_minute(keyed, api, test_database):
    secret = create_key(keyed, api.headers())["key"]
    token = login(keyed)
    assert check(keyed, token, key=secret).status_code == 200
    xmin = "select xmin::text as x from auth.service_keys where key_hash = %s"
    seen = db_rows(test_database, xmin, [digest(secret)])
    for _ in range(5):
        assert check(keyed, token, key=secret).status_code == 200
    again = db_rows(
        test_database, "select xmin::text as x from auth.service_keys where key_hash = %s", [digest(secret)]
    )
    assert again == seen
    db_rows(
        test_database,
        "update auth.service_keys set last_used_at = now() - interval '61 seconds' where key_hash = %s",
        [digest(secret)],
    )
    assert check(keyed, token, key=secret).status_code == 200
    moved = db_rows(
        test_database,
        "select last_used_at > now() - interval '5 seconds' as fresh from auth.service_keys where key_hash = %s",
        [digest(secret)],
    )
    assert moved[0]["fresh"]


def test_rotation_two_keys_at_once_then_one_revoked(keyed, api):
    headers = api.headers()
    old, new = create_key(keyed, headers), create_key(keyed, headers)
    token = login(keyed)
    assert check(keyed, token, key=old["key"]).status_code == 200
    assert check(keyed, token, key=new["key"]).status_code == 200
    assert keyed.delete(f"/services/stock/keys/{old['id']}", headers=headers).status_code == 204
    assert_error(check(keyed, token, key=old["key"]), 401, "invalid_service_key")
    assert check(keyed, token, key=new["key"]).status_code == 200
    assert_error(keyed.delete(f"/services/stock/keys/{old['id']}", headers=headers), 404, "not_found")


def test_a_key_is_revoked_only_through_its_own_service(keyed, api):
    headers = api.headers()
    key = create_key(keyed, headers)
    assert_error(keyed.delete(f"/services/sales/keys/{key['id']}", headers=headers), 404, "not_found")
    assert check(keyed, login(keyed), key=key["key"]).status_code == 200


def test_an_expired_key_is_refused(keyed, api, test_database):
    key = create_key(keyed, api.headers(), expires_in=60)
    token = login(keyed)
    assert check(keyed, token, key=key["key"]).status_code == 200
    db_rows(
        test_database,
        "update auth.service_keys set expires_at = now() - interval '1 second' where id = %s",
        [key["id"]],
    )
    assert_error(check(keyed, token, key=key["key"]), 401, "invalid_service_key")


def test_deleting_a_service_takes_its_keys(keyed, api, test_database):
    headers = api.headers()
    assert keyed.post("/services", json={"name": "scratch"}, headers=headers).status_code == 201
    create_key(keyed, headers, service="scratch")
    assert keyed.delete("/services/scratch", headers=headers).status_code == 204
    assert db_rows(test_database, "select count(*) as n from auth.service_keys")[0]["n"] == 3  # the demo keys


@pytest.mark.parametrize(
    ("body", "field"),
    [({"expires_in": 5}, "expires_in"), ({"name": 7}, "name"), ({"expires_in": "soon"}, "expires_in")],
)
def test_bad_key_requests_are_400_and_create_nothing(keyed, api, test_database, body, field):
    before = db_rows(test_database, "select count(*) as n from auth.service_keys")[0]["n"]
    refused = assert_error(
        keyed.post("/services/stock/keys", json=body, headers=api.headers()), 400, "validation_error"
    )
    assert field in refused["fields"]
    assert db_rows(test_database, "select count(*) as n from auth.service_keys")[0]["n"] == before


def test_keys_of_an_unknown_service_are_404(keyed, api):
    assert_error(keyed.post("/services/nowhere/keys", json={}, headers=api.headers()), 404, "not_found")
    assert_error(keyed.get("/services/nowhere/keys", headers=api.headers()), 404, "not_found")


# --- who may manage keys --------------------------------------------------------------------


def test_managing_keys_takes_the_rbac_permissions(keyed, api):
    alice = api.headers("alice")
    assert_error(keyed.post("/services/stock/keys", json={}, headers=alice), 403, "forbidden")
    assert_error(keyed.get("/services/stock/keys", headers=alice), 403, "forbidden")
    assert_error(keyed.delete("/services/stock/keys/1", headers=alice), 403, "forbidden")
    assert_error(keyed.get("/services/stock/keys"), 401, "missing_token")


def test_a_rbac_writer_makes_keys_for_business_services_but_not_for_auth(keyed, api, test_database, rbacw):  # noqa: F811
    assert create_key(keyed, rbacw.headers, service="stock")["key"]
    since = last_audit_id(test_database)
    refused = assert_error(keyed.post("/services/auth/keys", json={}, headers=rbacw.headers), 403, "forbidden")
    assert "auth.admin" in refused["message"]
    assert (
        db_rows(
            test_database,
            "select count(*) as n from auth.service_keys k join auth.services s"
            " on s.id = k.service_id where s.name = 'auth'",
        )[0]["n"]
        == 0
    )
    assert [e["event"] for e in audit_since(test_database, since)] == ["authz_fail"]
    auth_key = create_key(keyed, api.headers(), service="auth")
    refused = keyed.delete(f"/services/auth/keys/{auth_key['id']}", headers=rbacw.headers)
    assert_error(refused, 403, "forbidden")


def test_key_changes_are_audited_naming_the_key(keyed, api, test_database):
    since = last_audit_id(test_database)
    key = create_key(keyed, api.headers())
    assert keyed.delete(f"/services/stock/keys/{key['id']}", headers=api.headers()).status_code == 204
    events = [e for e in audit_since(test_database, since) if e["event"].startswith("authn_token_")]
    assert [e["event"] for e in events] == ["authn_token_created", "authn_token_delete"]
    for found in events:
        assert found["detail"]["key_id"] == key["id"] and found["detail"]["key"] == key["prefix"]
        assert key["key"] not in str(found)


# --- check-token asks who is calling --------------------------------------------------------


def test_without_a_key_check_token_is_401_and_renews_nothing(keyed, test_database):
    token = login(keyed)
    db_rows(test_database, "update auth.tokens_cache set modified_at = now() - interval '100 seconds'")
    before = token_row(test_database, token)
    refused = assert_error(check(keyed, token), 401, "invalid_service_key")
    assert refused["valid"] is False
    assert token_row(test_database, token) == before


def test_a_wrong_key_is_401_audited_by_its_fingerprint(keyed, test_database):
    token = login(keyed)
    since = last_audit_id(test_database)
    wrong = "eqsk_" + "x" * 43
    answer = check(keyed, token, key=wrong)
    assert_error(answer, 401, "invalid_service_key")
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    (event,) = audit_since(test_database, since)
    assert event["event"] == "authz_fail"
    assert event["detail"]["key"] == hashlib.sha256(wrong.encode()).hexdigest()[:12]
    assert wrong not in str(event)


def test_a_key_asking_outside_its_service_is_403_audited_by_its_id(keyed, test_database):
    token = login(keyed)
    db_rows(test_database, "update auth.tokens_cache set modified_at = now() - interval '100 seconds'")
    before = token_row(test_database, token)
    since = last_audit_id(test_database)
    refused = assert_error(check(keyed, token, service="sales", key=STOCK_KEY), 403, "forbidden")
    assert refused["valid"] is False
    (event,) = audit_since(test_database, since)
    assert event["detail"]["key"] == STOCK_KEY[:13] and event["detail"]["service"] == "sales"
    assert isinstance(event["detail"]["key_id"], int)
    assert token_row(test_database, token) == before  # no renewal for a refused caller
    # Alice is a seller in sales: the sales key may ask.
    assert check(keyed, token, service="sales", key=SALES_KEY).status_code == 200


def test_a_key_outside_its_service_learns_nothing_of_the_token(keyed):
    dead = "0" * 64
    assert_error(check(keyed, dead, service="sales", key=STOCK_KEY), 403, "forbidden")
    assert_error(check(keyed, dead, service="stock", key=STOCK_KEY), 401, "invalid_token")


def test_a_valid_check_with_a_key_writes_no_audit(keyed, test_database):
    token = login(keyed)
    since = last_audit_id(test_database)
    assert check(keyed, token, key=STOCK_KEY).status_code == 200
    assert audit_since(test_database, since) == []


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(f"stock:{STOCK_KEY}".encode()).decode(),
        "basic " + base64.b64encode(f":{STOCK_KEY}".encode()).decode(),
    ],
)
def test_http_basic_carries_the_key_as_rfc_7662_clients_send_it(keyed, authorization):
    answer = check(keyed, login(keyed), headers={"Authorization": authorization})
    assert answer.status_code == 200, answer.get_json()


@pytest.mark.parametrize(
    "authorization",
    ["Basic !!!", "Basic " + base64.b64encode(b"stock:").decode(), "Basic " + base64.b64encode(b"\xff\xfe").decode()],
)
def test_malformed_basic_credentials_are_401(keyed, authorization):
    assert_error(check(keyed, login(keyed), headers={"Authorization": authorization}), 401, "invalid_service_key")


def test_an_over_long_key_is_401(keyed):
    assert_error(check(keyed, login(keyed), key="k" * 600), 401, "invalid_service_key")


def test_in_development_a_check_without_a_key_still_answers(client, test_database):
    token = login(client)
    assert check(client, token).status_code == 200
    assert_error(check(client, token, key="eqsk_wrong"), 401, "invalid_service_key")
    assert check(client, token, key=STOCK_KEY).status_code == 200


def test_a_check_with_a_key_is_still_one_round_trip_and_writes_nothing_while_fresh(
    one_connection_app,  # noqa: F811
    test_database,
    tmp_path,
):
    client = one_connection_app.test_client()
    token = login(client)
    for _ in range(8):  # past the driver's statement preparation, and the key's first use
        assert check(client, token, key=STOCK_KEY).status_code == 200
    before = token_row(test_database, token)
    response, messages = traced(one_connection_app, tmp_path / "trace", lambda: check(client, token, key=STOCK_KEY))
    assert response.status_code == 200
    assert round_trips(messages) == 1, messages
    assert "Query" not in messages
    assert token_row(test_database, token) == before


def test_racing_checks_and_a_revocation_of_one_key_never_fail(app_factory, api, test_database):
    app = app_factory(CHECK_TOKEN_REQUIRES_KEY=True)
    client = app.test_client()
    headers = api.headers()
    key = create_key(client, headers)
    token = login(client)
    db_rows(test_database, "update auth.service_keys set last_used_at = now() - interval '2 minutes'")
    statuses, barrier = [], threading.Barrier(9)

    def checker():
        barrier.wait()
        for _ in range(10):
            statuses.append(check(app.test_client(), token, key=key["key"]).status_code)

    def revoker():
        barrier.wait()
        statuses.append(app.test_client().delete(f"/services/stock/keys/{key['id']}", headers=headers).status_code)

    threads = [threading.Thread(target=checker) for _ in range(8)] + [threading.Thread(target=revoker)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) <= {200, 204, 401}
    assert statuses.count(204) == 1
    assert check(client, token, key=key["key"]).status_code == 401
