"""Operations: /healthz without a database, /readyz, /openapi.json, JSON errors for every
HTTP failure, security headers, and the X-Request-ID of each answer."""

import email.utils
import json
import re
import socket
import time

import httpx
import pytest
from flask.testing import FlaskClient

from app import create_app
from tests import fixtures

# Nothing listens on port 1: connections are refused at once.
NO_DATABASE = "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=1"
REQUEST_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def app_without_database(mailbox):
    """The app with a database that never answers."""
    app = create_app({**fixtures.test_settings(NO_DATABASE, mailbox), "TESTING": True})
    yield app
    app.extensions["db_pool"].close()


def test_healthz_answers_without_a_database(app_without_database):
    response = app_without_database.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_503_without_a_database(app_without_database):
    response = app_without_database.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["error"] == "service_unavailable"


def test_readyz_is_200_with_a_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_openapi_json_describes_the_contract(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    spec = response.get_json()
    assert spec["openapi"].startswith("3.1")
    assert {
        "/auth/login",
        "/auth/logout",
        "/auth/logout-all",
        "/auth/profile",
        "/check-token",
        "/auth/password/forgot",
        "/auth/password/reset",
        "/auth/password",
        "/users",
        "/users/{id}",
        "/users/{id}/lock",
        "/audit-events",
        "/services",
        "/services/{id}",
        "/roles",
        "/roles/{id}",
        "/permissions",
        "/permissions/{id}",
        "/role-permissions",
        "/service-roles",
        "/person-service-roles",
        "/healthz",
        "/readyz",
        "/openapi.json",
    } <= set(spec["paths"])


TOO_LARGE = b'{"username": "' + b"a" * 70_000 + b'"}'


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("get", "/no/such/thing", {}, 404, "not_found"),
        ("get", "/users/not-a-number", {}, 404, "not_found"),
        ("delete", "/healthz", {}, 405, "method_not_allowed"),
        ("get", "/auth/login", {}, 405, "method_not_allowed"),
        ("post", "/auth/login", {"data": TOO_LARGE, "content_type": "application/json"}, 413, "payload_too_large"),
        ("post", "/auth/login", {"data": "username=a", "content_type": "text/plain"}, 415, "unsupported_media_type"),
        (
            "post",
            "/check-token",
            {"data": {"token": "x"}},  # a form post
            415,
            "unsupported_media_type",
        ),
        ("post", "/auth/login", {"data": "{nope", "content_type": "application/json"}, 400, "invalid_json"),
    ],
)
def test_http_failures_answer_json(client, method, path, kwargs, status, code):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert b"<html" not in response.get_data().lower()


def test_405_names_the_allowed_methods(client):
    response = client.get("/auth/login")
    assert "POST" in response.headers["Allow"]
    assert "GET" not in response.headers["Allow"]


def test_415_says_json_is_expected(client):
    response = client.post("/auth/login", data="x", content_type="text/plain")
    assert "application/json" in response.get_json()["message"]


def test_an_unexpected_error_is_a_json_500(app):
    @app.get("/fail-on-purpose")
    def fail_on_purpose():
        raise RuntimeError("boom")

    app.test_client_class = FlaskClient  # the route is not in the spec
    response = app.test_client().get("/fail-on-purpose")
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_error"
    assert "boom" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/healthz", {}, 200),
        ("post", "/auth/login", {"json": {"username": "alice", "password": fixtures.DEMO["alice"]}}, 200),
        ("post", "/auth/login", {"json": {"username": "alice", "password": "not-her-password-1"}}, 401),
        ("get", "/users", {}, 401),
        ("get", "/nope", {}, 404),
        ("post", "/auth/login", {"data": "x", "content_type": "text/plain"}, 415),
    ],
)
def test_security_headers_on_every_answer(client, method, path, kwargs, status):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123", True),
        ("0f9c2b1e-7a55-4c59-9a4e-2f1d1d7a9b10", True),
        ("svc.stock:req_9", True),
        ("has space", False),
        ("x" * 129, False),
        ("<script>", False),
        ("", False),
    ],
)
def test_request_id_is_echoed_when_plain_else_made(client, sent, kept):
    response = client.get("/healthz", headers={"X-Request-ID": sent})
    assert response.headers["X-Request-ID"] == sent if kept else REQUEST_ID.fullmatch(response.headers["X-Request-ID"])


def test_request_ids_are_made_fresh_for_each_request(client):
    ids = [client.get("/healthz").headers["X-Request-ID"] for _ in range(5)]
    assert len(set(ids)) == 5
    assert all(REQUEST_ID.fullmatch(request_id) for request_id in ids)


def test_errors_carry_a_request_id_too(client):
    assert client.get("/nope", headers={"X-Request-ID": "lost-1"}).headers["X-Request-ID"] == "lost-1"
    assert REQUEST_ID.fullmatch(client.post("/auth/login", json={}).headers["X-Request-ID"])


def test_the_live_server_behaves_the_same(live_server):
    """Through gunicorn: JSON 404 and 413, headers, request ids."""
    missing = httpx.get(f"{live_server.url}/no/such/thing", headers={"X-Request-ID": "live-1"})
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert missing.headers["X-Request-ID"] == "live-1"
    assert missing.headers["Cache-Control"] == "no-store"
    assert missing.headers["X-Content-Type-Options"] == "nosniff"
    large = httpx.post(f"{live_server.url}/auth/login", content=TOO_LARGE, headers={"Content-Type": "application/json"})
    assert (large.status_code, large.json()["error"]) == (413, "payload_too_large")
    assert REQUEST_ID.fullmatch(large.headers["X-Request-ID"])
    healthz = httpx.get(f"{live_server.url}/healthz")
    assert healthz.json() == {"status": "ok"}
    assert healthz.headers["Content-Type"] == "application/json"


def test_the_date_header_follows_the_clock(live_server):
    """gunicorn.conf.py formats Date once a second: it must still be now, and move on."""

    def date():
        answer = httpx.get(f"{live_server.url}/healthz")
        return email.utils.parsedate_to_datetime(answer.headers["Date"]).timestamp()

    first = date()
    assert abs(first - time.time()) <= 1.5
    time.sleep(1.1)
    assert date() > first


# --- what gunicorn answers itself, and chunked bodies, on a live server ----------------------


def raw_exchange(server, request_bytes):
    """Send raw bytes to the live server; the status and the JSON body of its answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    return int(head.split()[1]), json.loads(body)


def test_a_long_query_string_reaches_the_app(live_server):
    status, body = raw_exchange(
        live_server, b"GET /users?q=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert (status, body["error"]) == (401, "missing_token")


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /users?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            400,
            "bad_request",
        ),
    ],
    ids=["request line past gunicorn's limit", "doubled Content-Length"],
)
def test_what_gunicorn_refuses_itself_is_answered_in_json(live_server, request_bytes, status, code):
    assert raw_exchange(live_server, request_bytes)[0] == status
    assert raw_exchange(live_server, request_bytes)[1]["error"] == code


def test_a_chunked_body_over_the_limit_is_413(live_server):
    body = b'{"username": "' + b"a" * 70_000 + b'", "password": "x"}'
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(part), part) for part in (body[i : i + 8192] for i in range(0, len(body), 8192))
    )
    status, answer = raw_exchange(
        live_server,
        b"POST /auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n",
    )
    assert (status, answer["error"]) == (413, "payload_too_large")
