"""Fuzzing: schemathesis generates requests from openapi.yaml against a live gunicorn on a
database of its own, authenticated as admin; no answer may be a 5xx, and every answer
must conform to the spec (status listed, headers declared, body valid against its schema).

The run is bounded and seeded, so it is repeatable and fits in a few minutes on two cores.
The same file holds the hooks the schemathesis process loads (SCHEMATHESIS_HOOKS): they
log the fuzzer in and keep it from cutting its own access.
"""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import httpx
import pytest
import schemathesis

from tests import fixtures
from tests.fixtures import DEMO, ROOT, db_rows, start_gunicorn, stop_gunicorn
from tests.openapi_check import load_spec

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
# The run's settings. Every check is on (no 5xx; status, content type, headers and body as the
# spec says; invalid input refused; auth enforced; 405 with Allow ...) except two:
# - positive_data_acceptance: the spec cannot say everything the app refuses on purpose (a
#   password that contains the username, a reset code nobody sent, 1.0 where an id is due).
# - negative_data_rejection, where a request has two sources for one field and one wins: logout
#   takes the header token over the body's, and the link DELETEs take the body over the query.
# One worker keeps the order of requests, so the seed replays the same run. The run stays
# under two minutes on two cores.
CONFIG = """
seed = 20251125
workers = 1
request-timeout = 10

[cache]
enabled = false

[generation]
max-examples = 25
no-shrink = true
database = "none"

[checks]
positive_data_acceptance.enabled = false

[[operations]]
include-operation-id = ["logout", "remove_role_permission", "remove_service_role", "remove_person_service_role"]
checks.negative_data_rejection.enabled = false

[reports.junit]
enabled = true
path = "junit.xml"
"""


# --- hooks, run inside the schemathesis process ---------------------------------------------

# Requests that would cut the fuzzer's own access are disarmed just before they are sent: the
# protected id is swapped for a stand-in of the same kind (FUZZ_GUARD, read from the fuzz
# database), so the request still goes out, on a row nobody needs. The guarded requests:
#   PUT/DELETE /users/{admin or bob}           disables, deletes or re-passwords a fuzzer login;
#   PUT/DELETE /permissions/{auth.*}           renames or drops a permission the admin needs;
#   DELETE /role-permissions  role admin       takes a permission from the admin role;
#   DELETE /person-service-roles  user admin   takes a role from the admin.
# Service "auth" and role "admin" need no guard: the app refuses (409) to delete, rename or
# disable the one, to delete or rename the other, or to take it out of service "auth".
# The swap happens in before_call, after every phase (stateful links included) chose its values.
GUARDED = {
    ("PUT", "/users/{id}"): ("id", "user"),
    ("DELETE", "/users/{id}"): ("id", "user"),
    ("PUT", "/permissions/{id}"): ("id", "permission"),
    ("DELETE", "/permissions/{id}"): ("id", "permission"),
    ("DELETE", "/role-permissions"): ("role_id", "role"),
    ("DELETE", "/person-service-roles"): ("user_id", "user"),
}


def as_id(value):
    """The id a request value stands for, read as leniently as any route could read it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return None


@schemathesis.hook
def before_call(context, case, kwargs):
    """Swap a protected id in the path, body or query for its stand-in."""
    guard = GUARDED.get((case.operation.method.upper(), case.operation.path))
    if guard is None:
        return
    field, kind = guard
    protected, stand_in = json.loads(os.environ["FUZZ_GUARD"])[kind]
    # The link DELETEs read the body, or else the query string: both are guarded.
    for container in (case.path_parameters, case.body, case.query):
        if isinstance(container, dict) and as_id(container.get(field)) in protected:
            value = container[field]
            container[field] = stand_in if isinstance(value, int) else str(stand_in)


def login(url, username):
    """A fresh token of a demo user on the server at `url`."""
    response = httpx.post(f"{url}/auth/login", json={"username": username, "password": DEMO[username]})
    response.raise_for_status()
    return response.json()["token"]


def set_token(case, token):
    case.headers = {**(case.headers or {}), "token": token}


@schemathesis.auth(refresh_interval=None, retry_on=[]).apply_to(operation_id=["logout", "logout_all"])
class OwnLogin:
    """Logout and logout-all revoke the caller's tokens: they get a fresh login of bob each time."""

    def get(self, case, context):
        url = os.environ["FUZZ_URL"]
        # The fuzzer learns usernames from GET /users and may lock bob with wrong passwords.
        unlock = f"{url}/users/{os.environ['FUZZ_BOB_ID']}/lock"
        httpx.delete(unlock, headers={"token": os.environ["FUZZ_ADMIN_TOKEN"]}).raise_for_status()
        return login(url, "bob")

    def set(self, case, data, context):
        set_token(case, data)


