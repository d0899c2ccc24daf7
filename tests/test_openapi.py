"""openapi.yaml is the contract as an artifact: a valid OpenAPI 3.1 document, served at
/openapi.json, describing exactly the app's routes, with the team's input rules, error
responses and headers; and the response checker (tests/openapi_check.py) that the `client`
fixture applies fails on what breaks it."""

import json
import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate as validate_openapi

from tests.openapi_check import Contract, SpecCheckingClient, load_spec, pointer

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec()
CONTRACT = Contract(SPEC)
METHODS = {"get", "put", "post", "delete", "patch"}
# Operations that never touch the database, so they cannot answer 503.
NO_DATABASE = {"healthz", "get_openapi", "get_metrics"}
AUDIT_EVENTS = [
    "authn_login_success",
    "authn_login_fail",
    "authn_login_lock",
    "authn_token_revoked",
    "authn_token_created",
    "authn_token_delete",
    "authn_mfa_enrolled",
    "authn_mfa_removed",
    "authn_mfa_reset",
    "authn_mfa_success",
    "authn_mfa_fail",
    "authn_mfa_recovery_code_used",
    "authn_password_change",
    "authn_password_change_fail",
    "authn_password_reset_request",
    "authn_password_reset",
    "authz_fail",
    "authz_change",
    "authz_admin",
    "user_created",
    "user_updated",
    "user_archived",
    "user_deleted",
    "user_unlocked",
]

OPERATIONS = [
    pytest.param(path, method, operation, id=f"{method.upper()} {path}")
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
    if method in METHODS
]


def resolve(at):
    """The object at JSON pointer `at` in the spec, following `$ref`s: (its pointer, it)."""
    return CONTRACT.resolve(at)


def json_schema(at):
    """The validator of the JSON body of the request body or response at `at`."""
    return CONTRACT.validator(resolve(at)[0] + pointer("content", "application/json", "schema"))


def test_spec_is_valid_openapi_3_1():
    assert SPEC["openapi"].startswith("3.1.")
    validate_openapi(SPEC)


