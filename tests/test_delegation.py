"""Delegated administration cannot escalate (web/delegation.py): the admin plane takes auth.admin,
nobody grants what they do not hold or changes their own grants, credentials of those above
the caller are out of reach, one's own credentials need the current password, and no write
leaves the service without an administrator. Every refusal is 403 naming its rule, writes
nothing and is audited as authz_fail; the administrator's same request succeeds."""

import threading
from dataclasses import dataclass

import pytest

from tests.fixtures import DEMO, assert_error, audit_events_after, db_rows, last_audit_id, snapshot

PASSWORD = "correct-horse-battery-9"
NEW_PASSWORD = "lilac-thunder-harbor-93"
BUILTIN = ["auth.users.read", "auth.users.write", "auth.rbac.read", "auth.rbac.write", "auth.audit.read", "auth.admin"]


@dataclass
class Person:
    """A user of a test, with the headers of a fresh login."""

    id: int
    username: str
    headers: dict
    role_id: int | None = None


def ident(url, table, name):
    column = "username" if table == "users" else "name"
    return db_rows(url, f"select id from auth.{table} where {column} = %s", [name])[0]["id"]  # noqa: S608


def add_auth_role(url, role, permissions):
    """A role linked to service auth that carries exactly `permissions`; returns its id."""
    role_id = db_rows(url, "insert into auth.roles (name) values (%s) returning id", [role])[0]["id"]
    db_rows(
        url,
        "insert into auth.role_permissions (role_id, permission_id)"
        " select %s, id from auth.permissions where name = any(%s)",
        [role_id, list(permissions)],
    )
    db_rows(
        url,
        "insert into auth.service_roles (service_id, role_id) select id, %s from auth.services where name = 'auth'",
        [role_id],
    )
    return role_id


def give(url, user_id, role_id, service="auth"):
    db_rows(
        url,
        "insert into auth.person_service_roles (user_id, service_id, role_id)"
        " select %s, id, %s from auth.services where name = %s",
        [user_id, role_id, service],
    )


class People:
    """Makes the delegated administrators of a test."""

    def __init__(self, api, url):
        self.api, self.url = api, url

    def delegate(self, username, permissions):
        """A user whose one role in auth carries exactly `permissions`."""
        user = self.api.create_user(username, password=PASSWORD, email=f"{username}@example.org")
        role_id = add_auth_role(self.url, f"{username}-role", permissions)
        give(self.url, user["id"], role_id)
        return Person(user["id"], username, self.api.headers(username, PASSWORD), role_id)

    def admin(self):
        """The demo administrator, who holds every built-in permission through role admin."""
        return Person(ident(self.url, "users", "admin"), "admin", self.api.headers("admin"))

    def second_admin(self, username="root2"):
        """Another user holding role admin in auth."""
        user = self.api.create_user(username, password=PASSWORD, email=f"{username}@example.org")
        give(self.url, user["id"], ident(self.url, "roles", "admin"))
        return Person(user["id"], username, self.api.headers(username, PASSWORD))


@pytest.fixture
def people(api, test_database):
    return People(api, test_database)


@pytest.fixture
def rbacw(people):
    """Holds only auth.rbac.write."""
    return people.delegate("rbacw", ["auth.rbac.write"])


@pytest.fixture
def usrw(people):
    """Holds only auth.users.write."""
    return people.delegate("usrw", ["auth.users.write"])


@pytest.fixture
def stock_admin(people):
    """Reads and writes RBAC (for the business services), without auth.admin."""
    return people.delegate("stockadm", ["auth.rbac.read", "auth.rbac.write"])


@pytest.fixture
def admin(people):
    return people.admin()


def refused(client, url, person, method, path, body=None, rule=None, query=None):
    """Send the request as `person`: 403 naming the rule, nothing written, one authz_fail."""
    before = snapshot(url, leave_out=("audit_events",))
    mark = last_audit_id(url)

    response = client.open(path, method=method, json=body, query_string=query, headers=person.headers)

    error = assert_error(response, 403, "forbidden")
    if rule:
        assert f"'{rule}'" in error["message"], error["message"]
    assert snapshot(url, leave_out=("audit_events",)) == before
    assert audit_events_after(url, mark) == ["authz_fail"]
    detail = db_rows(url, "select detail from auth.audit_events where id > %s", [mark])[0]["detail"]
    if rule:
        assert detail["rule"] == rule
    return error


