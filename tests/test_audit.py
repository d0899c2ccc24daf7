"""The audit trail: every security event and administrative write lands in auth.audit_events
and in one log line named with the OWASP logging vocabulary; GET /audit-events lists them
(API.md, Administration)."""

import datetime
import logging
import re
import uuid

import pytest

from tests.fixtures import DEMO, db_rows

PASSWORD = "correct-horse-battery-9"
FIELDS = ["id", "event", "user_id", "actor_id", "ip", "at", "detail"]


def id_of(url, table, name_column, name):
    return db_rows(url, f"select id from auth.{table} where {name_column} = %s", [name])[0]["id"]  # noqa: S608


@pytest.fixture
def ids(test_database):
    """Ids of the demo rows the scenarios touch."""
    return {
        "admin": id_of(test_database, "users", "username", "admin"),
        "alice": id_of(test_database, "users", "username", "alice"),
        "bob": id_of(test_database, "users", "username", "bob"),
        "clerk": id_of(test_database, "roles", "name", "clerk"),
        "stock_read": id_of(test_database, "permissions", "name", "stock.read"),
        "stock_write": id_of(test_database, "permissions", "name", "stock.write"),
        "stock": id_of(test_database, "services", "name", "stock"),
    }


def login(client, username, password=None):
    return client.post("/auth/login", json={"username": username, "password": password or DEMO[username]})


def events(client, api, **filters):
    """GET /audit-events as admin; the body."""
    response = client.get("/audit-events", query_string=filters, headers=api.headers())
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def newest(client, api, event, **filters):
    """The newest audit event of that name (and filters), read through the API."""
    body = events(client, api, event=event, **filters)
    assert body["items"], f"no {event} recorded"
    return body["items"][0]


def audit_lines(caplog, event):
    return [r for r in caplog.records if r.name == "auth.audit" and r.getMessage() == event]


# --- each event: (what to do, which event, about whom, by whom, detail it carries) -------
# A scenario gets the client, the api helper and the ids, does one thing, and returns the
# response; the expectations name users by key of `ids` (None: nobody).


def wrong_password(client, api, ids, mailbox):
    return login(client, "alice", "not-the-password-at-all")


def unknown_user(client, api, ids, mailbox):
    return login(client, "nobody-here", "not-the-password-at-all")


def lock(client, api, ids, mailbox):
    for _ in range(5):
        response = login(client, "bob", "not-the-password-at-all")
    return response


def logout(client, api, ids, mailbox):
    return client.post("/auth/logout", headers={"token": login(client, "alice").get_json()["token"]})


def logout_all(client, api, ids, mailbox):
    login(client, "alice")
    return client.post("/auth/logout-all", headers={"token": login(client, "alice").get_json()["token"]})


def change_password(client, api, ids, mailbox):
    token = login(client, "alice").get_json()["token"]
    body = {"current_password": DEMO["alice"], "new_password": "violet-harbour-lamp-31"}
    return client.put("/auth/password", json=body, headers={"token": token})


def change_password_wrong(client, api, ids, mailbox):
    token = login(client, "alice").get_json()["token"]
    body = {"current_password": "not-the-password-at-all", "new_password": "violet-harbour-lamp-31"}
    return client.put("/auth/password", json=body, headers={"token": token})


def forgot(client, api, ids, mailbox):
    address = f"alice-{uuid.uuid4().hex[:10]}@example.com"
    client.put(f"/users/{ids['alice']}", json={"email": address}, headers=api.headers())
    response = client.post("/auth/password/forgot", json={"username": "alice"})
    mailbox.wait_for(address)  # the background worker records the request when it mails the code
    return response


def reset(client, api, ids, mailbox):
    # An address of this test's own, so no other test's late mail is taken for this one's.
    address = f"alice-{uuid.uuid4().hex[:10]}@example.com"
    client.put(f"/users/{ids['alice']}", json={"email": address}, headers=api.headers())
    client.post("/auth/password/forgot", json={"username": "alice"})
    code = re.search(r"#code=(\S+)", mailbox.wait_for(address).get_content()).group(1)
    return client.post("/auth/password/reset", json={"code": code, "password": "violet-harbour-lamp-31"})


def forbidden(client, api, ids, mailbox):
    return client.get("/users", headers=api.headers("alice"))


