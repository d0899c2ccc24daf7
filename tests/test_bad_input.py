"""No client input of any shape produces a 500 or writes anything (API.md "Conventions").

Every endpoint that reads a body or query parameters gets malformed, mistyped, oversized,
NUL-laden, huge-numbered and deeply nested input; each answer must be a 4xx JSON error
with `error` and `message`, with the security headers, and every auth table must be
exactly as it was before the request. Unknown paths and wrong methods answer JSON too.
"""

import io
import json
import secrets
from dataclasses import dataclass, field

import httpx
import pytest
from psycopg import sql

from security.tokens import digest
from tests.fixtures import DEMO, db_rows, snapshot

GOOD_PASSWORD = "velvet-compass-93"
NEW_PASSWORD = "new-lantern-pass-77"


def nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


DEEP = nested(40)  # deeper than any request needs; must be refused, not recursed into

# Bad values for a field, by the field's kind. Null is added for fields that refuse it.
STR_VALUES = [123, True, 1.5, -1, 2**64, 10**30, 1e308, [], {}, "a\u0000b", "x" * 10_000, "lone \ud800 half", DEEP]
INT_VALUES = ["abc", True, False, 1.5, 0, -1, 2**64, 10**30, 1e308, "1e3", "", [], {}, "a\u0000b", "x" * 10_000, DEEP]
REF_VALUES = [True, 1.5, 0, -1, 2**64, 10**30, 1e308, "", [], {}, "a\u0000b", "x" * 10_000, "\ud800", DEEP]
BOOL_VALUES = ["true", "false", 1, 0, "", [], {}, "a\u0000b", 2**64, DEEP]
VALUES = {"str": STR_VALUES, "int": INT_VALUES, "ref": REF_VALUES, "bool": BOOL_VALUES}

# Bad query parameter values (query parameters are always text).
LIMIT_Q = ["0", "1001", "-1", "abc", "1.5", "", str(2**64), "1e308", "NaN", "a\u0000b", "x" * 10_000]
OFFSET_Q = ["-1", "abc", "1.5", "", str(2**64), "1e308", "NaN", "a\u0000b", "x" * 10_000]
ID_Q = ["0", "-1", "abc", "1.5", "", str(2**64), "1e308", "NaN", "a\u0000b", "x" * 10_000]
REF_Q = ["0", "-1", "", str(2**64), "a\u0000b", "x" * 10_000, "nosuch"]
BOOL_Q = ["maybe", "1", "", "a\u0000b", "x" * 10_000]
TEXT_Q = ["a\u0000b", "x" * 10_000]
PAGING = {"limit": LIMIT_Q, "offset": OFFSET_Q}

# A refused login or password change is counted and audited: that write is the point.
CREDENTIAL_FAILURES = {"invalid_credentials", "too_many_attempts"}
CREDENTIAL_TABLES = {"login_failures", "audit_events"}


@dataclass(frozen=True)
class Endpoint:
    """An endpoint with a body: a body it accepts ("$name" values are filled in per test),
    the kind of each field, and who calls it."""

    method: str
    path: str
    body: dict
    kinds: dict
    caller: str | None = None
    nullable: frozenset = field(default_factory=frozenset)
    optional: frozenset = field(default_factory=frozenset)  # fields that may be left out
    # POST /auth/logout: any string is a token, and revoking an unknown one is 200 (RFC 7009).
    any_string_ok: frozenset = field(default_factory=frozenset)

    def __str__(self):
        return f"{self.method} {self.path}"


NAMED = {"name": "str", "description": "str"}
DESCRIPTION = frozenset({"description"})
ADMIN_RBAC = {"caller": "admin", "nullable": DESCRIPTION}
LINK_KINDS = {"user_id": "int", "service_id": "ref", "role_id": "int", "permission_id": "int"}


def link(method, path, **body):
    return Endpoint(method, path, body, {name: LINK_KINDS[name] for name in body}, caller="admin")