def auth_roles_of(url, user_id):
    rows = db_rows(
        url,
        "select r.name from auth.person_service_roles psr join auth.services s on s.id = psr.service_id"
        " join auth.roles r on r.id = psr.role_id where psr.user_id = %s and s.name = 'auth' order by 1",
        [user_id],
    )
    return [row["name"] for row in rows]


# --- rule 1: the admin plane takes auth.admin --------------------------------------------------


@pytest.mark.parametrize("spelling", ["name", "id", "decimal string"])
def test_a_rbac_writer_cannot_give_himself_role_admin(client, test_database, rbacw, spelling):
    auth = ident(test_database, "services", "auth")
    service = {"name": "auth", "id": auth, "decimal string": str(auth)}[spelling]
    role = ident(test_database, "roles", "admin")
    body = {"user_id": str(rbacw.id), "service_id": service, "role_id": role}

    refused(client, test_database, rbacw, "POST", "/person-service-roles", body, rule="admin plane")

    assert auth_roles_of(test_database, rbacw.id) == ["rbacw-role"]
    assert client.get("/users", headers=rbacw.headers).status_code == 403


def test_a_rbac_writer_cannot_give_anyone_a_role_in_auth(client, test_database, rbacw, admin):
    body = {"user_id": ident(test_database, "users", "bob"), "service_id": "auth", "role_id": rbacw.role_id}
    refused(client, test_database, rbacw, "POST", "/person-service-roles", body, rule="admin plane")

    assert client.post("/person-service-roles", json=body, headers=admin.headers).status_code == 201


def test_a_rbac_writer_cannot_take_the_administrators_role(client, test_database, rbacw):
    body = {"user_id": ident(test_database, "users", "admin"), "service_id": "auth", "role_id": 1}
    refused(client, test_database, rbacw, "DELETE", "/person-service-roles", body, rule="admin plane")
    assert auth_roles_of(test_database, ident(test_database, "users", "admin")) == ["admin"]


@pytest.mark.parametrize("permission", ["auth.admin", "auth.users.write", "auth.audit.read"])
def test_a_rbac_writer_cannot_add_an_auth_permission_to_his_own_role(client, test_database, rbacw, permission):
    body = {"role_id": rbacw.role_id, "permission_id": ident(test_database, "permissions", permission)}
    refused(client, test_database, rbacw, "POST", "/role-permissions", body, rule="admin plane")


def test_a_rbac_writer_cannot_add_an_auth_permission_to_any_role(client, test_database, rbacw, admin):
    body = {
        "role_id": ident(test_database, "roles", "clerk"),
        "permission_id": ident(test_database, "permissions", "auth.audit.read"),
    }
    refused(client, test_database, rbacw, "POST", "/role-permissions", body, rule="admin plane")

    assert client.post("/role-permissions", json=body, headers=admin.headers).status_code == 201


def test_a_rbac_writer_cannot_link_a_role_to_auth_or_unlink_one(client, test_database, rbacw, people, admin):
    clerk = ident(test_database, "roles", "clerk")
    refused(
        client, test_database, rbacw, "POST", "/service-roles", {"service_id": "auth", "role_id": clerk}, "admin plane"
    )
    other = add_auth_role(test_database, "auditor", ["auth.audit.read"])
    unlink = {"service_id": "auth", "role_id": other}
    refused(client, test_database, rbacw, "DELETE", "/service-roles", unlink, rule="admin plane")

    assert (
        client.post("/service-roles", json={"service_id": "auth", "role_id": clerk}, headers=admin.headers).status_code
        == 201
    )
    assert client.delete("/service-roles", json=unlink, headers=admin.headers).status_code == 204


@pytest.mark.parametrize("name", ["auth.backdoor", "AUTH.backdoor", "Auth.Users.Write2"])
def test_a_rbac_writer_cannot_create_an_auth_permission_in_any_spelling(client, test_database, rbacw, admin, name):
    refused(client, test_database, rbacw, "POST", "/permissions", {"name": name}, rule="admin plane")
    assert client.post("/permissions", json={"name": name}, headers=admin.headers).status_code == 201


