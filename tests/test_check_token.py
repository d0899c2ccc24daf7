"""POST /check-token, the question every backend asks: shape, 401 vs 403, input errors, RBAC freshness."""

import hashlib
import time

import pytest

from tests.fixtures import db_rows


def ids(url):
    """Ids of the demo rows by name: users, services, roles, permissions."""
    found = {}
    for table, key in (("users", "username"), ("services", "name"), ("roles", "name"), ("permissions", "name")):
        for row in db_rows(url, f"select id, {key} as name from auth.{table}"):  # noqa: S608 (fixed names)
            found[(table, row["name"])] = row["id"]
    return found


@pytest.fixture
def demo_ids(test_database):
    return ids(test_database)


@pytest.fixture
def alice(api):
    return api.login("alice")


def check(client, **body):
    return client.post("/check-token", json=body)


def assert_forbidden(response):
    assert response.status_code == 403
    body = response.get_json()
    assert body["valid"] is False
    assert body["error"] == "forbidden"
    assert body["message"]
    assert "payload" not in body


def assert_invalid(response):
    assert response.status_code == 401
    body = response.get_json()
    assert body["valid"] is False
    assert body["error"] == "invalid_token"
    assert body["message"]
    assert "payload" not in body


# --- the valid answer ----------------------------------------------------------------


def test_valid_token_answers_the_contract_shape(app, client, alice, demo_ids):
    ttl = app.config["TOKEN_TTL_SECONDS"]
    response = check(client, token=alice, service_id="stock", user_id=demo_ids[("users", "alice")])

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"valid", "payload", "renewed", "expires_at", "expires_in"}
    assert body["valid"] is True
    assert body["renewed"] is False
    assert body["payload"] == {
        "user_id": demo_ids[("users", "alice")],
        "username": "alice",
        "name": "Alice",
        "service_id": demo_ids[("services", "stock")],
        "service": "stock",
        "roles": ["clerk"],
        "permissions": ["stock.read"],
    }
    assert type(body["expires_at"]) is int
    assert abs(body["expires_at"] - (time.time() + ttl)) <= 2
    assert type(body["expires_in"]) is int
    assert ttl - 2 <= body["expires_in"] <= ttl


def test_payload_lists_every_permission_of_the_service(client, alice):
    payload = check(client, token=alice, service_id="sales").get_json()["payload"]
    assert payload["roles"] == ["seller"]
    assert payload["permissions"] == ["sales.read", "sales.write"]


@pytest.mark.parametrize(
    "service",
    [lambda ids: ids[("services", "stock")], lambda ids: str(ids[("services", "stock")]), lambda ids: "stock"],
    ids=["id", "id-as-string", "name"],
)
@pytest.mark.parametrize(
    "user",
    [lambda ids: ids[("users", "alice")], lambda ids: str(ids[("users", "alice")]), None],
    ids=["user-int", "user-string", "user-omitted"],
)
def test_service_by_id_or_name_and_user_in_any_accepted_form(client, alice, demo_ids, service, user):
    body = {"token": alice, "service_id": service(demo_ids)}
    if user is not None:
        body["user_id"] = user(demo_ids)

    response = client.post("/check-token", json=body)

    assert response.status_code == 200
    payload = response.get_json()["payload"]
    assert (payload["service_id"], payload["service"]) == (demo_ids[("services", "stock")], "stock")
    assert payload["user_id"] == demo_ids[("users", "alice")]


@pytest.mark.parametrize(
    ("header", "prefix"), [("token", ""), ("Authorization", "Bearer "), ("Authorization", "bearer ")]
)
def test_token_may_come_in_the_header(client, alice, header, prefix):
    response = client.post("/check-token", json={"service_id": "stock"}, headers={header: prefix + alice})
    assert response.status_code == 200
    assert response.get_json()["payload"]["username"] == "alice"


def test_admin_is_valid_in_auth_with_every_auth_permission(client, api):
    payload = check(client, token=api.login("admin"), service_id="auth").get_json()["payload"]
    assert payload["roles"] == ["admin"]
    assert payload["permissions"] == [
        "auth.admin",
        "auth.audit.read",
        "auth.rbac.read",
        "auth.rbac.write",
        "auth.users.read",
        "auth.users.write",
    ]


# --- 401: log in again ---------------------------------------------------------------


def test_unknown_token_is_401(client):
    assert_invalid(check(client, token="0" * 64, service_id="stock"))
    assert_invalid(check(client, token="short and wrong", service_id="stock"))