ENDPOINTS = [
    Endpoint(
        "POST",
        "/auth/login",
        {"username": "alice", "password": DEMO["alice"]},
        {"username": "str", "password": "str"},
    ),
    Endpoint("POST", "/auth/logout", {"token": "$alice_token"}, {"token": "str"}, any_string_ok=frozenset({"token"})),
    Endpoint(
        "POST",
        "/check-token",
        {"token": "$alice_token", "service_id": "stock", "user_id": "$alice"},
        {"token": "str", "service_id": "ref", "user_id": "int"},
        nullable=frozenset({"user_id"}),
        optional=frozenset({"user_id"}),
    ),
    Endpoint("POST", "/auth/password/forgot", {"username": "alice"}, {"username": "str"}),
    Endpoint(
        "POST",
        "/auth/password/reset",
        {"code": "$code", "password": NEW_PASSWORD},
        {"code": "str", "password": "str"},
    ),
    Endpoint(
        "PUT",
        "/auth/password",
        {"current_password": DEMO["alice"], "new_password": NEW_PASSWORD},
        {"current_password": "str", "new_password": "str"},
        caller="alice",
    ),
    Endpoint(
        "POST",
        "/users",
        {"username": "dora", "password": GOOD_PASSWORD, "name": "Dora", "email": "dora@example.com"},
        {"username": "str", "password": "str", "name": "str", "email": "str"},
        caller="admin",
        nullable=frozenset({"name", "email"}),
        optional=frozenset({"name", "email"}),
    ),
    Endpoint(
        "PUT",
        "/users/{bob}",
        {
            "username": "robert",
            "name": "Robert",
            "email": "bob@example.com",
            "password": GOOD_PASSWORD,
            "active": False,
        },
        {"username": "str", "name": "str", "email": "str", "password": "str", "active": "bool"},
        caller="admin",
        nullable=frozenset({"name", "email"}),
        optional=frozenset({"username", "name", "email", "password", "active"}),
    ),
    Endpoint(
        "POST", "/services", {"name": "billing", "description": "Invoices"}, NAMED, optional=DESCRIPTION, **ADMIN_RBAC
    ),
    Endpoint(
        "PUT",
        "/services/stock",
        {"name": "warehouse", "description": "Warehouses", "active": False},
        {**NAMED, "active": "bool"},
        optional=frozenset({"name", "description", "active"}),
        **ADMIN_RBAC,
    ),
    Endpoint("POST", "/roles", {"name": "auditor", "description": "Audits"}, NAMED, optional=DESCRIPTION, **ADMIN_RBAC),
    Endpoint(
        "PUT", "/roles/{clerk}", {"name": "counter", "description": "C"}, NAMED, optional=frozenset(NAMED), **ADMIN_RBAC
    ),
    Endpoint(
        "POST", "/permissions", {"name": "stock.audit", "description": "A"}, NAMED, optional=DESCRIPTION, **ADMIN_RBAC
    ),
    Endpoint(
        "PUT",
        "/permissions/{stock_read}",
        {"name": "stock.look", "description": "L"},
        NAMED,
        optional=frozenset(NAMED),
        **ADMIN_RBAC,
    ),
    link("POST", "/role-permissions", role_id="$clerk", permission_id="$stock_write"),
    link("DELETE", "/role-permissions", role_id="$clerk", permission_id="$stock_read"),
    link("POST", "/service-roles", service_id="sales", role_id="$clerk"),
    link("DELETE", "/service-roles", service_id="stock", role_id="$clerk"),
    link("POST", "/person-service-roles", user_id="$bob", service_id="stock", role_id="$clerk"),
    link("DELETE", "/person-service-roles", user_id="$alice", service_id="stock", role_id="$clerk"),
]
LINK_DELETES = [endpoint for endpoint in ENDPOINTS if endpoint.method == "DELETE"]
FIELD_CASES = [(endpoint, name) for endpoint in ENDPOINTS for name in endpoint.kinds]
REQUIRED_CASES = [(endpoint, name) for endpoint, name in FIELD_CASES if name not in endpoint.optional]

# Query parameters of every endpoint that reads them, with bad values for each.
QUERIES = [
    ("GET", "/users", {**PAGING, "q": TEXT_Q, "active": BOOL_Q}),
    (
        "GET",
        "/audit-events",
        {**PAGING, "user_id": ID_Q, "event": TEXT_Q, "since": ["yesterday", "2024-13-01", *TEXT_Q]},
    ),
    ("GET", "/services", PAGING),
    ("GET", "/roles", PAGING),
    ("GET", "/permissions", PAGING),
    ("GET", "/role-permissions", {**PAGING, "role_id": ID_Q}),
    ("GET", "/service-roles", {**PAGING, "service_id": REF_Q}),
    ("GET", "/person-service-roles", {**PAGING, "user_id": ID_Q, "service_id": REF_Q}),
    ("DELETE", "/users/{bob}", {"hard": BOOL_Q}),
]
QUERY_CASES = [(method, path, name, values) for method, path, params in QUERIES for name, values in params.items()]