def test_a_rbac_writer_cannot_rename_a_permission_into_or_out_of_auth(client, test_database, rbacw, admin):
    stock_read = ident(test_database, "permissions", "stock.read")
    refused(client, test_database, rbacw, "PUT", f"/permissions/{stock_read}", {"name": "auth.stock"}, "admin plane")
    custom = client.post("/permissions", json={"name": "auth.reports"}, headers=admin.headers).get_json()["id"]
    refused(client, test_database, rbacw, "PUT", f"/permissions/{custom}", {"name": "reports"}, "admin plane")
    refused(client, test_database, rbacw, "DELETE", f"/permissions/{custom}", rule="admin plane")

    assert client.put(f"/permissions/{custom}", json={"name": "reports"}, headers=admin.headers).status_code == 200


def test_a_rbac_writer_cannot_change_service_auth_or_delete_a_role_held_there(client, test_database, rbacw, admin):
    refused(client, test_database, rbacw, "PUT", "/services/auth", {"description": "mine now"}, rule="admin plane")
    auditor = add_auth_role(test_database, "auditor", ["auth.audit.read"])
    give(test_database, ident(test_database, "users", "bob"), auditor)
    refused(client, test_database, rbacw, "DELETE", f"/roles/{auditor}", rule="admin plane")

    assert client.put("/services/auth", json={"description": "Ours"}, headers=admin.headers).status_code == 200
    assert client.delete(f"/roles/{auditor}", headers=admin.headers).status_code == 204


def test_a_stock_admin_runs_the_business_services_but_not_the_admin_plane(client, test_database, stock_admin):
    clerk, seller = ident(test_database, "roles", "clerk"), ident(test_database, "roles", "seller")
    alice = ident(test_database, "users", "alice")
    stock_write = ident(test_database, "permissions", "stock.write")
    headers = stock_admin.headers

    assert (
        client.post(
            "/role-permissions", json={"role_id": clerk, "permission_id": stock_write}, headers=headers
        ).status_code
        == 201
    )
    assert (
        client.post("/service-roles", json={"service_id": "sales", "role_id": clerk}, headers=headers).status_code
        == 201
    )
    assert (
        client.post(
            "/person-service-roles", json={"user_id": alice, "service_id": "sales", "role_id": clerk}, headers=headers
        ).status_code
        == 201
    )
    assert (
        client.delete(
            "/person-service-roles", json={"user_id": alice, "service_id": "sales", "role_id": seller}, headers=headers
        ).status_code
        == 204
    )
    assert client.post("/permissions", json={"name": "stock.count"}, headers=headers).status_code == 201

    body = {"user_id": stock_admin.id, "service_id": "auth", "role_id": 1}
    refused(client, test_database, stock_admin, "POST", "/person-service-roles", body, rule="admin plane")


# --- rule 2: grant only what you hold, never your own grants ----------------------------------


def test_an_administrator_cannot_change_his_own_grants(client, test_database, admin):
    auditor = add_auth_role(test_database, "auditor", ["auth.audit.read"])
    refused(
        client,
        test_database,
        admin,
        "POST",
        "/person-service-roles",
        {"user_id": admin.id, "service_id": "auth", "role_id": auditor},
        "grant only what you hold",
    )
    refused(
        client,
        test_database,
        admin,
        "DELETE",
        "/person-service-roles",
        {"user_id": admin.id, "service_id": "auth", "role_id": 1},
        "grant only what you hold",
    )
    backdoor = client.post("/permissions", json={"name": "auth.backdoor"}, headers=admin.headers).get_json()["id"]
    refused(
        client,
        test_database,
        admin,
        "POST",
        "/role-permissions",
        {"role_id": 1, "permission_id": backdoor},
        "grant only what you hold",
    )