def test_expired_token_is_401(client, alice, test_database):
    db_rows(
        test_database,
        "update auth.tokens_cache set expires_at = now() - interval '1 second' where token_hash = %s",
        [hashlib.sha256(alice.encode()).digest()],
    )
    assert_invalid(check(client, token=alice, service_id="stock"))


def test_revoked_token_is_401(client, alice):
    assert check(client, token=alice, service_id="stock").status_code == 200
    assert client.post("/auth/logout", headers={"token": alice}).status_code == 200
    assert_invalid(check(client, token=alice, service_id="stock"))


def test_dead_token_is_401_even_where_it_would_be_403(client, alice, demo_ids):
    """Dead beats forbidden: the backend must send its user to log in, whatever was asked."""
    client.post("/auth/logout", headers={"token": alice})
    assert_invalid(check(client, token=alice, service_id="manufacturing"))
    assert_invalid(check(client, token=alice, service_id="stock", user_id=demo_ids[("users", "bob")]))


# --- 403: live token, no access ------------------------------------------------------


def test_token_of_another_user_is_403(client, alice, demo_ids):
    assert_forbidden(check(client, token=alice, service_id="stock", user_id=demo_ids[("users", "bob")]))
    assert_forbidden(check(client, token=alice, service_id="stock", user_id=str(demo_ids[("users", "bob")])))
    assert_forbidden(check(client, token=alice, service_id="stock", user_id=2**62))


def test_user_without_a_role_in_the_service_is_403(client, alice, api):
    assert_forbidden(check(client, token=alice, service_id="manufacturing"))
    assert_forbidden(check(client, token=alice, service_id="auth"))
    assert_forbidden(check(client, token=api.login("bob"), service_id="stock"))


@pytest.mark.parametrize("service", ["no-such-service", 999_999, "999999", 2**63 - 1])
def test_unknown_service_is_403(client, alice, service):
    assert_forbidden(check(client, token=alice, service_id=service))


def test_inactive_service_is_403_and_active_again_is_200(client, alice, api, demo_ids):
    stock = demo_ids[("services", "stock")]
    admin = api.headers("admin")

    deactivate = client.put(f"/services/{stock}", json={"active": False}, headers=admin)
    assert deactivate.status_code == 200, deactivate.get_json()

    assert_forbidden(check(client, token=alice, service_id="stock"))
    assert_forbidden(check(client, token=alice, service_id=stock))
    # The token itself is fine: other services still answer.
    assert check(client, token=alice, service_id="sales").status_code == 200

    assert client.put(f"/services/{stock}", json={"active": True}, headers=admin).status_code == 200
    assert check(client, token=alice, service_id="stock").status_code == 200


# --- 400: input errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"service_id": "stock"}, "token"),
        ({"token": "TOKEN"}, "service_id"),
        ({"token": "TOKEN", "service_id": None}, "service_id"),
        ({"token": "TOKEN", "service_id": True}, "service_id"),
        ({"token": "TOKEN", "service_id": []}, "service_id"),
        ({"token": "TOKEN", "service_id": {}}, "service_id"),
        ({"token": "TOKEN", "service_id": 1.5}, "service_id"),
        ({"token": "TOKEN", "service_id": ""}, "service_id"),
        ({"token": "TOKEN", "service_id": 2**70}, "service_id"),
        ({"token": "TOKEN", "service_id": "stock", "user_id": "abc"}, "user_id"),
        ({"token": "TOKEN", "service_id": "stock", "user_id": -1}, "user_id"),
        ({"token": "TOKEN", "service_id": "stock", "user_id": 0}, "user_id"),
        ({"token": "TOKEN", "service_id": "stock", "user_id": 2**70}, "user_id"),
        ({"token": "TOKEN", "service_id": "stock", "user_id": str(2**70)}, "user_id"),
        ({"token": "TOKEN", "service_id": "stock", "user_id": "-1"}, "user_id"),
        ({"token": "TOKEN", "service_id": "stock", "user_id": "1e3"}, "user_id"),
        ({"token": "TOKEN", "service_id": "stock", "user_id": True}, "user_id"),
        ({"token": "TOKEN", "service_id": "stock", "user_id": [2]}, "user_id"),
        ({"token": "TOKEN", "service_id": "stock", "user_id": 2.0}, "user_id"),
        ({"token": 123, "service_id": "stock"}, "token"),
        ({"token": ["TOKEN"], "service_id": "stock"}, "token"),
        ({"token": "", "service_id": "stock"}, "token"),
        ({"token": "x" * 10_000, "service_id": "stock"}, "token"),
        ({"token": "TO\x00KEN", "service_id": "stock"}, "token"),
    ],
)
def test_wrong_input_is_a_validation_error(client, alice, test_database, body, field):
    body = {key: alice if value == "TOKEN" else value for key, value in body.items()}
    before = db_rows(test_database, "select modified_at, xmin::text from auth.tokens_cache")

    response = client.post("/check-token", json=body)

    assert response.status_code == 400
    error = response.get_json()
    assert error["error"] == "validation_error"
    assert field in error["fields"]
    assert db_rows(test_database, "select modified_at, xmin::text from auth.tokens_cache") == before