def as_admin(method, path, json=None):
    """A scenario: one administrative call; the path and JSON body may name ids as {key}."""

    def scenario(client, api, ids, mailbox):
        return client.open(path.format(**ids), method=method, json=fill_ids(json, ids), headers=api.headers())

    return scenario


def fill_ids(value, ids):
    """Replace "{key}" values of a JSON body by the ids they name."""
    if isinstance(value, dict):
        return {key: fill_ids(item, ids) for key, item in value.items()}
    if isinstance(value, str) and re.fullmatch(r"\{\w+\}", value):
        return ids[value[1:-1]]
    return value


SECURITY_EVENTS = {
    "login success": (lambda client, *_: login(client, "alice"), 200, "authn_login_success", "alice", None, {}),
    "login failure": (wrong_password, 401, "authn_login_fail", "alice", None, {}),
    "login failure, unknown user": (unknown_user, 401, "authn_login_fail", None, None, {}),
    "lock": (lock, 401, "authn_login_lock", "bob", None, {"scope": "account", "failures": 5, "locked_for": 30}),
    "logout": (logout, 200, "authn_token_revoked", "alice", None, {"scope": "this token"}),
    "logout-all": (logout_all, 200, "authn_token_revoked", "alice", None, {"scope": "all", "revoked": 2}),
    "password change": (change_password, 200, "authn_password_change", "alice", None, {"revoked": 0}),
    "password change failure": (change_password_wrong, 401, "authn_password_change_fail", "alice", None, {}),
    "reset request": (forgot, 202, "authn_password_reset_request", "alice", None, {"mailed": True}),
    "reset": (reset, 200, "authn_password_reset", "alice", None, {}),
    "missing permission": (forbidden, 403, "authz_fail", "alice", "alice", {"permission": "auth.users.read"}),
}

ADMIN_WRITES = {
    "create user": (
        as_admin("POST", "/users", json={"username": "frank", "password": PASSWORD}),
        201,
        "user_created",
        "new user",
        "admin",
        {"username": "frank"},
    ),
    "update user": (
        as_admin("PUT", "/users/{bob}", json={"name": "Robert", "password": PASSWORD}),
        200,
        "user_updated",
        "bob",
        "admin",
        {"changed": ["name", "password"]},
    ),
    "disable user": (as_admin("DELETE", "/users/{bob}"), 204, "user_archived", "bob", "admin", {}),
    "delete user": (as_admin("DELETE", "/users/{bob}?hard=true"), 204, "user_deleted", "bob", "admin", {}),
    "lift a lock": (as_admin("DELETE", "/users/{bob}/lock"), 204, "user_unlocked", "bob", "admin", {}),
    "create service": (
        as_admin("POST", "/services", json={"name": "billing"}),
        201,
        "authz_admin",
        None,
        "admin",
        {"action": "create service", "name": "billing"},
    ),
    "update service": (
        as_admin("PUT", "/services/stock", json={"description": "Stock"}),
        200,
        "authz_admin",
        None,
        "admin",
        {"action": "update service", "changed": ["description"]},
    ),
    "delete service": (
        as_admin("DELETE", "/services/stock"),
        204,
        "authz_admin",
        None,
        "admin",
        {"action": "delete service", "name": "stock"},
    ),
    "create role": (
        as_admin("POST", "/roles", json={"name": "auditor"}),
        201,
        "authz_admin",
        None,
        "admin",
        {"action": "create role", "name": "auditor"},
    ),
    "update role": (
        as_admin("PUT", "/roles/{clerk}", json={"description": "Counts stock"}),
        200,
        "authz_admin",
        None,
        "admin",
        {"action": "update role"},
    ),
    "delete role": (as_admin("DELETE", "/roles/{clerk}"), 204, "authz_admin", None, "admin", {"action": "delete role"}),
    "create permission": (
        as_admin("POST", "/permissions", json={"name": "stock.count"}),
        201,
        "authz_admin",
        None,
        "admin",
        {"action": "create permission", "name": "stock.count"},
    ),
    "update permission": (
        as_admin("PUT", "/permissions/{stock_write}", json={"description": "Write"}),
        200,
        "authz_admin",
        None,
        "admin",
        {"action": "update permission"},
    ),
    "delete permission": (
        as_admin("DELETE", "/permissions/{stock_write}"),
        204,
        "authz_admin",
        None,
        "admin",
        {"action": "delete permission", "name": "stock.write"},
    ),
    "grant a permission to a role": (
        as_admin("POST", "/role-permissions", json={"role_id": "{clerk}", "permission_id": "{stock_write}"}),
        201,
        "authz_change",
        None,
        "admin",
        {"action": "add role_permission"},
    ),
    "take a permission from a role": (
        as_admin("DELETE", "/role-permissions?role_id={clerk}&permission_id={stock_read}"),
        204,
        "authz_change",
        None,
        "admin",
        {"action": "remove role_permission"},
    ),
    "assign a role to a service": (
        as_admin("POST", "/service-roles", json={"service_id": "sales", "role_id": "{clerk}"}),
        201,
        "authz_change",
        None,
        "admin",
        {"action": "add service_role"},
    ),
    "remove a role from a service": (
        as_admin("DELETE", "/service-roles?service_id={stock}&role_id={clerk}"),
        204,
        "authz_change",
        None,
        "admin",
        {"action": "remove service_role"},
    ),
    "give a person a role": (
        as_admin(
            "POST", "/person-service-roles", json={"user_id": "{bob}", "service_id": "stock", "role_id": "{clerk}"}
        ),
        201,
        "authz_change",
        "bob",
        "admin",
        {"action": "add person_service_role"},
    ),
    "take a role from a person": (
        as_admin("DELETE", "/person-service-roles?user_id={alice}&service_id={stock}&role_id={clerk}"),
        204,
        "authz_change",
        "alice",
        "admin",
        {"action": "remove person_service_role"},
    ),
}


