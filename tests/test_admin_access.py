"""Every administration route of API.md ("Administration") refuses a caller without a live
token (401) or without the route's permission in service "auth" (403, nothing written),
and lets the demo administrator through."""

import re
import secrets
from dataclasses import dataclass

import pytest
from psycopg import sql

from security.tokens import digest
from tests.fixtures import assert_error, audit_events_after, db_rows, last_audit_id, snapshot


@dataclass(frozen=True)
class Ref:
    """The id of a demo row, looked up at run time (ids are the database's business)."""

    table: str
    name: str


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as API.md writes it, with {id}
    permission: str
    status: int  # what the administrator gets
    target: Ref | None = None  # what {id} stands for
    body: dict | None = None  # JSON body; Ref values become ids
    second: Ref | None = None  # what a second parameter, {key_id}, stands for

    def __str__(self):
        return f"{self.method} {self.path}"


USERS_READ, USERS_WRITE = "auth.users.read", "auth.users.write"
RBAC_READ, RBAC_WRITE = "auth.rbac.read", "auth.rbac.write"
BOB, STOCK, CLERK = Ref("users", "bob"), Ref("services", "stock"), Ref("roles", "clerk")
STOCK_READ = Ref("permissions", "stock.read")

# The table of API.md "Administration", one row per method and path.
ROUTES = [
    Route("GET", "/users", USERS_READ, 200),
    Route("GET", "/users/{id}", USERS_READ, 200, BOB),
    Route("POST", "/users", USERS_WRITE, 201, body={"username": "dora", "password": "velvet-compass-93"}),
    Route("PUT", "/users/{id}", USERS_WRITE, 200, BOB, {"name": "Robert"}),
    Route("DELETE", "/users/{id}", USERS_WRITE, 204, BOB),
    Route("DELETE", "/users/{id}/lock", USERS_WRITE, 204, BOB),
    Route("DELETE", "/users/{id}/mfa", USERS_WRITE, 204, BOB),
    Route("GET", "/audit-events", "auth.audit.read", 200),
    Route("GET", "/services", RBAC_READ, 200),
    Route("POST", "/services", RBAC_WRITE, 201, body={"name": "billing"}),
    Route("GET", "/services/{id}", RBAC_READ, 200, STOCK),
    Route("PUT", "/services/{id}", RBAC_WRITE, 200, STOCK, {"description": "Warehouses"}),
    Route("DELETE", "/services/{id}", RBAC_WRITE, 204, STOCK),
    Route("GET", "/services/{id}/keys", RBAC_READ, 200, STOCK),
    Route("POST", "/services/{id}/keys", RBAC_WRITE, 201, STOCK, {"name": "billing backend"}),
    Route("DELETE", "/services/{id}/keys/{key_id}", RBAC_WRITE, 204, STOCK, second=Ref("service_keys", "stock key")),
    Route("GET", "/roles", RBAC_READ, 200),
    Route("POST", "/roles", RBAC_WRITE, 201, body={"name": "auditor"}),
    Route("GET", "/roles/{id}", RBAC_READ, 200, CLERK),
    Route("PUT", "/roles/{id}", RBAC_WRITE, 200, CLERK, {"description": "Counts stock"}),
    Route("DELETE", "/roles/{id}", RBAC_WRITE, 204, CLERK),
    Route("GET", "/permissions", RBAC_READ, 200),
    Route("POST", "/permissions", RBAC_WRITE, 201, body={"name": "stock.audit"}),
    Route("GET", "/permissions/{id}", RBAC_READ, 200, STOCK_READ),
    Route("PUT", "/permissions/{id}", RBAC_WRITE, 200, STOCK_READ, {"description": "Look at stock"}),
    Route("DELETE", "/permissions/{id}", RBAC_WRITE, 204, STOCK_READ),
    Route("GET", "/role-permissions", RBAC_READ, 200),
    Route(
        "POST",
        "/role-permissions",
        RBAC_WRITE,
        201,
        body={"role_id": CLERK, "permission_id": Ref("permissions", "stock.write")},
    ),
    Route("DELETE", "/role-permissions", RBAC_WRITE, 204, body={"role_id": CLERK, "permission_id": STOCK_READ}),
    Route("GET", "/service-roles", RBAC_READ, 200),
    Route("POST", "/service-roles", RBAC_WRITE, 201, body={"service_id": Ref("services", "sales"), "role_id": CLERK}),
    Route("DELETE", "/service-roles", RBAC_WRITE, 204, body={"service_id": STOCK, "role_id": CLERK}),
    Route("GET", "/person-service-roles", RBAC_READ, 200),
    Route(
        "POST", "/person-service-roles", RBAC_WRITE, 201, body={"user_id": BOB, "service_id": STOCK, "role_id": CLERK}
    ),
    Route(
        "DELETE",
        "/person-service-roles",
        RBAC_WRITE,
        204,
        body={"user_id": Ref("users", "alice"), "service_id": STOCK, "role_id": CLERK},
    ),
]
WRITES = [route for route in ROUTES if route.permission.endswith(".write")]
# Routes reader (who holds only auth.users.read) must not pass.
NOT_USERS_READ = [route for route in ROUTES if route.permission != USERS_READ]
# Served by the app but not administration: open, or guarded by the token itself.
NOT_ADMIN = re.compile(r"^/(auth/|check-token$|revocations$|healthz$|readyz$|openapi\.json$)")


