"""No secrets in logs (API.md, Security): every flow that handles a password, token or reset
code runs against a real gunicorn and the in-process app, and none of them appears in what
either logged; the access lines carry a token fingerprint instead."""

import json
import logging
import re
import time
import uuid

import httpx
import pytest

from security.tokens import fingerprint
from tests import fixtures
from tests.fixtures import DEMO, start_gunicorn, stop_gunicorn

CANARY = "canary-Qz7vW3x9-"  # every password a flow sends starts with it, so none is missed
TOKEN_SECRET = "canary-token-secret-K4m8Tq2z"
LINK = re.compile(r"#code=(\S+)")


class Secrets(list):
    """Everything that must never be logged, collected as the flows make or meet it."""

    def password(self, name):
        return self.add(f"{CANARY}{name}-{uuid.uuid4().hex[:8]}")

    def add(self, secret):
        self.append(secret)
        return secret


def run_every_flow(call, mailbox, outage):
    """Log in (ok, wrong, locked), use and revoke tokens, recover and change passwords,
    create and update a user with a password, meet an outage; every secret seen is returned.

    `call(method, path, **kwargs)` sends one request and returns (status, JSON body or None).
    """
    secrets = Secrets()
    admin_password = secrets.add(DEMO["admin"])
    status, body = call("POST", "/auth/login", json={"username": "admin", "password": admin_password})
    assert status == 200
    admin = {"token": secrets.add(body["token"])}

    email = f"nina-{uuid.uuid4().hex[:10]}@example.com"
    username = f"nina{uuid.uuid4().hex[:6]}"
    first = secrets.password("first")
    status, body = call("POST", "/users", json={"username": username, "password": first, "email": email}, headers=admin)
    assert status == 201
    user_id = body["id"]

    def login(password, expected):
        status, body = call("POST", "/auth/login", json={"username": username, "password": password})
        assert status == expected, body
        return secrets.add(body["token"]) if status == 200 else None

    login(secrets.password("wrong"), 401)
    token = login(first, 200)
    # The seed's short field names, too.
    status, body = call("POST", "/auth/login", json={"user": username, "pass": first})
    assert status == 200
    secrets.add(body["token"])

    assert call("GET", "/auth/profile", headers={"token": token})[0] == 200
    assert call("GET", "/auth/profile", headers={"Authorization": f"Bearer {token}"})[0] == 200
    assert call("GET", f"/auth/profile?token={token}")[0] == 401  # ignored there, and never logged
    assert call("POST", "/check-token", json={"token": token, "service_id": "auth"})[0] == 403
    assert call("POST", "/check-token", json={"service_id": "stock"}, headers={"token": token})[0] == 403
    assert call("POST", "/check-token", json={"token": secrets.add("f" * 64), "service_id": "stock"})[0] == 401

    # Recovery by mail, then a change, then an administrator's reset.
    assert call("POST", "/auth/password/forgot", json={"username": email})[0] == 202
    code = secrets.add(LINK.search(mailbox.wait_for(email).get_content()).group(1))
    assert call("POST", "/auth/password/reset", json={"code": code, "password": "too-short"})[0] == 400
    second = secrets.password("second")
    assert call("POST", "/auth/password/reset", json={"code": code, "password": second})[0] == 200
    assert call("POST", "/auth/password/reset", json={"code": code, "password": second})[0] == 400
    token = login(second, 200)
    mine = {"token": token}
    third = secrets.password("third")
    wrong_current = {"current_password": secrets.password("not-current"), "new_password": third}
    assert call("PUT", "/auth/password", json=wrong_current, headers=mine)[0] == 401
    refused = {"current_password": second, "new_password": "qwerty123456"}
    assert call("PUT", "/auth/password", json=refused, headers=mine)[0] == 400
    change = {"current_password": second, "new_password": third}
    assert call("PUT", "/auth/password", json=change, headers=mine)[0] == 200
    fourth = secrets.password("fourth")
    assert call("PUT", f"/users/{user_id}", json={"password": fourth}, headers=admin)[0] == 200
    token = login(fourth, 200)

    # Malformed bodies that carry a password.
    leaked = secrets.password("in-bad-json")
    broken = f'{{"username": "{username}", "password": "{leaked}"'
    assert call("POST", "/auth/login", content=broken, headers={"Content-Type": "application/json"})[0] == 400
    assert call("POST", "/auth/login", content=f"password={leaked}", headers={"Content-Type": "text/plain"})[0] == 415
    overlong = secrets.add(CANARY + "x" * 5000)
    assert call("POST", "/auth/login", json={"username": username, "password": overlong})[0] == 401

    # A lock: the right password is refused too.
    for n in range(4):
        login(secrets.password(f"guess{n}"), 401)
    login(fourth, 429)

    # Revocation: by header, by body, all at once.
    assert call("POST", "/auth/logout", headers={"token": token})[0] == 200
    assert call("POST", "/auth/logout", json={"token": token})[0] == 200
    assert call("POST", "/auth/logout-all", headers=admin)[0] == 200

    # An outage in the middle of it all.
    outage.begin()
    status, _ = call("POST", "/auth/login", json={"username": "admin", "password": admin_password})
    assert status == 503
    assert call("POST", "/check-token", json={"token": admin["token"], "service_id": "auth"})[0] == 503
    outage.end()
    deadline = time.monotonic() + 15
    while call("GET", "/readyz")[0] != 200:
        assert time.monotonic() < deadline, "the app did not reconnect"
        time.sleep(0.2)
    status, body = call("POST", "/auth/login", json={"username": "admin", "password": admin_password})
    assert status == 200
    secrets.add(body["token"])
    return secrets