@pytest.mark.parametrize("case", [*SECURITY_EVENTS, *ADMIN_WRITES])
def test_every_security_event_and_admin_write_is_recorded_and_logged(client, api, ids, mailbox, caplog, case):
    scenario, status, event, about, by, detail = {**SECURITY_EVENTS, **ADMIN_WRITES}[case]
    caplog.set_level(logging.INFO, logger="auth.audit")

    response = scenario(client, api, ids, mailbox)

    assert response.status_code == status, response.get_json()
    if about == "new user":
        ids = {**ids, about: response.get_json()["id"]}
    # Filtered by user too: the admin's login to read the trail is an event as well.
    item = newest(client, api, event, **({"user_id": ids[about]} if about else {}))
    assert item["user_id"] == (ids[about] if about else None)
    assert item["actor_id"] == (ids[by] if by else None)
    assert item["ip"] == "127.0.0.1"
    assert detail.items() <= item["detail"].items()
    # The same event as one log line, named with the OWASP vocabulary.
    lines = audit_lines(caplog, event)
    assert any(
        (line.user_id, line.actor_id, line.ip) == (item["user_id"], item["actor_id"], item["ip"]) for line in lines
    )


def test_an_ip_lock_is_recorded_as_such(client, api):
    body = {"password": "not-the-password-at-all"}
    for n in range(20):
        # Four guesses a name, so that no account locks; from another address than the admin's.
        client.post(
            "/auth/login", json={**body, "username": f"guess-{n // 4}"}, environ_base={"REMOTE_ADDR": "192.0.2.9"}
        )

    lock = newest(client, api, "authn_login_lock")
    assert lock["detail"] == {"scope": "ip", "failures": 20, "locked_for": 30}
    assert lock["ip"] == "192.0.2.9"


def test_refused_and_unchanged_writes_record_nothing(client, api, test_database):
    headers = api.headers()
    before = db_rows(test_database, "select count(*) as n from auth.audit_events")[0]["n"]

    assert client.post("/users", json={"username": "x"}, headers=headers).status_code == 400
    assert client.put("/users/999999", json={"name": "x"}, headers=headers).status_code == 404
    assert client.post("/services", json={"name": "stock"}, headers=headers).status_code == 409

    assert db_rows(test_database, "select count(*) as n from auth.audit_events")[0]["n"] == before


