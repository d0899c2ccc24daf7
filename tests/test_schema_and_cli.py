"""The SQL scripts, the demo data, the named queries and the command-line tasks."""

import re
from pathlib import Path

import pytest

import config
from db import migrate
from db import queries as q
from devtools import demo
from security.passwords import verify_password
from tests.fixtures import DEMO, ROOT, db_rows


def test_migrations_and_demo_data_can_be_applied_again(postgres):
    url = postgres.create_database("auth_rerun")
    before = db_rows(url, "select count(*) as n from auth.users")[0]["n"]
    assert migrate.upgrade(url) == []
    demo.seed(url)
    assert db_rows(url, "select count(*) as n from auth.users")[0]["n"] == before == 4
    assert db_rows(url, "select count(*) as n from auth.role_permissions")[0]["n"] == 6 + 5


def test_the_schema_alone_has_no_demo_users_but_the_auth_service_and_admin_role(postgres):
    url = postgres.url("postgres")
    db_rows(url, "drop database if exists auth_bare with (force)")
    db_rows(url, "create database auth_bare")
    bare = postgres.url("auth_bare")
    assert migrate.upgrade(bare) == sorted(path.name.removesuffix(".sql") for path in migrate.MIGRATIONS.glob("*.sql"))
    assert db_rows(bare, "select count(*) as n from auth.users")[0]["n"] == 0
    permissions = db_rows(
        bare,
        """select p.name from auth.roles r join auth.role_permissions rp on rp.role_id = r.id
           join auth.permissions p on p.id = rp.permission_id where r.name = 'admin' order by 1""",
    )
    assert [row["name"] for row in permissions] == [
        "auth.admin",
        "auth.audit.read",
        "auth.rbac.read",
        "auth.rbac.write",
        "auth.users.read",
        "auth.users.write",
    ]


def test_demo_seed_hashes_match_the_documented_passwords(postgres):
    url = postgres.create_database("auth_seed")
    rows = db_rows(url, "select username, password_hash, active from auth.users order by id")
    assert [(row["username"], row["active"]) for row in rows] == [
        ("admin", True),
        ("alice", True),
        ("bob", True),
        ("carol", False),
    ]
    for row in rows:
        assert row["password_hash"].startswith("$2b$12$")
        assert verify_password(DEMO[row["username"]], row["password_hash"], config.DEVELOPMENT_SECRET)
        assert not verify_password(DEMO[row["username"]] + "x", row["password_hash"], config.DEVELOPMENT_SECRET)


def test_disabled_demo_user_cannot_log_in(client):
    response = client.post("/auth/login", json={"username": "carol", "password": DEMO["carol"]})
    assert response.status_code == 401


def test_create_admin_makes_a_working_administrator(app, client):
    result = app.test_cli_runner().invoke(args=["create-admin", "root", "--password", "saffron-kettle-31"])
    assert result.exit_code == 0, result.output
    token = client.post("/auth/login", json={"username": "root", "password": "saffron-kettle-31"}).get_json()["token"]
    assert client.get("/users", headers={"token": token}).status_code == 200


@pytest.mark.parametrize(
    ("username", "password", "says"),
    [
        ("root", "short", "12 to 128"),
        ("admin", "saffron-kettle-31", "already exists"),
        ("rooty", "rooty-saffron-31", "username"),
        ("root@example.com", "saffron-kettle-31", "username must match"),
    ],
)
def test_create_admin_refuses_bad_input(app, username, password, says):
    result = app.test_cli_runner().invoke(args=["create-admin", username, "--password", password])
    assert result.exit_code != 0
    assert says in result.output


def test_purge_deletes_only_dead_tokens(app, api, test_database):
    live, dead, old = api.login("alice"), api.login("bob"), api.login("admin")
    db_rows(
        test_database, "update auth.tokens_cache set expires_at = now() - interval '1 second' where user_id in (1, 3)"
    )
    result = app.test_cli_runner().invoke(args=["purge"])
    assert result.exit_code == 0
    assert "purged 2 tokens" in result.output
    remaining = db_rows(test_database, "select user_id from auth.tokens_cache")
    assert [row["user_id"] for row in remaining] == [2]
    assert live and dead and old


def test_a_purge_with_a_shorter_ttl_than_the_servers_deletes_no_live_token(app, app_factory, api, test_database):
    tokens = [api.login("alice"), api.login("bob")]
    db_rows(test_database, "update auth.tokens_cache set modified_at = now() - interval '10 seconds'")
    impatient = app_factory(TOKEN_TTL_SECONDS=1, TOKEN_MAX_LIFETIME_SECONDS=1)

    result = impatient.test_cli_runner().invoke(args=["purge"])

    assert "purged 0 tokens" in result.output
    client = app.test_client()
    assert [client.get("/auth/profile", headers={"token": token}).status_code for token in tokens] == [200, 200]


def test_login_purges_dead_tokens(api, test_database):
    api.login("bob")
    db_rows(test_database, "update auth.tokens_cache set expires_at = now() - interval '1 second'")
    api.login("alice")
    assert [row["user_id"] for row in db_rows(test_database, "select user_id from auth.tokens_cache")] == [2]


SOURCES = [
    p
    for p in ROOT.rglob("*.py")
    if not {".venv", "var", "clients", "tests", "bench", "devtools", "node_modules"} & set(p.parts)
]


def test_every_query_the_code_calls_exists():
    called = {name for path in SOURCES for name in re.findall(r"\bq\.(\w+)\(", path.read_text())}
    missing = sorted(name for name in called if not hasattr(q, name))
    assert called and not missing


def test_every_named_query_is_called_by_name():
    # A query reached only through a name built at run time is one grep cannot find.
    code = "".join(path.read_text() for path in SOURCES)
    uncalled = sorted(name for name in q._QUERIES if not re.search(rf"\bq\.{name}\(", code))
    assert uncalled == []
    assert "getattr(q" not in code


@pytest.mark.parametrize("knob", ["TOKEN_TTL_SECONDS", "TOKEN_RENEW_THRESHOLD_SECONDS", "TOKEN_MAX_LIFETIME_SECONDS"])
def test_token_lifetimes_are_defined_in_config_only(knob):
    defined = [p.relative_to(ROOT) for p in SOURCES if re.search(rf"^{knob}\s*=", p.read_text(), re.MULTILINE)]
    assert defined == [Path("config.py")]
    literal = [p for p in SOURCES if p.name != "config.py" and re.search(r"\b(300|43200)\b", p.read_text())]
    assert not literal