# --- fixtures and checks ------------------------------------------------------------------


@pytest.fixture
def ctx(api, test_database):
    """What "$name" values and "{name}" path parts stand for in this test's database."""

    def row_id(table, column, name):
        query = sql.SQL("select id from auth.{} where {} = %s").format(sql.Identifier(table), sql.Identifier(column))
        return db_rows(test_database, query, [name])[0]["id"]

    values = {
        "alice": row_id("users", "username", "alice"),
        "bob": row_id("users", "username", "bob"),
        "clerk": row_id("roles", "name", "clerk"),
        "stock_read": row_id("permissions", "name", "stock.read"),
        "stock_write": row_id("permissions", "name", "stock.write"),
        "code": secrets.token_urlsafe(32),
        "admin_token": api.login("admin"),
        "alice_token": api.login("alice"),
    }
    db_rows(
        test_database,
        "insert into auth.password_reset_codes (code_hash, user_id, email, credential_version, expires_at)"
        " select %s, id, email, credential_version, now() + interval '15 minutes' from auth.users where id = %s",
        [digest(values["code"]), values["alice"]],
    )
    return values


def changed_tables(before, after):
    return {table for table in before if before[table] != after[table]}


def fill(value, ctx):
    return ctx[value[1:]] if isinstance(value, str) and value.startswith("$") else value


def headers_for(endpoint, ctx):
    return {"token": ctx[f"{endpoint.caller}_token"]} if endpoint.caller else {}


def valid_body(endpoint, ctx):
    return {key: fill(value, ctx) for key, value in endpoint.body.items()}


def send(client, endpoint, ctx, data, content_type="application/json"):
    """Send `data` to the endpoint as its caller; content_type None lets a form pick its own."""
    extra = {"content_type": content_type} if content_type else {}
    return client.open(
        endpoint.path.format(**ctx), method=endpoint.method, data=data, headers=headers_for(endpoint, ctx), **extra
    )


def problems_with(response, before, after, ok_statuses=()):
    """What is wrong with the answer to a bad request, as a list of sentences (empty: fine)."""
    found = []
    status = response.status_code
    if response.headers.get("Cache-Control") != "no-store":
        found.append("no Cache-Control: no-store")
    if response.headers.get("X-Content-Type-Options") != "nosniff":
        found.append("no X-Content-Type-Options: nosniff")
    if not response.is_json:
        return [*found, f"{status} answered {response.content_type}, not JSON"]
    body = response.get_json()
    if status in ok_statuses:
        return found if not changed_tables(before, after) else [*found, f"{status} but wrote"]
    if not 400 <= status < 500:
        found.append(f"status {status}: {body}")
    if not (isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str)):
        found.append(f"not the error shape: {body}")
        return found
    allowed = CREDENTIAL_TABLES if body["error"] in CREDENTIAL_FAILURES else set()
    written = changed_tables(before, after) - allowed
    if written:
        found.append(f"{status} {body['error']} but wrote to {sorted(written)}")
    return found


def short(value):
    text = repr(value)
    return text if len(text) < 60 else text[:40] + f"...({len(text)} chars)"


# --- the valid bodies pass, so every refusal below is the bad value's doing ----------------


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_the_valid_body_is_accepted(client, ctx, endpoint):
    response = send(client, endpoint, ctx, json.dumps(valid_body(endpoint, ctx)))
    assert 200 <= response.status_code < 300, response.get_json()


# --- whole bodies -------------------------------------------------------------------------