def test_a_partial_administrator_grants_only_what_he_holds(client, test_database, people):
    partial = people.delegate("partial", ["auth.admin", "auth.rbac.read", "auth.rbac.write"])
    bob = ident(test_database, "users", "bob")
    admin_role = ident(test_database, "roles", "admin")

    error = refused(
        client,
        test_database,
        partial,
        "POST",
        "/person-service-roles",
        {"user_id": bob, "service_id": "auth", "role_id": admin_role},
        "grant only what you hold",
    )
    assert "auth.users.write" in error["message"]
    users_write = ident(test_database, "permissions", "auth.users.write")
    reader = add_auth_role(test_database, "reader", ["auth.rbac.read"])
    refused(
        client,
        test_database,
        partial,
        "POST",
        "/role-permissions",
        {"role_id": reader, "permission_id": users_write},
        "grant only what you hold",
    )

    assert (
        client.post(
            "/person-service-roles",
            json={"user_id": bob, "service_id": "auth", "role_id": reader},
            headers=partial.headers,
        ).status_code
        == 201
    )


def test_a_permission_renamed_into_auth_is_granted_by_nobody(client, test_database, admin):
    # Role clerk is held by alice in stock; linked to auth and held by bob there, any of its
    # permissions renamed into auth.* would be an auth permission bob gains from thin air.
    clerk = ident(test_database, "roles", "clerk")
    give(test_database, ident(test_database, "users", "bob"), clerk, service="stock")
    db_rows(
        test_database,
        "insert into auth.service_roles (service_id, role_id) select id, %s from auth.services where name = 'auth'",
        [clerk],
    )
    give(test_database, ident(test_database, "users", "bob"), clerk)
    stock_read = ident(test_database, "permissions", "stock.read")

    refused(
        client,
        test_database,
        admin,
        "PUT",
        f"/permissions/{stock_read}",
        {"name": "auth.stock.read"},
        "grant only what you hold",
    )


# --- rule 3: manage only those below you -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/users/{id}", {"password": NEW_PASSWORD}),
        ("PUT", "/users/{id}", {"email": "usrw-inbox@example.org"}),
        ("PUT", "/users/{id}", {"username": "former-admin"}),
        ("PUT", "/users/{id}", {"active": False}),
        ("DELETE", "/users/{id}", None),
        ("DELETE", "/users/{id}?hard=true", None),
        ("DELETE", "/users/{id}/lock", None),
    ],
    ids=["password", "email", "username", "disable", "delete", "hard delete", "unlock"],
)
def test_a_users_writer_cannot_touch_an_administrator(client, test_database, usrw, people, method, path, body):
    admin = people.admin()
    refused(
        client, test_database, usrw, method, path.replace("{id}", str(admin.id)), body, "manage only those below you"
    )
    assert client.post("/auth/login", json={"username": "admin", "password": DEMO["admin"]}).status_code == 200


def test_a_users_writer_manages_those_below_him_and_the_administrator_manages_him(
    client, test_database, usrw, admin, mailbox
):
    alice = ident(test_database, "users", "alice")
    assert client.put(f"/users/{alice}", json={"password": NEW_PASSWORD}, headers=usrw.headers).status_code == 200
    assert (
        client.put(
            f"/users/{ident(test_database, 'users', 'admin')}", json={"name": "The Admin"}, headers=usrw.headers
        ).status_code
        == 200
    )

    assert client.put(f"/users/{usrw.id}", json={"active": False}, headers=admin.headers).status_code == 200


def test_a_delegated_administrator_cannot_demote_one_above_him(client, test_database, people, admin):
    partial = people.delegate("partial", ["auth.admin", "auth.rbac.write"])
    body = {"user_id": admin.id, "service_id": "auth", "role_id": 1}
    refused(client, test_database, partial, "DELETE", "/person-service-roles", body, "manage only those below you")


# --- rule 4: one's own credentials need the current password -----------------------------------


@pytest.mark.parametrize("change", [{"password": NEW_PASSWORD}, {"email": "root@example.org"}])
def test_changing_ones_own_credentials_needs_the_current_password(client, test_database, admin, change):
    body = assert_error(client.put(f"/users/{admin.id}", json=change, headers=admin.headers), 400, "validation_error")
    assert "current_password" in body["fields"]

    response = client.put(
        f"/users/{admin.id}", json={**change, "current_password": "not-my-password"}, headers=admin.headers
    )

    assert_error(response, 401, "invalid_credentials")
    # Counted on the account as seen from this address, which the administrator logged in from.
    key = f"user:{admin.id}@127.0.0.1"
    failures = db_rows(test_database, "select failures from auth.login_failures where key = %s", [key])
    assert failures == [{"failures": 1}]
    response = client.put(
        f"/users/{admin.id}", json={**change, "current_password": DEMO["admin"]}, headers=admin.headers
    )
    assert response.status_code == 200, response.get_json()
    # The caller's own session survives, as with PUT /auth/password.
    assert client.get("/auth/profile", headers=admin.headers).status_code == 200


