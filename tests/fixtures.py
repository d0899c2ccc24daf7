"""Fixtures: a real PostgreSQL (embedded, under var/pgtest), the app, a live gunicorn, a mailbox.

Each test session runs its own PostgreSQL server (var/pgtest/<pid>, about a second to
create), separate from the development one (var/pgdata): tests never touch demo work,
two sessions never share data, and a test may stop its server to drill an outage. Each
test of the in-process app starts from the schema plus the demo data; the live server
has a database of its own.
"""

import contextlib
import email
import email.policy
import functools
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import orjson
import psycopg
import pytest
from aiosmtpd.controller import Controller
from psycopg import sql
from psycopg.types.json import Jsonb

import config
import jobs
from app import create_app
from db import migrate
from devtools import demo, embedded, local_gunicorn
from security.passwords import hash_password
from tests.openapi_check import SpecCheckingClient
from web import request_log

ROOT = Path(__file__).resolve().parent.parent
PGTEST = ROOT / "var" / "pgtest"
DEMO = {
    "admin": "orchid-lantern-42",
    "alice": "maple-harbor-17",
    "bob": "granite-willow-88",
    "carol": "copper-meadow-55",
}


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_server(pgdata):
    """Stop a test server if it still runs, and delete its data."""
    with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
        embedded.stop(pgdata)
    shutil.rmtree(pgdata, ignore_errors=True)


class Postgres:
    """This session's test server: URLs per database, and stop/start for outage drills."""

    def __init__(self):
        PGTEST.mkdir(parents=True, exist_ok=True)
        for leftover in PGTEST.iterdir():
            if leftover.name.isdigit() and not pid_alive(int(leftover.name)):
                remove_server(leftover)
        self.pgdata = PGTEST / str(os.getpid())
        self.server_url = embedded.start(self.pgdata)

    def url(self, database):
        return self.server_url.replace("/postgres?", f"/{database}?")

    def create_database(self, database):
        """A fresh database with the schema and the demo data, applied as `make db` does."""
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{database}" with (force)')
            conn.execute(f'create database "{database}"')
        migrate.upgrade(self.url(database))
        demo.seed(self.url(database))
        return self.url(database)

    def stop(self):
        embedded.stop(self.pgdata)

    def start(self):
        embedded.start(self.pgdata)


@pytest.fixture(scope="session")
def postgres():
    """This session's embedded test server, removed at the end."""
    server = Postgres()
    yield server
    remove_server(server.pgdata)


class Outage:
    """Stops and starts this session's test PostgreSQL, for outage drills."""

    def __init__(self, postgres):
        self.postgres, self.down = postgres, False

    def begin(self):
        self.down = True
        self.postgres.stop()

    def end(self):
        self.postgres.start()
        self.down = False


@pytest.fixture
def outage(postgres):
    """The database switch; PostgreSQL runs again after the test however it ends."""
    drill = Outage(postgres)
    try:
        yield drill
    finally:
        if drill.down:
            drill.end()


@pytest.fixture(scope="session")
def test_database(postgres):
    """The database the in-process app uses; put back as it was before every test by `app_factory`."""
    url = postgres.create_database("auth_test")
    with psycopg.connect(url, autocommit=True) as conn:
        for username, password in DEMO.items():
            conn.execute(
                "update auth.users set password_hash = %s where username = %s", [quick_demo_hash(password), username]
            )
    return url


@pytest.fixture(scope="session")
def test_database_snapshot(test_database):
    """The test database as it is before any test: what every test starts from."""
    return Snapshot(test_database)


class Mailbox:
    """An SMTP server on 127.0.0.1 that keeps what it receives (`controller_options`: TLS)."""

    def __init__(self, port=None, **controller_options):
        self.messages = []
        self.arrived = threading.Condition()
        self.controller = Controller(
            self, hostname="127.0.0.1", port=port or local_gunicorn.free_port(), **controller_options
        )

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.arrived:
            self.messages.append(message)
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, to_address, timeout=5, subject=None):
        """The newest mail to `to_address` (with `subject`, if given) not yet returned; AssertionError
        when none comes."""
        deadline = time.monotonic() + timeout

        def wanted(message):
            return message["To"] == to_address and subject in (None, message["Subject"])

        with self.arrived:
            while True:
                for message in reversed(self.messages):
                    if wanted(message) and not getattr(message, "seen", False):
                        for older in self.messages:
                            if wanted(older):
                                older.seen = True
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no mail to {to_address} within {timeout}s")
                self.arrived.wait(left)

    def to(self, to_address):
        """Every mail received for `to_address`, oldest first."""
        return [m for m in self.messages if m["To"] == to_address]