def test_the_audit_ip_is_the_client_behind_a_trusted_proxy(app_factory):
    client = app_factory(TRUSTED_PROXIES=["10.0.0.1"]).test_client()
    client.post(
        "/auth/login",
        json={"username": "alice", "password": "not-the-password-at-all"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
        headers={"X-Forwarded-For": "203.0.113.50"},
    )
    token = login(client, "admin").get_json()["token"]
    items = client.get("/audit-events?event=authn_login_fail", headers={"token": token}).get_json()["items"]
    assert [item["ip"] for item in items] == ["203.0.113.50"]


# --- GET /audit-events ------------------------------------------------------------------


@pytest.fixture
def trail(client, test_database):
    """Six events: alice logs in twice and fails once, bob logs in and fails twice."""
    for username, password in [
        ("alice", None),
        ("bob", "wrong-password-here"),
        ("alice", "wrong-password-here"),
        ("bob", None),
        ("alice", None),
        ("bob", "wrong-password-here"),
    ]:
        login(client, username, password)
    return db_rows(test_database, "select id, event, user_id, at from auth.audit_events order by id")


def test_events_come_newest_first_in_the_contract_shape(client, api, trail):
    body = events(client, api)

    assert set(body) == {"items", "total", "limit", "offset"}
    assert body["limit"] == 100 and body["offset"] == 0
    # The admin's own login for this request is in the trail too.
    assert body["total"] == len(trail) + 1
    items = body["items"]
    assert all(list(item) == FIELDS for item in items)
    assert [item["id"] for item in items] == sorted((item["id"] for item in items), reverse=True)
    times = [datetime.datetime.fromisoformat(item["at"]) for item in items]
    assert times == sorted(times, reverse=True)
    assert all(at.utcoffset() == datetime.timedelta(0) for at in times)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"event": "authn_login_fail"}, lambda e, ids: e["event"] == "authn_login_fail"),
        ({"user_id": "alice"}, lambda e, ids: e["user_id"] == ids["alice"]),
        (
            {"user_id": "bob", "event": "authn_login_success"},
            lambda e, ids: e["user_id"] == ids["bob"] and e["event"] == "authn_login_success",
        ),
        ({"event": "no_such_event"}, lambda e, ids: False),
    ],
)
def test_filters_by_user_and_event(client, api, ids, trail, filters, expected):
    query = {key: ids.get(value, value) for key, value in filters.items()}
    body = events(client, api, **query)

    wanted = sorted((e["id"] for e in trail if expected(e, ids)), reverse=True)
    assert [item["id"] for item in body["items"]] == wanted
    assert body["total"] == len(wanted)


def test_since_keeps_the_events_at_or_after_a_time(client, api, trail, test_database):
    cut = trail[3]["at"]
    db_rows(test_database, "update auth.audit_events set at = at - interval '1 hour' where id < %s", [trail[3]["id"]])

    for since in (cut.isoformat(), cut.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")):
        ids = {item["id"] for item in events(client, api, since=since)["items"]}
        assert {e["id"] for e in trail[3:]} <= ids
        assert not ids & {e["id"] for e in trail[:3]}
    future = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat()
    assert events(client, api, since=future)["items"] == []


def test_pages_split_the_list_without_overlap(client, api, trail):
    headers = api.headers()
    first = client.get("/audit-events?limit=4", headers=headers).get_json()
    second = client.get("/audit-events?limit=4&offset=4", headers=headers).get_json()

    assert (first["limit"], first["offset"], second["offset"]) == (4, 0, 4)
    assert len(first["items"]) == 4
    assert first["total"] == second["total"] == 4 + len(second["items"])
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    assert first["items"][-1]["id"] > second["items"][0]["id"]


@pytest.mark.parametrize(
    "query",
    ["since=yesterday", "since=2024-13-01", "user_id=abc", "user_id=0", "limit=0", "limit=1001", "offset=-1"],
)
def test_bad_filters_are_a_validation_error(client, api, query):
    response = client.get(f"/audit-events?{query}", headers=api.headers())
    assert response.status_code == 400
    assert response.get_json()["error"] == "validation_error"


@pytest.mark.parametrize(
    ("who", "status", "error"),
    [(None, 401, "missing_token"), ("alice", 403, "forbidden"), ("bob", 403, "forbidden")],
)
def test_only_audit_readers_see_the_trail(client, api, ids, who, status, error):
    response = client.get("/audit-events", headers=api.headers(who) if who else {})

    assert response.status_code == status
    assert response.get_json()["error"] == error
    if who:
        refusal = newest(client, api, "authz_fail")
        assert refusal["user_id"] == ids[who]
        assert refusal["detail"] == {"permission": "auth.audit.read"}


def test_a_dead_token_cannot_read_the_trail(client):
    response = client.get("/audit-events", headers={"token": "0" * 64})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