def test_ones_own_name_needs_no_password(client, admin):
    assert client.put(f"/users/{admin.id}", json={"name": "Root"}, headers=admin.headers).status_code == 200


def test_wrong_current_passwords_lock_like_logins(client, admin):
    for _ in range(5):
        response = client.put(
            f"/users/{admin.id}",
            json={"password": NEW_PASSWORD, "current_password": "nope-nope-nope"},
            headers=admin.headers,
        )
        assert_error(response, 401, "invalid_credentials")
    response = client.put(
        f"/users/{admin.id}", json={"password": NEW_PASSWORD, "current_password": DEMO["admin"]}, headers=admin.headers
    )
    assert_error(response, 429, "too_many_attempts")


# --- rule 5: nobody can lock the house ----------------------------------------------------------


@pytest.mark.parametrize("permission", BUILTIN)
def test_builtin_permissions_survive_every_delete_and_rename(client, test_database, admin, rbacw, permission):
    ref = ident(test_database, "permissions", permission)
    for person in (admin, rbacw):
        assert_error(client.delete(f"/permissions/{ref}", headers=person.headers), 409, "conflict")
        assert_error(client.put(f"/permissions/{ref}", json={"name": "gone"}, headers=person.headers), 409, "conflict")
    assert_error(
        client.delete("/role-permissions", json={"role_id": 1, "permission_id": ref}, headers=admin.headers),
        409,
        "conflict",
    )
    held = db_rows(
        test_database, "select count(*) as n from auth.role_permissions where role_id = 1 and permission_id = %s", [ref]
    )
    assert held == [{"n": 1}]


@pytest.mark.parametrize(
    ("method", "path"), [("PUT", "/users/{id}"), ("DELETE", "/users/{id}"), ("DELETE", "/users/{id}?hard=true")]
)
def test_the_last_administrator_cannot_disable_or_delete_himself(client, test_database, admin, method, path):
    response = client.open(
        path.replace("{id}", str(admin.id)),
        method=method,
        json={"active": False} if method == "PUT" else None,
        headers=admin.headers,
    )

    assert_error(response, 409, "conflict")
    assert db_rows(test_database, "select active from auth.users where id = %s", [admin.id]) == [{"active": True}]


def test_one_of_two_administrators_may_leave(client, test_database, people, admin):
    people.second_admin()
    assert client.put(f"/users/{admin.id}", json={"active": False}, headers=admin.headers).status_code == 200