@schemathesis.auth(retry_on=[])
class AdminToken:
    """Everything else runs as admin, with the token the test logged in with (FUZZ_ADMIN_TOKEN).

    A 401 is an answer to check, never a reason to log in again (retry_on=[]).
    """

    def get(self, case, context):
        return os.environ["FUZZ_ADMIN_TOKEN"]

    def set(self, case, data, context):
        set_token(case, data)


# --- the test ---------------------------------------------------------------------------------


GUARD_SQL = """
select 'user' as kind,
       array(select id from auth.users where username in ('admin', 'bob')) as protected,
       (select id from auth.users where username = 'carol') as stand_in
union all
select 'role', array(select id from auth.roles where name = 'admin'),
       (select id from auth.roles where name = 'clerk')
union all
select 'permission', array(select id from auth.permissions where name like 'auth.%'),
       (select id from auth.permissions where name = 'stock.read')
"""


def guard(url):
    """Per kind of row, the ids the fuzzer must not touch and the stand-in it gets instead."""
    return {row["kind"]: [row["protected"], row["stand_in"]] for row in db_rows(url, GUARD_SQL)}


@pytest.fixture
def own_mailbox():
    """A mailbox of the fuzz run's own, so its reset mails to the demo users reach no other test."""
    box = fixtures.Mailbox()
    box.controller.start()
    yield box
    box.controller.stop()


def test_fuzzing_finds_no_server_error_and_no_answer_outside_the_spec(postgres, own_mailbox, tmp_path):
    url = postgres.create_database("auth_fuzz")
    # Every fuzzed login fails from 127.0.0.1; per-IP throttling would turn them all into 429s.
    settings = {**fixtures.test_settings(url, own_mailbox), "LOGIN_IP_MAX_FAILURES": 100000}
    # Without the control socket (one path for every gunicorn of the user), servers can run side by side.
    server = start_gunicorn(settings, tmp_path, {"GUNICORN_CMD_ARGS": "--no-control-socket"})
    try:
        token = login(server.url, "admin")
        (bob,) = db_rows(url, "select id from auth.users where username = 'bob'")
        result = run_schemathesis(server.url, token, guard(url), bob["id"], tmp_path)
        profile = httpx.get(f"{server.url}/auth/profile", headers={"token": token})
    finally:
        stop_gunicorn(server)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    # The admin token lived through the run, so every authenticated request was really made as admin.
    assert profile.status_code == 200, "the fuzzer lost its admin token; GUARDED misses a request"
    # Schemathesis leaves out the operation it read the spec from; test_openapi.py covers that one.
    untested = spec_operations() - operations_in_report(tmp_path / "junit.xml") - {"GET /openapi.json"}
    assert untested == set(), "schemathesis did not test every operation of the spec"
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    server_errors = [line for line in lines if line.get("status", 0) >= 500 or line["levelname"] == "ERROR"]
    assert server_errors == [], server_errors[:20]


def run_schemathesis(url, token, guarded, bob_id, tmp_path):
    """The schemathesis CLI against `url`, as CONFIG says; its files (report, config) in `tmp_path`."""
    env = {
        **os.environ,
        "FUZZ_ADMIN_TOKEN": token,
        "FUZZ_URL": url,
        "FUZZ_BOB_ID": str(bob_id),
        "FUZZ_GUARD": json.dumps(guarded),
        "SCHEMATHESIS_HOOKS": str(Path(__file__).resolve()),
        "PYTHONPATH": str(ROOT),
    }
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(SCHEMATHESIS),
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--url",
        url,
    ]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def spec_operations():
    """'METHOD /path' of every operation in the spec."""
    return {
        f"{method.upper()} {path}"
        for path, item in load_spec()["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }


def operations_in_report(junit_path):
    """'METHOD /path' of every operation the JUnit report shows as run."""
    tree = ElementTree.parse(junit_path)  # noqa: S314 (the run's own report, not outside input)
    return {case.get("name") for case in tree.iter("testcase") if case.find("skipped") is None}