def test_served_spec_is_openapi_yaml(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == json.loads(json.dumps(SPEC))


def test_client_fixture_checks_responses_against_the_spec(client):
    assert isinstance(client, SpecCheckingClient)


def spec_template(rule):
    """A Flask rule as the spec writes its path: `/users/<int:user_id>` and `/roles/<ref>` become
    `{id}`; a second parameter keeps its name (`/services/<ref>/keys/<key_id>`: `{key_id}`)."""
    seen = []

    def named(match):
        seen.append(match[1])
        return "{id}" if len(seen) == 1 else "{" + match[1] + "}"

    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", named, rule)


def test_every_route_is_in_the_spec_and_every_operation_is_a_route(app):
    routes = {
        (spec_template(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(param.values[0], param.values[1]) for param in OPERATIONS}
    assert routes - documented == set(), "routes missing from openapi.yaml"
    assert documented - routes == set(), "operations in openapi.yaml that the app does not serve"


def test_path_parameters_match_the_routes_converters(app):
    """Every path parameter of a route is documented by the spec."""
    rules = [rule for rule in app.url_map.iter_rules() if rule.arguments]
    assert rules
    for rule in rules:
        template = spec_template(rule.rule)
        parameters = [
            resolve(pointer("paths", template, "parameters", index))[1]
            for index, _ in enumerate(SPEC["paths"][template]["parameters"])
        ]
        assert [p["name"] for p in parameters] == re.findall(r"\{(\w+)\}", template), rule.rule
        assert all(p["in"] == "path" and p["required"] for p in parameters), rule.rule
        parameter = parameters[0]
        if "<int:" in rule.rule:
            assert parameter["schema"] == {"$ref": "#/components/schemas/Id"}, rule.rule


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS)
def test_operation_documents_its_errors_and_headers(path, method, operation):
    statuses = set(operation["responses"])
    security = operation.get("security", SPEC["security"])
    if security and {} not in security:
        assert "401" in statuses, "an operation that needs a token answers 401"
    if re.search(r"`auth\.(users|rbac|audit)\.", operation.get("description", "")):
        assert "403" in statuses, "an operation that needs a permission answers 403"
    if "requestBody" in operation:
        assert {"400", "413", "415"} <= statuses, "a body can be invalid, too large or not JSON"
    if "{id}" in path:
        assert "404" in statuses, "an id in the path may not exist"
    if operation["operationId"] not in NO_DATABASE:
        assert "503" in statuses, "every operation that reads the database answers 503 when it is down"
    for status in statuses:
        at, response = resolve(pointer("paths", path, method, "responses", status))
        headers = {name: resolve(at + pointer("headers", name))[1] for name in response.get("headers", {})}
        assert headers.get("X-Request-ID", {}).get("required"), f"{status} declares X-Request-ID"
        if status == "401":
            assert headers.get("WWW-Authenticate", {}).get("required"), "401 declares WWW-Authenticate"
        if status in ("429", "503"):
            assert headers.get("Retry-After", {}).get("required"), f"{status} declares Retry-After"
        if status >= "400":
            # Every error answer is the contract's error shape.
            schema = json_schema(at)
            assert not schema.is_valid({"message": "an error without its code"}), status


@pytest.mark.parametrize(("status", "code"), [("401", "invalid_token"), ("403", "forbidden")])
def test_check_token_refusals_carry_valid_false(status, code):
    schema = json_schema(pointer("paths", "/check-token", "post", "responses", status))
    assert schema.is_valid({"valid": False, "error": code, "message": "no"})
    assert not schema.is_valid({"error": code, "message": "no"})


def examples():
    """(schema pointer, value) of every example in the spec, named after where it is first used."""
    found, seen = [], set()
    for param in OPERATIONS:
        path, method, operation = param.values
        places = [pointer("paths", path, method, "requestBody")] if "requestBody" in operation else []
        places += [pointer("paths", path, method, "responses", status) for status in operation["responses"]]
        for place in places:
            at, body = resolve(place)
            for media_type, content in body.get("content", {}).items():
                for name, example in content.get("examples", {}).items():
                    schema = at + pointer("content", media_type, "schema")
                    if (schema, name) not in seen:
                        seen.add((schema, name))
                        found.append(pytest.param(schema, example["value"], id=f"{param.id} {name}"))
    return found


@pytest.mark.parametrize(("schema", "value"), examples())
def test_examples_match_their_schemas(schema, value):
    assert [error.message for error in CONTRACT.validator(schema).iter_errors(value)] == []


def test_audit_event_names_are_the_teams_and_the_code_uses_no_other():
    listed = SPEC["components"]["schemas"]["AuditEvent"]["properties"]["event"]["enum"]
    assert listed == AUDIT_EVENTS
    source = "".join(path.read_text() for folder in ("blueprints", "web") for path in (ROOT / folder).glob("*.py"))
    recorded = set(re.findall(r"""record\(\s*conn,\s*"([a-z_]+)\"""", source))
    assert recorded, "no audit calls found; the pattern above needs updating"
    assert recorded <= set(AUDIT_EVENTS)


# The team's input rules, each checked against both the spec and the app: the spec's
# request schema and the app must agree on what is valid.
INPUT_RULES = [
    ("/services", {"name": "stock-2.b_c"}, True),
    ("/services", {"name": "s" + "x" * 62}, True),
    ("/services", {"name": "s" + "x" * 63}, False),
    ("/services", {"name": "2stock"}, False),
    ("/services", {"name": "Stock"}, False),
    ("/services", {"name": "st ock"}, False),
    ("/services", {"name": "ok", "description": None}, True),
    ("/services", {"name": "ok", "description": "d" * 1000}, True),
    ("/services", {"name": "ok", "description": "d" * 1001}, False),
    ("/services", {"name": "ok", "description": "nul\x00byte"}, False),
    ("/roles", {"name": "Clerk:v2.x-y_z"}, True),
    ("/roles", {"name": "9" + "r" * 99}, True),
    ("/roles", {"name": "r" * 101}, False),
    ("/roles", {"name": "-clerk"}, False),
    ("/roles", {"name": "two words"}, False),
    ("/roles", {"name": "clerk", "description": "nul\x00"}, False),
    ("/permissions", {"name": "stock.count"}, True),
    ("/permissions", {"name": ".read"}, False),
    ("/permissions", {"name": "stock.count", "description": "d" * 1001}, False),
    ("/users", {"username": "a.b-c_d.E9"}, True),
    ("/users", {"username": "a.b@c-d_E9"}, False),
    ("/users", {"username": "alice@example.com"}, False),
    ("/users", {"username": "u" * 64}, True),
    ("/users", {"username": "u" * 65}, False),
    ("/users", {"username": "two words"}, False),
    ("/users", {"username": "nul\x00"}, False),
    (
        "/users",
        {"username": "rita", "email": "r" * 64 + "@" + "e" * 63 + "." + "x" * 63 + "." + "y" * 57 + ".com"},
        True,
    ),
    (
        "/users",
        {"username": "rita", "email": "r" * 64 + "@" + "e" * 63 + "." + "x" * 63 + "." + "y" * 58 + ".com"},
        False,
    ),
    ("/users", {"username": "rita", "email": "not-an-address"}, False),
    ("/users", {"username": "rita", "email": "rita@example.com, bob@example.com"}, False),
    ("/users", {"username": "rita", "email": "Rita <rita@example.com>"}, False),
    ("/users", {"username": "rita", "name": "n" * 200}, True),
    ("/users", {"username": "rita", "name": "n" * 201}, False),
    ("/users", {"username": "rita", "name": "nul\x00"}, False),
    ("/users", {"username": "rita", "password": "short"}, False),
    ("/users", {"username": "rita", "password": "nul\x00-in-a-long-password"}, False),
]


@pytest.mark.parametrize(("path", "body", "valid"), INPUT_RULES, ids=lambda value: repr(value)[:40])
def test_spec_and_app_agree_on_input_rules(client, api, path, body, valid):
    if path == "/users":
        body = {"password": "correct-horse-battery-9", **body}
    assert json_schema(pointer("paths", path, "post", "requestBody")).is_valid(body) is valid
    response = client.post(path, json=body, headers=api.headers())
    assert response.status_code == (201 if valid else 400), response.get_json()


@pytest.mark.parametrize(("method", "body"), [("PUT", {"name": "auth2"}), ("PUT", {"active": False}), ("DELETE", None)])
def test_service_auth_cannot_be_removed_renamed_or_disabled(client, api, method, body):
    response = client.open("/services/auth", method=method, json=body, headers=api.headers())
    assert response.status_code == 409
    assert response.get_json()["error"] == "conflict"


@pytest.mark.parametrize("path", ["/users/999999", "/users/999999/lock"])
def test_deleting_an_unknown_user_is_404(client, api, path):
    response = client.delete(path, headers=api.headers())
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_request_id_is_kept_when_plain_and_replaced_otherwise(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    assert client.get("/healthz", headers={"X-Request-ID": "bad id!"}).headers["X-Request-ID"] != "bad id!"


# --- the checker itself: a response that breaks the spec must fail -----------------------

JSON = {"X-Request-ID": "r1", "Content-Type": "application/json"}
PROFILE = {
    "payload": {"user_id": 2, "username": "alice", "name": None, "email": None, "services": []},
    "renewed": False,
    "expires_at": 1767225900,
    "expires_in": 300,
}
MISSING_TOKEN = {"error": "missing_token", "message": "send a token"}


def body(value):
    return json.dumps(value).encode()


CONFORMING = [
    ("GET", "/auth/profile", 200, JSON, body(PROFILE)),
    ("GET", "/users/7", 401, {**JSON, "WWW-Authenticate": 'Bearer realm="x"'}, body(MISSING_TOKEN)),
    ("DELETE", "/users/7", 204, {"X-Request-ID": "r1"}, b""),
    ("GET", "/nowhere", 404, JSON, body({"error": "not_found", "message": "no such endpoint"})),
    ("PATCH", "/users", 405, JSON, body({"error": "method_not_allowed", "message": "no"})),
    ("POST", "/auth/login", 429, {**JSON, "Retry-After": "30"}, body({"error": "too_many_attempts", "message": "m"})),
    ("HEAD", "/auth/profile", 200, JSON, b""),
    ("OPTIONS", "/users", 200, {"X-Request-ID": "r1"}, b""),
]


@pytest.mark.parametrize(("method", "path", "status", "headers", "raw"), CONFORMING, ids=range(len(CONFORMING)))
def test_checker_accepts_conforming_responses(method, path, status, headers, raw):
    assert CONTRACT.problems(method, path, status, headers, raw) == []


BROKEN = [
    ("GET", "/auth/profile", 200, {"Content-Type": "application/json"}, body(PROFILE), "X-Request-ID"),
    ("GET", "/auth/profile", 200, JSON, body({**PROFILE, "renewed": "no"}), "renewed"),
    ("GET", "/auth/profile", 200, JSON, body({"payload": PROFILE["payload"]}), "required"),
    ("GET", "/auth/profile", 200, {**JSON, "Content-Type": "text/html"}, b"<p>hi</p>", "content type"),
    ("GET", "/auth/profile", 418, JSON, body(MISSING_TOKEN), "does not list"),
    ("GET", "/auth/profile", 401, JSON, body(MISSING_TOKEN), "WWW-Authenticate"),
    ("GET", "/auth/profile", 401, {**JSON, "WWW-Authenticate": "x"}, body({"error": "forbidden", "message": "m"}), ""),
    ("DELETE", "/users/7", 204, {"X-Request-ID": "r1"}, b"surprise", "no body"),
    ("POST", "/auth/login", 429, JSON, body({"error": "too_many_attempts", "message": "m"}), "Retry-After"),
    ("POST", "/auth/login", 429, {**JSON, "Retry-After": "soon"}, body({"error": "too_many_attempts"}), "integer"),
    ("GET", "/nowhere", 404, JSON, b"<html>not found</html>", "error 'not_found'"),
    ("GET", "/nowhere", 200, JSON, body({}), "only 404"),
    ("GET", "/users", 200, JSON, body({"items": [{"id": 1}], "total": 1, "limit": 100, "offset": 0}), "username"),
    ("GET", "/audit-events", 200, JSON, body({"items": [], "total": -1, "limit": 1, "offset": 0}), "total"),
    ("OPTIONS", "/users", 200, {}, b"", "X-Request-ID"),
]


@pytest.mark.parametrize(("method", "path", "status", "headers", "raw", "mentions"), BROKEN, ids=range(len(BROKEN)))
def test_checker_rejects_responses_that_break_the_spec(method, path, status, headers, raw, mentions):
    problems = CONTRACT.problems(method, path, status, headers, raw)
    assert problems, "the checker let a broken response through"
    assert mentions in "\n".join(problems)