def test_missing_token_and_service_are_reported_together(client):
    response = client.post("/check-token", json={})
    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == {"token", "service_id"}


def test_a_token_in_the_query_string_is_not_read(client, alice):
    response = client.post(f"/check-token?token={alice}", json={"service_id": "stock"})
    assert response.status_code == 400
    assert "token" in response.get_json()["fields"]


# --- role and permission changes are visible on the very next check -----------------


def change(client, method, path, body):
    response = client.open(path, method=method, json=body, headers={"token": client.admin_token})
    assert response.status_code in (200, 201, 204), response.get_json()


@pytest.fixture
def admin_client(client, api):
    client.admin_token = api.login("admin")
    return client


def test_removing_the_users_role_is_seen_at_once(admin_client, alice, demo_ids):
    client = admin_client
    assert check(client, token=alice, service_id="stock").status_code == 200

    change(
        client,
        "DELETE",
        "/person-service-roles",
        {
            "user_id": demo_ids[("users", "alice")],
            "service_id": demo_ids[("services", "stock")],
            "role_id": demo_ids[("roles", "clerk")],
        },
    )

    assert_forbidden(check(client, token=alice, service_id="stock"))
    services = client.get("/auth/profile", headers={"token": alice}).get_json()["payload"]["services"]
    assert [s["service"] for s in services] == ["sales"]


def test_removing_a_permission_from_the_role_is_seen_at_once(admin_client, alice, demo_ids):
    client = admin_client
    assert check(client, token=alice, service_id="stock").get_json()["payload"]["permissions"] == ["stock.read"]

    change(
        client,
        "DELETE",
        "/role-permissions",
        {"role_id": demo_ids[("roles", "clerk")], "permission_id": demo_ids[("permissions", "stock.read")]},
    )

    response = check(client, token=alice, service_id="stock")
    assert response.status_code == 200
    assert response.get_json()["payload"]["roles"] == ["clerk"]
    assert response.get_json()["payload"]["permissions"] == []


def test_removing_the_role_from_the_service_is_seen_at_once(admin_client, alice, demo_ids):
    client = admin_client
    assert check(client, token=alice, service_id="stock").status_code == 200

    change(
        client,
        "DELETE",
        "/service-roles",
        {"service_id": demo_ids[("services", "stock")], "role_id": demo_ids[("roles", "clerk")]},
    )

    assert_forbidden(check(client, token=alice, service_id="stock"))
    assert check(client, token=alice, service_id="sales").status_code == 200


def test_granting_a_role_or_permission_is_seen_at_once(admin_client, alice, demo_ids):
    client = admin_client
    assert_forbidden(check(client, token=alice, service_id="manufacturing"))

    change(
        client,
        "POST",
        "/person-service-roles",
        {
            "user_id": demo_ids[("users", "alice")],
            "service_id": demo_ids[("services", "manufacturing")],
            "role_id": demo_ids[("roles", "manager")],
        },
    )
    payload = check(client, token=alice, service_id="manufacturing").get_json()["payload"]
    assert payload["roles"] == ["manager"]
    assert payload["permissions"] == ["manufacturing.read", "manufacturing.write"]

    change(
        client,
        "POST",
        "/role-permissions",
        {"role_id": demo_ids[("roles", "clerk")], "permission_id": demo_ids[("permissions", "stock.write")]},
    )
    payload = check(client, token=alice, service_id="stock").get_json()["payload"]
    assert payload["permissions"] == ["stock.read", "stock.write"]


def test_identity_in_the_answer_is_read_at_check_time(client, alice, test_database):
    """The payload stored at login is not replayed: a renamed or re-mailed user shows as they are now."""
    db_rows(
        test_database, "update auth.users set name = 'Alicia', email = 'alicia@example.com' where username = 'alice'"
    )

    assert check(client, token=alice, service_id="stock").get_json()["payload"]["name"] == "Alicia"
    payload = client.get("/auth/profile", headers={"token": alice}).get_json()["payload"]
    assert (payload["name"], payload["email"]) == ("Alicia", "alicia@example.com")