def assert_no_secret_in(text, secrets):
    for secret in secrets:
        # The whole secret, and its first half in case something cut it short.
        for part in (secret, secret[: max(len(secret) // 2, 12)]):
            assert part not in text, f"a secret was logged: {part[:6]}..."
    assert CANARY not in text


def token_lines(access_lines, tokens):
    """The access lines of requests that carried (or were given) one of `tokens`."""
    prints = {fingerprint(token) for token in tokens}
    return [line for line in access_lines if line.get("token_fp") in prints]


# --- a real gunicorn --------------------------------------------------------------------


@pytest.fixture(scope="module")
def logged_server(postgres, mailbox, tmp_path_factory):
    """A gunicorn logging at its most verbose, with a token secret it must keep to itself."""
    url = postgres.create_database("auth_secrets")
    settings = {**fixtures.test_settings(url, mailbox), "LOG_LEVEL": "DEBUG", "TOKEN_SECRET": TOKEN_SECRET}
    server = start_gunicorn(settings, tmp_path_factory.mktemp("secrets"))
    yield server
    stop_gunicorn(server)


def test_gunicorn_logs_no_password_token_or_reset_code(logged_server, mailbox, outage):
    http = httpx.Client(base_url=logged_server.url, timeout=10)

    sent = []

    def call(method, path, **kwargs):
        sent.append(path)
        response = http.request(method, path, **kwargs)
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        return response.status_code, response.json() if is_json else None

    with http:
        secrets = run_every_flow(call, mailbox, outage)

    # Access lines reach the log within a second (web/request_log.py).
    deadline = time.monotonic() + 5
    while True:
        log = logged_server.log()
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        access = [line for line in lines if line["name"] == "auth.access"]
        if len(access) >= len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert_no_secret_in(log, [*secrets, TOKEN_SECRET])
    # One line per request, those during the outage included.
    assert len(access) >= len(sent)
    assert all({"asctime", "ip", "method", "path", "status", "token_fp"} <= set(line) for line in access)
    tokens = [secret for secret in secrets if re.fullmatch(r"[0-9a-f]{64}", secret)]
    carried = token_lines(access, tokens)
    # Logins show the fingerprint of the token they issued; profile, check-token and
    # logout that of the token they were sent.
    assert {(line["path"], line["status"]) for line in carried} >= {
        ("/auth/login", 200),
        ("/auth/profile", 200),
        ("/check-token", 403),
        ("/auth/logout", 200),
        ("/users", 201),
    }
    assert all(re.fullmatch(r"[0-9a-f]{12}", line["token_fp"]) for line in carried)


# --- the in-process app -----------------------------------------------------------------


def test_the_app_logs_no_password_token_or_reset_code(client, mailbox, outage, caplog, access_lines):
    caplog.set_level(logging.DEBUG)

    def call(method, path, content=None, **kwargs):
        response = client.open(path, method=method, data=content, **kwargs)
        return response.status_code, response.get_json(silent=True)

    secrets = run_every_flow(call, mailbox, outage)

    records = [record for record in caplog.records if not record.name.startswith("mail.log")]
    # Every field of every record, the extras included, as a formatter could print them.
    text = "\n".join(json.dumps(record.__dict__, default=str) + record.getMessage() for record in records)
    access = access_lines()
    assert_no_secret_in("\n".join([text, *map(json.dumps, access)]), secrets)
    assert {line["path"] for line in token_lines(access, secrets)} >= {"/auth/login", "/auth/profile", "/check-token"}
