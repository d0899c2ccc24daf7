"""The session core: login, logout, logout-all and the caller's profile, against API.md."""

import hashlib
import re
import time

import pytest

from tests.fixtures import DEMO, db_rows

ALICE = {"username": "alice", "password": DEMO["alice"]}


def login(client, username="alice", password=None):
    """Log in and return the whole 200 body."""
    response = client.post("/auth/login", json={"username": username, "password": password or DEMO[username]})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def user_id(url, username):
    return db_rows(url, "select id from auth.users where username = %s", [username])[0]["id"]


def service_id(url, name):
    return db_rows(url, "select id from auth.services where name = %s", [name])[0]["id"]


def token_rows(url, username):
    return db_rows(
        url,
        "select t.* from auth.tokens_cache t join auth.users u on u.id = t.user_id where u.username = %s",
        [username],
    )


def assert_dead(client, token):
    """The token no longer opens anything: profile and check-token both answer 401."""
    profile = client.get("/auth/profile", headers={"token": token})
    assert profile.status_code == 401
    assert profile.get_json()["error"] == "invalid_token"
    check = client.post("/check-token", json={"token": token, "service_id": "stock"})
    assert check.status_code == 401
    assert check.get_json()["valid"] is False


def assert_alive(client, token):
    assert client.get("/auth/profile", headers={"token": token}).status_code == 200


# --- login ---------------------------------------------------------------------------


def test_login_answers_the_contract_shape(app, client, test_database):
    ttl = app.config["TOKEN_TTL_SECONDS"]
    before = int(time.time())
    response = client.post("/auth/login", json=ALICE)
    after = int(time.time())

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"token", "expires_at", "expires_in", "payload"}
    assert body["payload"] == {"user_id": user_id(test_database, "alice"), "username": "alice", "name": "Alice"}
    assert re.fullmatch(r"[0-9a-f]{64,}", body["token"])
    # expires_at is Unix seconds (an int, not an ISO string), TTL from now.
    assert type(body["expires_at"]) is int
    assert before + ttl - 1 <= body["expires_at"] <= after + ttl + 1
    assert type(body["expires_in"]) is int
    assert ttl - 2 <= body["expires_in"] <= ttl
    assert response.headers["Cache-Control"] == "no-store"


def test_every_login_gets_a_new_token(client):
    tokens = {login(client)["token"] for _ in range(5)}
    assert len(tokens) == 5


def test_token_ttl_comes_from_config(app_factory):
    client = app_factory(TOKEN_TTL_SECONDS=120).test_client()
    body = login(client)
    assert 118 <= body["expires_in"] <= 120
    assert abs(body["expires_at"] - (time.time() + 120)) <= 2


@pytest.mark.parametrize("name", ["alice@example.com", "ALICE", "Alice@Example.COM", "aLiCe"])
def test_login_by_email_or_username_in_any_case(client, name):
    body = login(client, name, DEMO["alice"])
    assert body["payload"]["username"] == "alice"
    assert_alive(client, body["token"])


def test_login_accepts_the_seeds_short_field_names(client):
    response = client.post("/auth/login", json={"user": "alice", "pass": DEMO["alice"]})
    assert response.status_code == 200
    assert response.get_json()["payload"]["username"] == "alice"
    assert_alive(client, response.get_json()["token"])


