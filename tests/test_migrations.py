"""Migrations (db/migrate.py): a database built by the first release, full of data and sessions,
is brought up to date with every row and every live session intact; two instances upgrading
at once apply each migration once; `flask db upgrade` and `flask db status` say what they did."""

import threading

import psycopg
import pytest

from db import migrate
from devtools import demo
from security.tokens import digest
from tests.fixtures import DEMO, Api, db_rows

RELEASE = migrate.MIGRATIONS / "0001.release-1.sql"
ALL = sorted(path.name.removesuffix(".sql") for path in migrate.MIGRATIONS.glob("*.sql"))


def empty_database(postgres, name):
    db_rows(postgres.server_url, f'drop database if exists "{name}" with (force)')
    db_rows(postgres.server_url, f'create database "{name}"')
    return postgres.url(name)


@pytest.fixture
def release_database(postgres):
    """A database as the first release built it (its sql/run_all.sql, without yoyo), used for a
    while: the demo data, more users, live sessions, a reset code, failed logins, audit events."""
    url = empty_database(postgres, "auth_release")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(RELEASE.read_text())
    # The demo data as the first release had it: service keys came later.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(demo.SEED.read_text().partition("insert into auth.service_keys")[0])
    for statement, params in (
        ("insert into auth.users (username, email, password_hash) values ('erin', 'erin@example.com', 'x')", None),
        (
            "insert into auth.tokens_cache (token_hash, user_id, payload) select %s, id, '{}' from auth.users"
            " where username = 'alice'",
            [digest("alice-session")],
        ),
        (
            "insert into auth.tokens_cache (token_hash, user_id, payload, created_at, modified_at) select %s, id, '{}',"
            " now() - interval '1 day', now() - interval '1 day' from auth.users where username = 'bob'",
            [digest("bob-session")],
        ),
        (
            "insert into auth.password_reset_codes (code_hash, user_id, expires_at) select 'x', id, now()"
            " + interval '10 minutes' from auth.users where username = 'alice'",
            None,
        ),
        ("insert into auth.login_failures (key, failures, in_flight) values ('user:3', 2, 0)", None),
        ("insert into auth.audit_events (event, user_id) values ('authn_login_success', 2)", None),
    ):
        db_rows(url, statement, params)
    return url


def contents(url, tables):
    return {table: db_rows(url, f"select count(*) as n from auth.{table}")[0]["n"] for table in tables}  # noqa: S608


TABLES = [
    "users",
    "services",
    "roles",
    "permissions",
    "role_permissions",
    "service_roles",
    "person_service_roles",
    "tokens_cache",
    "password_reset_codes",
    "login_failures",
    "audit_events",
]


def test_a_database_of_the_first_release_is_brought_up_to_date_with_everything_in_it(
    release_database, app_factory, postgres
):
    before = contents(release_database, TABLES)

    assert migrate.upgrade(release_database) == ALL

    after = contents(release_database, TABLES)
    # One more permission (auth.admin) and its link to role admin; nothing lost.
    assert after == {
        **before,
        "permissions": before["permissions"] + 1,
        "role_permissions": before["role_permissions"] + 1,
    }
    assert migrate.pending(release_database) == []
    app = app_factory(DATABASE_URL=release_database)
    client = app.test_client()
    # A session live before the upgrade is live after it; one long dead stays dead.
    alive = client.post("/check-token", json={"service_id": "stock"}, headers={"token": "alice-session"})
    assert alive.status_code == 200, alive.get_json()
    dead = client.post("/check-token", json={"service_id": "stock"}, headers={"token": "bob-session"})
    assert dead.status_code == 401
    # The demo users log in, and the administrator administers.
    assert client.post("/auth/login", json={"username": "bob", "password": DEMO["bob"]}).status_code == 200
    assert Api(client).create_user("frank")["username"] == "frank"


def test_two_upgrades_at_once_apply_each_migration_once(postgres):
    url = empty_database(postgres, "auth_race_upgrade")
    start, results, errors = threading.Barrier(2), [], []

    def upgrade():
        start.wait()
        try:
            results.append(migrate.upgrade(url))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=upgrade) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert sorted(results, key=len) == [[], ALL]
    applied = db_rows(url, "select migration_id from public._yoyo_migration order by migration_id")
    assert [row["migration_id"] for row in applied] == ALL


def test_the_cli_upgrades_and_tells_the_status(app_factory, postgres):
    url = empty_database(postgres, "auth_cli_upgrade")
    runner = app_factory(DATABASE_URL=url).test_cli_runner()

    pending = runner.invoke(args=["db", "status"])
    assert pending.exit_code == 1
    assert "pending: " + ", ".join(ALL) in pending.output
    # Only the command's own line: a migration's statements print nothing on the way.
    assert runner.invoke(args=["db", "upgrade"]).output == f"applied {', '.join(ALL)}\n"
    assert runner.invoke(args=["db", "upgrade"]).output == "the schema is up to date\n"
    assert runner.invoke(args=["db", "status"]).exit_code == 0