@pytest.fixture(scope="session")
def mailbox():
    """The SMTP server every app under test mails to."""
    box = Mailbox()
    box.controller.start()
    yield box
    box.controller.stop()


def test_settings(database_url, mailbox):
    """Config overrides shared by the in-process app and the live server."""
    return {
        "DATABASE_URL": database_url,
        "BCRYPT_ROUNDS": 4,  # the cost factor is config; tests need speed, not strength
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": mailbox.controller.port,
        "SMTP_STARTTLS": False,
        "PASSWORD_RESET_URL": "https://app.example/reset#code={code}",
        "LOG_LEVEL": "INFO",
        "JOB_POLL_SECONDS": 0.1,  # mails leave within a tenth of a second
    }


@pytest.fixture
def app_factory(test_database, test_database_snapshot, postgres, mailbox):
    """Build an app on a freshly reset test database, with overrides; pools closed after the test."""
    test_database_snapshot.restore()
    apps = []

    def build(**overrides):
        app = create_app({**test_settings(test_database, mailbox), "TESTING": True, **overrides})
        app.test_client_class = SpecCheckingClient  # every response a test sees must match openapi.yaml
        app.extensions["db_pool"].wait(timeout=10)
        jobs.start(app)
        apps.append(app)
        return app

    yield build
    for app in apps:
        jobs.stop(app)
        app.extensions["db_pool"].close()


@pytest.fixture
def app(app_factory):
    """The app with the test settings."""
    return app_factory()


@pytest.fixture
def client(app):
    """Flask's test client for `app`."""
    return app.test_client()


@contextlib.contextmanager
def access_lines_to(path):
    """The in-process app's access lines go to `path` instead of stderr meanwhile."""
    test_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    fd = request_log.ACCESS_LINES.redirect(test_fd)
    try:
        yield
    finally:
        request_log.ACCESS_LINES.redirect(fd)
        os.close(test_fd)


@pytest.fixture(scope="session", autouse=True)
def quiet_access_lines(tmp_path_factory):
    """Access lines of the in-process app to a file: written by a thread of their own, they would
    otherwise reach the terminal whenever pytest lifts its capture to print."""
    with access_lines_to(tmp_path_factory.mktemp("access") / "access.log"):
        yield


@pytest.fixture
def access_lines(tmp_path):
    """A function returning the access lines the in-process app has written since the test began,
    as dicts."""
    path = tmp_path / "access.log"

    def written():
        request_log.ACCESS_LINES.flush()
        return [orjson.loads(line) for line in path.read_bytes().splitlines()]

    with access_lines_to(path):
        yield written


class Snapshot:
    """Every row of every auth table as it was when taken, put back in one transaction.

    Faster than building the database again for every test, and exact: the bootstrap rows
    of the migrations, the demo data (its passwords hashed at the test cost, so logging in
    as a demo user is quick; test_schema_and_cli checks the seed's own hashes), and the
    next id of every table.
    """

    def __init__(self, url):
        self.url = url
        with psycopg.connect(url) as conn:
            self.tables = [
                row[0]
                for row in conn.execute(
                    "select table_name from information_schema.tables"
                    " where table_schema = 'auth' and table_type = 'BASE TABLE' order by 1"
                )
            ]
            self.rows = {
                table: conn.execute(
                    sql.SQL("select coalesce(json_agg(t), '[]') from auth.{} t").format(sql.Identifier(table))
                ).fetchone()[0]
                for table in self.tables
            }
            self.identities = conn.execute(
                "select table_name, column_name from information_schema.columns"
                " where table_schema = 'auth' and is_identity = 'YES'"
            ).fetchall()

    def restore(self):
        with psycopg.connect(self.url) as conn:
            # Foreign keys are enforced by triggers, which replica mode skips while the rows go back.
            conn.execute("set local session_replication_role = replica")
            conn.execute(
                sql.SQL("truncate {} restart identity").format(
                    sql.SQL(", ").join(sql.Identifier("auth", table) for table in self.tables)
                )
            )
            for table, rows in self.rows.items():
                if rows:
                    conn.execute(
                        sql.SQL(
                            "insert into auth.{table} overriding system value"
                            " select * from jsonb_populate_recordset(null::auth.{table}, %s)"
                        ).format(table=sql.Identifier(table)),
                        [Jsonb(rows)],
                    )
            for table, column in self.identities:
                conn.execute(
                    sql.SQL(
                        "select setval(pg_get_serial_sequence({name}, {column}), max({id}) + 1, false) from auth.{t}"
                    ).format(
                        name=sql.Literal(f"auth.{table}"),
                        column=sql.Literal(column),
                        id=sql.Identifier(column),
                        t=sql.Identifier(table),
                    )
                )