def test_login_refusals_look_the_same(client, test_database):
    """Unknown user, wrong password and disabled user (carol, right password) get one answer."""
    attempts = [
        {"username": "nobody-here", "password": DEMO["alice"]},
        {"username": "alice", "password": DEMO["bob"]},
        {"username": "carol", "password": DEMO["carol"]},
        {"username": "alice", "password": "x" * 10_000},
        {"user": "alice", "pass": DEMO["alice"] + " "},
    ]
    responses = [client.post("/auth/login", json=attempt) for attempt in attempts]

    for response in responses:
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" not in response.get_json()
    assert all(r.get_json() == responses[0].get_json() for r in responses)
    assert responses[0].get_json()["error"] == "invalid_credentials"
    assert db_rows(test_database, "select count(*) as n from auth.tokens_cache")[0]["n"] == 0


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"username", "password"}),
        ({"username": "alice"}, {"password"}),
        ({"password": DEMO["alice"]}, {"username"}),
        ({"user": "alice"}, {"password"}),
        ({"username": "", "password": DEMO["alice"]}, {"username"}),
        ({"username": 7, "password": DEMO["alice"]}, {"username"}),
        ({"username": "alice", "password": ["maple-harbor-17"]}, {"password"}),
        ({"username": "alice", "password": None}, {"password"}),
    ],
)
def test_login_with_missing_or_wrong_fields_is_a_validation_error(client, test_database, body, fields):
    response = client.post("/auth/login", json=body)
    assert response.status_code == 400
    error = response.get_json()
    assert error["error"] == "validation_error"
    assert set(error["fields"]) == fields
    assert db_rows(test_database, "select count(*) as n from auth.tokens_cache")[0]["n"] == 0


# --- logout --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "send",
    [
        lambda token: {"headers": {"token": token}},
        lambda token: {"json": {"token": token}},
        lambda token: {"headers": {"Authorization": f"Bearer {token}"}},
    ],
    ids=["header", "body", "bearer"],
)
def test_logout_revokes_the_token(client, test_database, send):
    token = login(client)["token"]
    other = login(client)["token"]

    response = client.post("/auth/logout", **send(token))

    assert response.status_code == 200
    assert response.get_json() == {"status": "logged_out"}
    assert_dead(client, token)
    digest = hashlib.sha256(token.encode()).digest()
    assert db_rows(test_database, "select 1 from auth.tokens_cache where token_hash = %s", [digest]) == []
    # Only that session ended.
    assert_alive(client, other)


def test_logout_is_idempotent_for_unknown_revoked_and_expired_tokens(client, test_database):
    token = login(client)["token"]
    expired = login(client)["token"]
    db_rows(
        test_database,
        "update auth.tokens_cache set expires_at = now() - interval '1 second' where token_hash = %s",
        [hashlib.sha256(expired.encode()).digest()],
    )
    assert client.post("/auth/logout", headers={"token": token}).status_code == 200

    for dead in (token, expired, "f" * 64, "not-even-hex"):
        response = client.post("/auth/logout", headers={"token": dead})
        assert response.status_code == 200
        assert response.get_json() == {"status": "logged_out"}


@pytest.mark.parametrize(
    "request_kwargs",
    [{}, {"json": {}}, {"json": {"token": ""}}, {"json": {"token": 123}}, {"headers": {"Authorization": "Basic abc"}}],
    ids=["nothing", "empty-body", "empty-token", "number-token", "basic-auth"],
)
def test_logout_without_a_token_is_401(client, request_kwargs):
    response = client.post("/auth/logout", **request_kwargs)
    assert response.status_code == 401
    assert response.get_json()["error"] == "missing_token"
    assert "WWW-Authenticate" in response.headers


def test_a_token_in_the_query_string_is_ignored(client):
    token = login(client)["token"]

    profile = client.get(f"/auth/profile?token={token}")
    assert profile.status_code == 401
    assert profile.get_json()["error"] == "missing_token"

    logout = client.post(f"/auth/logout?token={token}")
    assert logout.status_code == 401
    assert logout.get_json()["error"] == "missing_token"

    logout_all = client.post(f"/auth/logout-all?token={token}")
    assert logout_all.status_code == 401
    assert logout_all.get_json()["error"] == "missing_token"

    # Nothing above touched the session.
    assert_alive(client, token)


# --- logout-all ----------------------------------------------------------------------


def test_logout_all_revokes_every_token_of_the_caller_only(client, test_database):
    alice_tokens = [login(client)["token"] for _ in range(3)]
    bob_token = login(client, "bob")["token"]
    admin_token = login(client, "admin")["token"]

    response = client.post("/auth/logout-all", headers={"token": alice_tokens[1]})

    assert response.status_code == 200
    assert response.get_json() == {"revoked": 3}
    for token in alice_tokens:
        assert_dead(client, token)
    assert token_rows(test_database, "alice") == []
    assert_alive(client, bob_token)
    assert_alive(client, admin_token)