def race(client_factory, requests):
    """Send `requests` ((headers, method, path, body) each) at once from threads; their statuses."""
    start = threading.Barrier(len(requests))
    statuses = [None] * len(requests)

    def send(n, headers, method, path, body):
        client = client_factory()
        start.wait()
        statuses[n] = client.open(path, method=method, json=body, headers=headers).status_code

    threads = [threading.Thread(target=send, args=(n, *request)) for n, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


def full_administrators(url):
    return db_rows(
        url,
        "select count(*) as n from auth.users u where u.active and u.id in"
        " (select psr.user_id from auth.person_service_roles psr join auth.roles r on r.id = psr.role_id"
        " join auth.services s on s.id = psr.service_id where r.name = 'admin' and s.name = 'auth')",
    )[0]["n"]


def reset_administrators(url):
    """Everyone active, and only the demo admin holding a role in auth."""
    db_rows(url, "update auth.users set active = true")
    db_rows(
        url,
        "delete from auth.person_service_roles psr"
        " using auth.services s where s.id = psr.service_id and s.name = 'auth'",
    )
    give(url, ident(url, "users", "admin"), ident(url, "roles", "admin"))


def test_two_administrators_demoting_each_other_at_once_leave_one(app, test_database, people):
    for round_ in range(20):
        reset_administrators(test_database)
        first, second = people.admin(), people.second_admin(f"root{round_}")
        demote = [
            (
                first.headers,
                "DELETE",
                "/person-service-roles",
                {"user_id": second.id, "service_id": "auth", "role_id": 1},
            ),
            (
                second.headers,
                "DELETE",
                "/person-service-roles",
                {"user_id": first.id, "service_id": "auth", "role_id": 1},
            ),
        ]
        statuses = race(app.test_client, demote)
        assert sorted(statuses) == [204, 403], statuses
        assert full_administrators(test_database) == 1


def test_two_last_administrators_leaving_at_once_leave_one(app, test_database, people):
    for round_ in range(20):
        reset_administrators(test_database)
        first, second = people.admin(), people.second_admin(f"root{round_}")
        leave = [(person.headers, "PUT", f"/users/{person.id}", {"active": False}) for person in (first, second)]
        statuses = race(app.test_client, leave)
        assert sorted(statuses) == [200, 409], statuses
        assert full_administrators(test_database) == 1


def test_concurrent_self_grants_all_fail(app, test_database, rbacw):
    grant = (rbacw.headers, "POST", "/person-service-roles", {"user_id": rbacw.id, "service_id": "auth", "role_id": 1})

    statuses = race(app.test_client, [grant] * 16)

    assert statuses == [403] * 16
    assert auth_roles_of(test_database, rbacw.id) == ["rbacw-role"]


# --- rule 6: one namespace for logins ------------------------------------------------------------


@pytest.mark.parametrize("username", ["alice@example.com", "dora@", "@dora"])
def test_a_username_cannot_look_like_an_email(client, test_database, admin, username):
    response = client.post("/users", json={"username": username, "password": PASSWORD}, headers=admin.headers)
    assert "username" in assert_error(response, 400, "validation_error")["fields"]
    bob = ident(test_database, "users", "bob")
    response = client.put(f"/users/{bob}", json={"username": username}, headers=admin.headers)
    assert "username" in assert_error(response, 400, "validation_error")["fields"]


def test_an_old_username_with_an_at_captures_no_ones_login(client, test_database, admin, mailbox):
    # A name from before the rule, equal to alice's address: alice's address still means alice.
    db_rows(test_database, "insert into auth.users (username, password_hash) values ('alice@example.com', 'x')")
    response = client.post("/auth/login", json={"username": "alice@example.com", "password": DEMO["alice"]})
    assert response.status_code == 200
    assert response.get_json()["payload"]["username"] == "alice"

    response = client.post(
        "/users", json={"username": "dora", "password": PASSWORD, "email": "ALICE@example.com"}, headers=admin.headers
    )
    assert "email" in assert_error(response, 409, "conflict")["fields"]


@pytest.mark.parametrize("email", ["dora@example.com, eve@example.com", "Dora <dora@example.com>", "dora@@example.com"])
def test_an_email_is_exactly_one_address(client, admin, email):
    response = client.post(
        "/users", json={"username": "dora", "password": PASSWORD, "email": email}, headers=admin.headers
    )
    assert "email" in assert_error(response, 400, "validation_error")["fields"]


# --- rule 7: tell the owner ------------------------------------------------------------------------


def test_an_email_change_is_told_to_the_old_address(client, api, admin, mailbox):
    dora = api.create_user("dora", email="dora-old@example.org")
    assert (
        client.put(f"/users/{dora['id']}", json={"email": "dora-new@example.org"}, headers=admin.headers).status_code
        == 200
    )

    notice = mailbox.wait_for("dora-old@example.org")

    assert "email address" in notice["Subject"]
    assert "dora" in notice.get_content()
    assert mailbox.to("dora-new@example.org") == []


@pytest.mark.parametrize("path", ["admin", "self"])
def test_a_password_change_is_told_to_the_owner(client, api, admin, mailbox, path):
    address = f"dora-{path}@example.org"
    dora = api.create_user("dora", password=PASSWORD, email=address)
    if path == "admin":
        response = client.put(f"/users/{dora['id']}", json={"password": NEW_PASSWORD}, headers=admin.headers)
    else:
        body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        response = client.put("/auth/password", json=body, headers=api.headers("dora", PASSWORD))
    assert response.status_code == 200

    notice = mailbox.wait_for(address)

    assert "password" in notice["Subject"]
    assert ("by an administrator" if path == "admin" else "by you") in notice.get_content()
    assert NEW_PASSWORD not in notice.get_content()