def row_id(url, ref):
    column = "username" if ref.table == "users" else "name"
    query = sql.SQL("select id from auth.{} where {} = %s").format(sql.Identifier(ref.table), sql.Identifier(column))
    return db_rows(url, query, [ref.name])[0]["id"]


def send(client, url, route, headers=None, query_string=None):
    """Send `route` as the administrator would, ids resolved in the current database."""
    path = route.path.replace("{id}", str(row_id(url, route.target))) if route.target else route.path
    if route.second:
        path = path.replace("{key_id}", str(row_id(url, route.second)))
    body = None
    if route.body is not None:
        body = {key: row_id(url, value) if isinstance(value, Ref) else value for key, value in route.body.items()}
    return client.open(path, method=route.method, json=body, headers=headers or {}, query_string=query_string)


@pytest.fixture
def reader(api, test_database):
    """A user whose one role in "auth" carries only auth.users.read."""
    api.create_user("rita", "quiet-lemur-harbor-4")
    for statement in (
        "insert into auth.roles (name) values ('user-reader')",
        "insert into auth.role_permissions (role_id, permission_id)"
        " select r.id, p.id from auth.roles r, auth.permissions p"
        " where r.name = 'user-reader' and p.name = 'auth.users.read'",
        "insert into auth.service_roles (service_id, role_id)"
        " select s.id, r.id from auth.services s, auth.roles r where s.name = 'auth' and r.name = 'user-reader'",
        "insert into auth.person_service_roles (user_id, service_id, role_id)"
        " select u.id, s.id, r.id from auth.users u, auth.services s, auth.roles r"
        " where u.username = 'rita' and s.name = 'auth' and r.name = 'user-reader'",
    ):
        db_rows(test_database, statement)
    return api.login("rita", "quiet-lemur-harbor-4")


def dead_token(kind, api, client, test_database):
    if kind == "unknown":
        return secrets.token_hex(32)
    token = api.login("admin")
    if kind == "revoked":
        assert client.post("/auth/logout", headers={"token": token}).status_code == 200
    else:
        db_rows(
            test_database,
            "update auth.tokens_cache set expires_at = now() - interval '1 second' where token_hash = %s",
            [digest(token)],
        )
    return token


