"""Logs: one JSON access line per request (time, ip, method, path, status, duration, token
fingerprint, request id), never a token, password or reset code; under gunicorn every line,
the master's own included, is a JSON object."""

import json
import logging
import re
import time

import httpx
import pytest
from pythonjsonlogger.core import BaseJsonFormatter

from security.tokens import fingerprint
from tests import fixtures
from tests.fixtures import DEMO, start_gunicorn, stop_gunicorn

ACCESS_FIELDS = {"ip", "method", "path", "endpoint", "status", "duration_ms", "token_fp", "request_id"}


def access_records(caplog):
    return [record for record in caplog.records if record.name == "auth.access"]


def as_json(record):
    """The record as the app's stderr handler writes it."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, BaseJsonFormatter))
    line = handler.format(record)
    assert "\n" not in line
    return json.loads(line)


def test_one_json_access_line_per_request(client, api, caplog):
    token = api.login("alice")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="auth.access"):
        response = client.get("/auth/profile", headers={"token": token, "X-Request-ID": "trace-42"})
    assert response.status_code == 200
    (record,) = access_records(caplog)
    line = as_json(record)
    assert ACCESS_FIELDS | {"asctime", "timestamp", "levelname", "process"} <= set(line)
    assert line["ip"] == "127.0.0.1"
    assert (line["method"], line["path"], line["endpoint"], line["status"]) == (
        "GET",
        "/auth/profile",
        "auth.profile",
        200,
    )
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["token_fp"] == fingerprint(token) and len(line["token_fp"]) == 12
    assert line["request_id"] == "trace-42" == response.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/nope", {}, 404),
        ("get", "/auth/login", {}, 405),
        ("post", "/auth/login", {"data": "x", "content_type": "text/plain"}, 415),
        ("post", "/check-token", {"json": {"token": "0" * 64, "service_id": "stock"}}, 401),
        ("get", "/users", {"headers": {"token": "0" * 64}}, 401),
    ],
)
def test_errors_are_logged_too(client, caplog, method, path, kwargs, status):
    with caplog.at_level(logging.INFO, logger="auth.access"):
        response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    (record,) = access_records(caplog)
    line = as_json(record)
    assert (line["method"], line["path"], line["status"]) == (method.upper(), path, status)
    assert line["request_id"] == response.headers["X-Request-ID"]


def test_the_body_token_of_check_token_is_fingerprinted(client, api, caplog):
    token = api.login("alice")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="auth.access"):
        client.post("/check-token", json={"token": token, "service_id": "stock"})
    (record,) = access_records(caplog)
    assert as_json(record)["token_fp"] == fingerprint(token)


def reset_code(mailbox, address, mailed):
    """The code of the first reset mail to `address` after its first `mailed` mails (sent in the background)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for message in mailbox.to(address)[mailed:]:
            found = re.search(r"code=([A-Za-z0-9_-]+)", message.get_content())
            if found:
                return found.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no reset mail to {address}")


def test_no_secret_reaches_any_log_line(client, api, mailbox, caplog):
    """Login, token use, logout, password change and reset: no line holds a secret."""
    # A user of its own, so the reset mail goes to an address no other test reads.
    password, address = "juniper-quiet-anchor-5", "log-secrets@example.com"
    api.create_user("log-secrets", password=password, email=address)
    secrets = [password]
    with caplog.at_level(logging.DEBUG):
        token = api.login("log-secrets", password)
        secrets.append(token)
        client.post("/check-token", json={"token": token, "service_id": "stock"})
        client.post("/auth/login", json={"username": "log-secrets", "password": "not-its-password-9"})
        secrets.append("not-its-password-9")
        client.put(
            "/auth/password",
            json={"current_password": password, "new_password": "lighthouse-quiet-river-7"},
            headers={"token": token},
        )
        secrets.append("lighthouse-quiet-river-7")
        mailed = len(mailbox.to(address))
        client.post("/auth/password/forgot", json={"username": "log-secrets"})
        code = reset_code(mailbox, address, mailed)
        secrets.append(code)
        reset = client.post("/auth/password/reset", json={"code": code, "password": "harbor-lights-at-dawn-3"})
        assert reset.status_code == 200
        secrets.append("harbor-lights-at-dawn-3")
        client.post("/auth/logout", headers={"token": token})
    assert len(access_records(caplog)) >= 7
    # aiosmtpd's own log ("mail.log") belongs to the test mailbox, which reads the mail itself.
    written = "\n".join(json.dumps(as_json(record)) for record in caplog.records if record.name != "mail.log")
    for secret in secrets:
        assert secret not in written


def test_gunicorn_writes_only_json_lines(postgres, mailbox, tmp_path):
    url = postgres.create_database("auth_logging")
    server = start_gunicorn(fixtures.test_settings(url, mailbox), tmp_path)
    try:
        login = httpx.post(f"{server.url}/auth/login", json={"username": "bob", "password": DEMO["bob"]})
        token = login.json()["token"]
        profile = httpx.get(f"{server.url}/auth/profile", headers={"token": token, "X-Request-ID": "live-trace-1"})
        assert profile.headers["X-Request-ID"] == "live-trace-1"
        httpx.get(f"{server.url}/nope")
    finally:
        stop_gunicorn(server)

    text = server.log()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    messages = [line["message"] for line in lines if line["name"] == "gunicorn.error"]
    # The master's lines, from start to shutdown, are JSON like the rest.
    assert any(message.startswith("Listening at:") for message in messages)
    assert any(message.startswith("Booting worker") for message in messages)
    assert "Shutting down: Master" in messages
    access = [line for line in lines if line["name"] == "auth.access"]
    (traced,) = [line for line in access if line["request_id"] == "live-trace-1"]
    assert (traced["path"], traced["status"], traced["token_fp"]) == ("/auth/profile", 200, fingerprint(token))
    assert {(line["path"], line["status"]) for line in access} >= {("/auth/login", 200), ("/nope", 404)}
    assert all(set(line) >= ACCESS_FIELDS for line in access)
    assert token not in text and DEMO["bob"] not in text