def test_logout_all_with_a_dead_token_is_401(client, test_database):
    token = login(client)["token"]
    survivor = login(client)["token"]
    assert client.post("/auth/logout", headers={"token": token}).status_code == 200

    for dead in (token, "0" * 64):
        response = client.post("/auth/logout-all", headers={"token": dead})
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_token"
    assert client.post("/auth/logout-all").get_json()["error"] == "missing_token"
    # A dead token cannot end the user's other sessions.
    assert_alive(client, survivor)


def test_logout_all_with_an_expired_token_revokes_nothing(client, test_database):
    expired = login(client)["token"]
    survivor = login(client)["token"]
    db_rows(
        test_database,
        "update auth.tokens_cache set expires_at = now() - interval '1 second' where token_hash = %s",
        [hashlib.sha256(expired.encode()).digest()],
    )
    response = client.post("/auth/logout-all", headers={"token": expired})
    assert response.status_code == 401
    assert_alive(client, survivor)


# --- profile -------------------------------------------------------------------------


def test_profile_shows_the_user_and_their_grants_everywhere(app, client, test_database):
    ttl = app.config["TOKEN_TTL_SECONDS"]
    token = login(client)["token"]

    response = client.get("/auth/profile", headers={"token": token})

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"payload", "renewed", "expires_at", "expires_in"}
    assert body["renewed"] is False
    assert type(body["expires_at"]) is int
    assert abs(body["expires_at"] - (time.time() + ttl)) <= 2
    assert ttl - 2 <= body["expires_in"] <= ttl
    payload = body["payload"]
    assert set(payload) == {"user_id", "username", "name", "email", "services"}
    assert payload["user_id"] == user_id(test_database, "alice")
    assert (payload["username"], payload["name"], payload["email"]) == ("alice", "Alice", "alice@example.com")
    assert sorted(payload["services"], key=lambda s: s["service"]) == [
        {
            "service_id": service_id(test_database, "sales"),
            "service": "sales",
            "roles": ["seller"],
            "permissions": ["sales.read", "sales.write"],
        },
        {
            "service_id": service_id(test_database, "stock"),
            "service": "stock",
            "roles": ["clerk"],
            "permissions": ["stock.read"],
        },
    ]


def test_profile_of_a_user_without_roles_and_email(client, api):
    api.create_user("dora-nobody", name=None)
    token = login(client, "dora-nobody", "correct-horse-battery-9")["token"]
    payload = client.get("/auth/profile", headers={"Authorization": f"Bearer {token}"}).get_json()["payload"]
    assert payload["email"] is None
    assert payload["name"] is None
    assert payload["services"] == []


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_token"),
        ({"token": ""}, "missing_token"),
        ({"Authorization": "Bearer "}, "missing_token"),
        ({"token": "0" * 64}, "invalid_token"),
        ({"token": "not a token at all"}, "invalid_token"),
        ({"Authorization": "Bearer " + "a" * 64}, "invalid_token"),
    ],
)
def test_profile_without_a_live_token_is_401(client, headers, code):
    response = client.get("/auth/profile", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == code
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- digest storage ------------------------------------------------------------------


def test_tokens_are_stored_only_as_sha256_digests(client, test_database):
    tokens = [login(client, name)["token"] for name in ("alice", "alice", "bob", "admin")]
    for token in tokens:
        assert client.get("/auth/profile", headers={"token": token}).status_code == 200

    rows = db_rows(
        test_database, "select encode(token_hash, 'hex') as hash, t::text as everything from auth.tokens_cache t"
    )

    assert sorted(row["hash"] for row in rows) == sorted(hashlib.sha256(t.encode()).hexdigest() for t in tokens)
    # Not in any column, nor anywhere else a database read reaches (the audit trail included).
    audit = db_rows(test_database, "select string_agg(a::text, ' ') as text from auth.audit_events a")[0]["text"]
    for token in tokens:
        for row in rows:
            assert token not in row["everything"]
        assert token not in (audit or "")