def raw_case(name, endpoint, ctx):
    """(data, content type, expected status, expected code) of a body that is wrong as a whole."""
    text = json.dumps(valid_body(endpoint, ctx))
    return {
        "truncated JSON": (text[:-3], "application/json", 400, "invalid_json"),
        "not JSON at all": ("username=alice", "application/json", 400, "invalid_json"),
        "JSON array": (f"[{text}]", "application/json", 400, "invalid_json"),
        "JSON string": ('"alice"', "application/json", 400, "invalid_json"),
        "JSON number": ("42", "application/json", 400, "invalid_json"),
        "JSON null": ("null", "application/json", 400, "invalid_json"),
        "JSON true": ("true", "application/json", 400, "invalid_json"),
        "invalid UTF-8": (text.encode()[:-1] + b', "x": "\xff\xfe"}', "application/json", 400, "invalid_json"),
        "NaN": (text[:-1] + ', "x": NaN}', "application/json", 400, "invalid_json"),
        "Infinity": (text[:-1] + ', "x": -Infinity}', "application/json", 400, "invalid_json"),
        "nested 50 deep": (
            text[:-1] + ', "x": ' + json.dumps(nested(50)) + "}",
            "application/json",
            400,
            "invalid_json",
        ),
        "nested 20000 deep": ("[" * 20_000 + "]" * 20_000, "application/json", 400, "invalid_json"),
        "text/plain": (text, "text/plain", 415, "unsupported_media_type"),
        "form": ("username=alice&password=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        "multipart": ({"file": (io.BytesIO(text.encode()), "body.json")}, None, 415, "unsupported_media_type"),
        "1 MB": (
            json.dumps({**valid_body(endpoint, ctx), "x": "x" * 1_000_000}),
            "application/json",
            413,
            "payload_too_large",
        ),
    }[name]


RAW_CASES = [
    "truncated JSON",
    "not JSON at all",
    "JSON array",
    "JSON string",
    "JSON number",
    "JSON null",
    "JSON true",
    "invalid UTF-8",
    "NaN",
    "Infinity",
    "nested 50 deep",
    "nested 20000 deep",
    "text/plain",
    "form",
    "multipart",
    "1 MB",
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_a_body_that_is_wrong_as_a_whole_is_refused(client, test_database, ctx, endpoint):
    failures = []
    for case in RAW_CASES:
        data, content_type, status, code = raw_case(case, endpoint, ctx)
        before = snapshot(test_database)
        response = send(client, endpoint, ctx, data, content_type)
        failures += [f"{case}: {problem}" for problem in problems_with(response, before, snapshot(test_database))]
        body = response.get_json(silent=True) or {}
        if (response.status_code, body.get("error")) != (status, code):
            failures.append(f"{case}: {response.status_code} {body.get('error')}, expected {status} {code}")
        if status == 415 and "application/json" not in body.get("message", ""):
            failures.append(f"{case}: the 415 message does not say application/json is expected")
    assert failures == []


# --- one field at a time ------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "name"), FIELD_CASES, ids=lambda x: str(x))
def test_a_bad_field_value_is_refused_and_writes_nothing(client, test_database, ctx, endpoint, name):
    values = VALUES[endpoint.kinds[name]] + ([] if name in endpoint.nullable else [None])
    failures = []
    for value in values:
        before = snapshot(test_database)
        response = send(client, endpoint, ctx, json.dumps({**valid_body(endpoint, ctx), name: value}))
        ok = (200,) if name in endpoint.any_string_ok and isinstance(value, str) else ()
        failures += [
            f"{name}={short(value)}: {problem}"
            for problem in problems_with(response, before, snapshot(test_database), ok)
        ]
    assert failures == []


@pytest.mark.parametrize(("endpoint", "name"), REQUIRED_CASES, ids=lambda x: str(x))
def test_a_missing_field_is_refused_and_named(client, test_database, ctx, endpoint, name):
    before = snapshot(test_database)
    body = {key: value for key, value in valid_body(endpoint, ctx).items() if key != name}

    response = send(client, endpoint, ctx, json.dumps(body))

    assert problems_with(response, before, snapshot(test_database)) == []
    if response.status_code == 400:
        assert response.get_json()["fields"][name] == "is required"


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.method == "PUT" and e.optional], ids=str)
def test_an_update_without_any_field_is_refused(client, test_database, ctx, endpoint):
    before = snapshot(test_database)
    response = send(client, endpoint, ctx, json.dumps({"unknown": 1}))
    assert problems_with(response, before, snapshot(test_database)) == []
    assert response.get_json()["error"] == "validation_error"


# --- query parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "name", "values"), QUERY_CASES, ids=[f"{m} {p} {n}" for m, p, n, _ in QUERY_CASES]
)
def test_a_bad_query_parameter_is_refused(client, test_database, ctx, method, path, name, values):
    failures = []
    for value in values:
        before = snapshot(test_database)
        response = client.open(
            path.format(**ctx), method=method, query_string={name: value}, headers={"token": ctx["admin_token"]}
        )
        failures += [
            f"{name}={short(value)}: {problem}" for problem in problems_with(response, before, snapshot(test_database))
        ]
    assert failures == []


QUERY_VALUES = {"int": ID_Q, "ref": REF_Q}
LINK_QUERY_CASES = [(endpoint, name) for endpoint in LINK_DELETES for name in endpoint.kinds]