@pytest.mark.parametrize("route", ROUTES, ids=str)
@pytest.mark.parametrize("where", ["nowhere", "query string"])
def test_no_header_token_is_missing_token(client, api, test_database, route, where):
    # A token in the query string is ignored, as if there were none.
    query = {"token": api.login("admin")} if where == "query string" else None
    before = snapshot(test_database, leave_out=("audit_events",))
    audit_mark = last_audit_id(test_database)

    response = send(client, test_database, route, query_string=query)

    assert_error(response, 401, "missing_token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert snapshot(test_database, leave_out=("audit_events",)) == before
    assert audit_events_after(test_database, audit_mark) == []


@pytest.mark.parametrize("route", ROUTES, ids=str)
@pytest.mark.parametrize("kind", ["unknown", "revoked", "expired"])
def test_dead_token_is_invalid_token(client, api, test_database, route, kind):
    token = dead_token(kind, api, client, test_database)
    before = snapshot(test_database, leave_out=("audit_events",))
    audit_mark = last_audit_id(test_database)

    response = send(client, test_database, route, headers={"token": token})

    assert_error(response, 401, "invalid_token")
    assert snapshot(test_database, leave_out=("audit_events",)) == before
    assert audit_events_after(test_database, audit_mark) == []


def forbidden_case(client, test_database, route, token):
    before = snapshot(test_database, leave_out=("audit_events",))
    audit_mark = last_audit_id(test_database)

    response = send(client, test_database, route, headers={"token": token})

    body = assert_error(response, 403, "forbidden")
    assert route.permission in body["message"]
    assert snapshot(test_database, leave_out=("audit_events",)) == before
    # At most the refusal itself is recorded.
    assert set(audit_events_after(test_database, audit_mark)) <= {"authz_fail"}


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_user_without_any_auth_role_is_forbidden(client, api, test_database, route):
    forbidden_case(client, test_database, route, api.login("alice"))


@pytest.mark.parametrize("route", NOT_USERS_READ, ids=str)
def test_user_with_only_users_read_is_forbidden_elsewhere(client, test_database, reader, route):
    forbidden_case(client, test_database, route, reader)


@pytest.mark.parametrize("route", [route for route in ROUTES if route.permission == USERS_READ], ids=str)
def test_user_with_only_users_read_may_read_users(client, test_database, reader, route):
    assert send(client, test_database, route, headers={"token": reader}).status_code == route.status


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_admin_passes(client, api, test_database, route):
    token = api.login("admin")
    # Bob is locked out, so that clearing his lock has something to clear.
    db_rows(
        test_database,
        "insert into auth.login_failures (key, failures, locked_until)"
        " select 'user:' || id, 5, now() + interval '1 hour' from auth.users where username = 'bob'",
    )
    # And has a second factor, so that resetting it has something to reset.
    db_rows(
        test_database,
        "insert into auth.mfa_totp (user_id, secret_encrypted, confirmed_at)"
        " select id, 'sealed', now() from auth.users where username = 'bob'",
    )
    before = snapshot(test_database, leave_out=("audit_events",))

    response = send(client, test_database, route, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == route.status, response.get_data(as_text=True)
    if route.status == 204:
        assert response.get_data() == b""
    else:
        assert isinstance(response.get_json(), dict)
    # The same request a refused caller sends does write when allowed, so the
    # "nothing written" checks above are real.
    if route in WRITES:
        assert snapshot(test_database, leave_out=("audit_events",)) != before
    else:
        assert snapshot(test_database, leave_out=("audit_events",)) == before


def test_a_wrong_bearer_scheme_is_no_token(client, api):
    response = client.get("/users", headers={"Authorization": f"Basic {api.login('admin')}"})
    assert_error(response, 401, "missing_token")


def test_the_table_covers_every_administration_route(app):
    """A new route without a row here (and so without access tests) fails this test."""
    served = {
        (method, re.sub(r"<[^>]+>", "{id}", rule.rule))
        for rule in app.url_map.iter_rules()
        if not NOT_ADMIN.match(rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    listed = {(route.method, route.path.replace("{key_id}", "{id}")) for route in ROUTES}
    assert served == listed