@functools.cache
def quick_demo_hash(password):
    """A demo password hashed at the test cost with the default (development) pepper."""
    return hash_password(password, config.PASSWORD_PEPPER, 4)


def assert_error(response, status, code):
    """The contract's error shape with this status and code; returns the body."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == code
    assert body["message"]
    return body


class Api:
    """Short calls against the test client: login, headers, JSON requests."""

    def __init__(self, client):
        self.client = client

    def login(self, username="admin", password=None):
        response = self.client.post("/auth/login", json={"username": username, "password": password or DEMO[username]})
        assert response.status_code == 200, response.get_json()
        return response.get_json()["token"]

    def headers(self, username="admin", password=None):
        return {"token": self.login(username, password)}

    def create_user(self, username, password="correct-horse-battery-9", **fields):
        """Create a user as admin; returns the user resource."""
        response = self.client.post(
            "/users", json={"username": username, "password": password, **fields}, headers=self.headers()
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()


@pytest.fixture
def api(client):
    """Helpers for the common calls."""
    return Api(client)


def db_rows(url, sql, params=None):
    """Run SQL directly against a database (to inspect or age rows)."""
    with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else cur.rowcount


def start_gunicorn(settings, tmp_dir, extra_env=None):
    """A gunicorn (local_gunicorn.Server: .url, .log()) with `settings` as its environment."""
    env = {**{key: str(value) for key, value in settings.items()}, **(extra_env or {})}
    return local_gunicorn.start(env, Path(tmp_dir) / "gunicorn.log")


def stop_gunicorn(server):
    server.stop()


@pytest.fixture(scope="session")
def live_server(postgres, mailbox, tmp_path_factory):
    """A real gunicorn on its own database with the demo data; per-IP throttling relaxed
    (every test client is 127.0.0.1), per-account throttling as in production."""
    url = postgres.create_database("auth_live")
    settings = {**test_settings(url, mailbox), "LOGIN_IP_MAX_FAILURES": 100000}
    server = start_gunicorn(settings, tmp_path_factory.mktemp("live"))
    yield server
    stop_gunicorn(server)


def snapshot(url, leave_out=()):
    """{table: (rows, digest of the content)} for every auth table but those in `leave_out`.

    A token's modified_at is left out: a valid caller's session may be renewed by any use,
    which is not a write of the request's input."""
    tables = db_rows(
        url,
        "select table_name from information_schema.tables"
        " where table_schema = 'auth' and table_type = 'BASE TABLE' order by 1",
    )
    parts = [
        sql.SQL(
            "select {name} as t, count(*) as n,"
            " md5(coalesce(string_agg((to_jsonb(x) - 'modified_at')::text, '|' order by x::text), '')) as h"
            " from auth.{table} x"
        ).format(name=sql.Literal(t["table_name"]), table=sql.Identifier(t["table_name"]))
        for t in tables
        if t["table_name"] not in leave_out
    ]
    return {row["t"]: (row["n"], row["h"]) for row in db_rows(url, sql.SQL(" union all ").join(parts))}


def last_audit_id(url):
    """The newest audit event's id, to read what a request adds after it."""
    return db_rows(url, "select coalesce(max(id), 0) as id from auth.audit_events")[0]["id"]


def audit_events_after(url, last_id):
    """The names of the audit events written after `last_id`, oldest first."""
    rows = db_rows(url, "select event from auth.audit_events where id > %s order by id", [last_id])
    return [row["event"] for row in rows]


def wait_for_outbox(url, timeout=5):
    """Wait until the background worker has done every job of the outbox."""
    deadline = time.monotonic() + timeout
    while db_rows(url, "select count(*) as n from auth.outbox where done_at is null")[0]["n"]:
        assert time.monotonic() < deadline, "the outbox was not emptied"
        time.sleep(0.05)