@pytest.mark.parametrize(("endpoint", "name"), LINK_QUERY_CASES, ids=lambda x: str(x))
def test_a_link_delete_refuses_bad_query_parameters(client, test_database, ctx, endpoint, name):
    failures = []
    for value in QUERY_VALUES[endpoint.kinds[name]]:
        before = snapshot(test_database)
        query = {**valid_body(endpoint, ctx), name: value}
        response = client.delete(endpoint.path, query_string=query, headers=headers_for(endpoint, ctx))
        failures += [
            f"{name}={short(value)}: {problem}" for problem in problems_with(response, before, snapshot(test_database))
        ]
    assert failures == []


# --- paths, methods and headers -----------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize(
    "path", ["/nope", "/users/1/nothing", "/auth", "/auth/login/extra", "/users/%00", "/index.html"]
)
def test_unknown_path_is_a_json_404(client, method, path):
    response = client.open(path, method=method)

    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"] == "not_found"
    assert response.get_json()["message"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/auth/login", {"POST"}),
        ("GET", "/auth/logout", {"POST"}),
        ("DELETE", "/check-token", {"POST"}),
        ("POST", "/auth/profile", {"GET"}),
        ("GET", "/auth/password", {"PUT"}),
        ("PATCH", "/users", {"GET", "POST"}),
        ("PATCH", "/users/1", {"GET", "PUT", "DELETE"}),
        ("GET", "/users/1/lock", {"DELETE"}),
        ("PUT", "/role-permissions", {"GET", "POST", "DELETE"}),
        ("POST", "/services/stock", {"GET", "PUT", "DELETE"}),
        ("PUT", "/healthz", {"GET"}),
    ],
)
def test_wrong_method_is_a_json_405_with_allow(client, method, path, allowed):
    response = client.open(path, method=method, json={})

    assert response.status_code == 405
    assert response.is_json
    assert response.get_json()["error"] == "method_not_allowed"
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_every_kind_of_answer_has_the_security_headers(client, api, test_database):
    admin = api.headers("admin")
    bob = db_rows(test_database, "select id from auth.users where username = 'bob'")[0]["id"]
    responses = [
        client.get("/healthz"),
        client.get("/users", headers=admin),
        client.post("/roles", json={"name": "auditor"}, headers=admin),
        client.delete(f"/users/{bob}", headers=admin),
        client.post("/roles", json={}, headers=admin),
        client.get("/users"),
        client.get("/users", headers=api.headers("alice")),
        client.get("/nope"),
        client.put("/healthz"),
        client.post("/auth/login", data="x" * 100_000, content_type="application/json"),
        client.post("/auth/login", data="x", content_type="text/plain"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 201, 204, 400, 401, 403, 404, 405, 413, 415]
    for response in responses:
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_real_server_answers_json_to_bad_requests(live_server):
    """Through gunicorn too: no HTML page from the server in front of the app."""
    url = live_server.url
    answers = [
        (httpx.post(f"{url}/auth/login", content=b"x" * 1_000_000, headers={"Content-Type": "application/json"}), 413),
        (httpx.post(f"{url}/auth/login", content=b"{", headers={"Content-Type": "application/json"}), 400),
        (httpx.post(f"{url}/auth/login", content=b"{}", headers={"Content-Type": "text/plain"}), 415),
        (httpx.get(f"{url}/nope"), 404),
        (httpx.get(f"{url}/auth/login"), 405),
    ]
    for response, status in answers:
        assert response.status_code == status
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["error"]
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/users", None),
        ("GET", "/auth/profile", None),
        ("POST", "/auth/logout-all", None),
        ("PUT", "/auth/password", {"current_password": DEMO["alice"], "new_password": NEW_PASSWORD}),
        ("DELETE", "/service-roles", {"service_id": "stock", "role_id": 1}),
    ],
)
def test_an_odd_token_header_is_just_a_dead_token(client, test_database, method, path, body):
    failures = []
    for headers in (
        {"token": "x" * 10_000},
        {"token": "' or 1=1 --"},
        {"token": "caf\u00e9"},
        {"Authorization": "Bearer " + "é" * 100},
        {"Authorization": "Bearer"},
    ):
        before = snapshot(test_database)
        response = client.open(path, method=method, json=body, headers=headers)
        failures += [f"{headers}: {problem}" for problem in problems_with(response, before, snapshot(test_database))]
        if response.status_code != 401:
            failures.append(f"{short(headers)}: {response.status_code}, expected 401")
    assert failures == []
