"""Production mode fails closed: gunicorn and every CLI command refuse to start, with one line
naming the variable and no traceback, when a required setting is missing or malformed; the
development mode says so at start; and development machinery stays off the production path."""

import os
import shutil
import subprocess
import sys

import pytest

import config
from tests.fixtures import ROOT, db_rows

SECRET = "c" * 64
MFA_KEY = "Y" * 43 + "="  # 32 bytes in URL-safe base64
MAKE = shutil.which("make") or "make"


@pytest.fixture(scope="module")
def production(postgres):
    """The environment of a correct production start, on a database of its own."""
    url = postgres.create_database("auth_production")
    return {
        "PATH": os.environ["PATH"],
        "APP_ENV": "production",
        "DATABASE_URL": url,
        "TOKEN_SECRET": SECRET,
        "PASSWORD_PEPPER": SECRET.upper(),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_FROM": "Eqeqo <no-reply@example.com>",
        "PASSWORD_RESET_URL": "https://app.example/reset#code={code}",
        "METRICS_BIND": "off",
        "SERVER_PORT": "0",
        "MFA_ENCRYPTION_KEYS": MFA_KEY,
    }


def gunicorn(env):
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def cli(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


BROKEN = {
    "no database": ({"DATABASE_URL": None}, "DATABASE_URL is not set"),
    "a database that is no URL": ({"DATABASE_URL": "host=db dbname=auth"}, "DATABASE_URL must be a URL"),
    "a database URL without a database": ({"DATABASE_URL": "postgresql://db.internal"}, "DATABASE_URL must be a URL"),
    "no token secret": ({"TOKEN_SECRET": None}, "TOKEN_SECRET is not set"),
    "a short token secret": ({"TOKEN_SECRET": "x" * 31}, "TOKEN_SECRET must be at least 32 bytes"),
    "the development token secret": (
        {"TOKEN_SECRET": "development-only-do-not-use-in-production"},
        "TOKEN_SECRET is the development value",
    ),
    "no pepper": ({"PASSWORD_PEPPER": None}, "PASSWORD_PEPPER is not set"),
    "a short pepper": ({"PASSWORD_PEPPER": "pepper"}, "PASSWORD_PEPPER must be at least 32 bytes"),
    "no mail server": ({"SMTP_HOST": None}, "SMTP_HOST is not set"),
    "no sender": ({"SMTP_FROM": None}, "SMTP_FROM must be an address"),
    "a sender without an address": ({"SMTP_FROM": "Eqeqo"}, "SMTP_FROM must be an address"),
    "a mail login without a password": ({"SMTP_USER": "mailer"}, "SMTP_PASSWORD is not set"),
    "no reset page": ({"PASSWORD_RESET_URL": None}, "PASSWORD_RESET_URL must be"),
    "a reset page without the code": ({"PASSWORD_RESET_URL": "https://app.example/reset"}, "PASSWORD_RESET_URL must"),
    "a port that is no number": ({"SERVER_PORT": "abc"}, "SERVER_PORT must be a whole number, not 'abc'"),
    "a timeout that is no number": ({"DB_POOL_TIMEOUT_SECONDS": "soon"}, "DB_POOL_TIMEOUT_SECONDS must be a number"),
    "a flag that is no flag": ({"SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS must be true or false"),
    "an unknown mode": ({"APP_ENV": "staging"}, "APP_ENV must be production or development"),
    "a malformed metrics address": ({"METRICS_BIND": "7879"}, "METRICS_BIND must be host:port"),
    "no MFA key": ({"MFA_ENCRYPTION_KEYS": None}, "MFA_ENCRYPTION_KEYS is not set"),
    "an MFA key that is no Fernet key": ({"MFA_ENCRYPTION_KEYS": "secret"}, "MFA_ENCRYPTION_KEYS must be Fernet keys"),
    "the development MFA key": ({"MFA_ENCRYPTION_KEYS": config.DEVELOPMENT_MFA_KEY}, "the development key"),
    "an unknown MFA policy": ({"MFA_REQUIRED_FOR": "some"}, "MFA_REQUIRED_FOR must be admins or nobody"),
}


def with_changes(env, changes):
    changed = {**env, **changes}
    return {key: value for key, value in changed.items() if value is not None}


@pytest.mark.parametrize("case", BROKEN)
@pytest.mark.parametrize("start", ["gunicorn", "cli"])
def test_production_refuses_to_start_with_one_line_naming_the_setting(production, case, start):
    changes, says = BROKEN[case]
    env = with_changes(production, changes)

    result = gunicorn(env) if start == "gunicorn" else cli(env, "db", "status")

    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("refusing to start (")
    assert says in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_every_problem_is_named_at_once(production):
    result = cli(with_changes(production, {"TOKEN_SECRET": None, "SMTP_HOST": None}), "db", "status")
    assert "TOKEN_SECRET is not set" in result.stderr and "SMTP_HOST is not set" in result.stderr


def test_a_correct_production_setting_passes_the_check(production):
    result = cli(production, "db", "status")
    assert result.returncode == 0, result.stderr
    assert "the schema is up to date" in result.stdout


def test_development_says_so_at_start(production):
    env = {"PATH": os.environ["PATH"], "APP_ENV": "development", "DATABASE_URL": production["DATABASE_URL"]}
    result = cli(env, "db", "status")
    assert result.returncode == 0, result.stderr
    assert "development mode (APP_ENV=development)" in result.stderr
    assert "mails, reset codes included, are written to the log" in result.stderr


def test_production_code_never_imports_development_machinery():
    production_files = [
        path
        for path in ROOT.rglob("*.py")
        if not {".venv", "var", "clients", "tests", "bench", "devtools", "postman", "node_modules"} & set(path.parts)
        and path.name != "conftest.py"
    ]
    assert production_files
    for path in production_files:
        text = path.read_text()
        assert "devtools" not in text and "pgserver" not in text, path


def test_a_serving_worker_holds_no_library_only_some_requests_need(production):
    """Memory: a worker that checks tokens never loads the password estimator (12 MiB), the
    cipher of TOTP secrets (8 MiB), the migration tool or the YAML parser; they load when a
    request needs them."""
    heavy = ("zxcvbn", "cryptography", "yoyo", "yaml")
    probe = (
        "import sys, wsgi\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
        "from security import mfa, passwords\n"
        "passwords.policy_problem('juniper-quiet-anchor-5', 'someone', 12, 128)\n"
        f"mfa.decrypt([{MFA_KEY!r}], mfa.encrypt([{MFA_KEY!r}], 'JBSWY3DPEHPK3PXP'))\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], env=production, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "['cryptography', 'zxcvbn']"]


def test_make_db_loads_no_demo_user_into_a_database_of_ones_own(postgres, tmp_path):
    url = postgres.url("postgres").replace("/postgres?", "/auth_own?")
    db_rows(postgres.server_url, "drop database if exists auth_own with (force)")
    db_rows(postgres.server_url, "create database auth_own")
    make = subprocess.run(
        [MAKE, "db"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert make.returncode == 0, make.stdout + make.stderr
    assert "not loading the demo data" in make.stdout
    assert db_rows(url, "select count(*) as n from auth.users") == [{"n": 0}]
    with_demo = subprocess.run(
        [MAKE, "db"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, "DEMO": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert with_demo.returncode == 0, with_demo.stdout + with_demo.stderr
    assert db_rows(url, "select count(*) as n from auth.users") == [{"n": 4}]
