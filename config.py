"""The one reader of the environment: every knob of the service, with its unit and default.

Values come from the process environment, after a `.env` file in the project folder
(python-dotenv) has filled in what the environment leaves unset.

APP_ENV is `production` unless set. In production the service refuses to start, with one
line naming each variable at fault, when a required setting is missing or malformed
(`check`, called by gunicorn.conf.py and by the app factory, so by every CLI command too).
`development` (what `make run`, `make db` and `make test` set) allows the development
secrets and writes mails to the log, and says so at start.
"""

import base64
import binascii
import hashlib
import os
import re
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".env")

# What is wrong with the environment, one sentence each, found while reading it (see check).
PROBLEMS = []


def env(name, default=None):
    """Read one variable; an empty value counts as unset so `.env` lines can stay blank."""
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_int(name, default):
    """Read a whole number; a malformed one is a problem, and the default stands in meanwhile."""
    text = env(name, str(default))
    if re.fullmatch(r"-?[0-9]+", text.strip()):
        return int(text)
    PROBLEMS.append(f"{name} must be a whole number, not {text!r}")
    return default


def env_float(name, default):
    """Read a number of seconds; a malformed one is a problem."""
    text = env(name, str(default))
    try:
        return float(text)
    except ValueError:
        PROBLEMS.append(f"{name} must be a number, not {text!r}")
        return default


def env_bool(name, default):
    """Read a yes/no variable (1/true/yes/on, 0/false/no/off)."""
    text = env(name, default).strip().lower()
    if text not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
        PROBLEMS.append(f"{name} must be true or false, not {text!r}")
    return text in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    """Read a comma-separated list."""
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


APP_ENV = env("APP_ENV", "production")  # production or development
DEVELOPMENT = APP_ENV == "development"
if APP_ENV not in {"production", "development"}:
    PROBLEMS.append(f"APP_ENV must be production or development, not {APP_ENV!r}")

# Used only in development and by the tests: production refuses it.
DEVELOPMENT_SECRET = "development-only-do-not-use-in-production"  # noqa: S105
MIN_SECRET_BYTES = 32

# Database. Always given: make run and make db point it at the embedded development server.
DATABASE_URL = env("DATABASE_URL")
EMBEDDED_PGDATA = Path(env("EMBEDDED_PGDATA", str(BASE_DIR / "var" / "pgdata")))  # development server's data
DEMO = env_bool("DEMO", "false")  # development: let make db load the demo users, whose passwords are public
DB_POOL_MIN_SIZE = env_int("DB_POOL_MIN_SIZE", 2)  # connections kept open per worker
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 10)  # per worker; 2 workers x 10 < PostgreSQL's 100
DB_POOL_TIMEOUT_SECONDS = env_float("DB_POOL_TIMEOUT_SECONDS", 1.5)  # wait for a connection, then 503 (< 2 s)
DB_CONNECT_TIMEOUT_SECONDS = env_int("DB_CONNECT_TIMEOUT_SECONDS", 1)  # a dead host must fail fast
DB_STATEMENT_TIMEOUT_MS = env_int("DB_STATEMENT_TIMEOUT_MS", 5000)  # no request holds a connection longer

# HTTP server.
SERVER_HOST = env("SERVER_HOST", "127.0.0.1")
SERVER_PORT = env_int("SERVER_PORT", 7878)
METRICS_BIND = env("METRICS_BIND", "127.0.0.1:7879")  # Prometheus scrapes here, not on the API's port; "off": none
WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", 2)  # gunicorn workers; one per core
GUNICORN_WORKER_CLASS = env("GUNICORN_WORKER_CLASS", "gthread")  # gunicorn.conf.py says why
GUNICORN_THREADS = env_int("GUNICORN_THREADS", 4)  # threads per worker, so bcrypt waits don't stall it
GUNICORN_KEEPALIVE_SECONDS = env_int("GUNICORN_KEEPALIVE_SECONDS", 5)  # how long an idle connection stays open
MAX_BODY_BYTES = env_int("MAX_BODY_BYTES", 65536)  # larger bodies get 413; no request needs more
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")  # peers whose X-Forwarded-For is believed; default none
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")  # exact web-page origins (scheme://host:port); default none

# Tokens. A token is valid while now < modified_at + TTL and now < created_at + max lifetime.
TOKEN_TTL_SECONDS = env_int("TOKEN_TTL_SECONDS", 300)  # sliding lifetime; seed: 2-5 min
TOKEN_RENEW_THRESHOLD_SECONDS = env_int("TOKEN_RENEW_THRESHOLD_SECONDS", 30)  # at most one renewal write per window
TOKEN_MAX_LIFETIME_SECONDS = env_int("TOKEN_MAX_LIFETIME_SECONDS", 43200)  # absolute cap, 12 h, however busy
TOKEN_SECRET = env("TOKEN_SECRET", DEVELOPMENT_SECRET if DEVELOPMENT else None)  # the "secret" of the token hash
TOKEN_PURGE_BATCH = env_int("TOKEN_PURGE_BATCH", 1000)  # dead rows deleted per purge statement
MAX_SESSIONS_PER_USER = env_int("MAX_SESSIONS_PER_USER", 20)  # live tokens a user may hold; oldest go first

# Backends (service keys and the revocation feed). In development, check-token answers without
# a key, as the original service did, so its clients keep working; a key sent is still checked.
CHECK_TOKEN_REQUIRES_KEY = env_bool("CHECK_TOKEN_REQUIRES_KEY", "false" if DEVELOPMENT else "true")
REVOCATION_RETENTION_SECONDS = env_int("REVOCATION_RETENTION_SECONDS", 86400)  # older cursors get 410
# Long polls of /revocations held at once per worker; each holds one of its threads meanwhile,
# and measurably slows the others (README, Backends). Beyond it a poll answers at once, with
# Retry-After: 1.
FEED_WAITERS_PER_WORKER = env_int("FEED_WAITERS_PER_WORKER", 1)

# Two-step login (TOTP). The secrets are stored encrypted with the first of these Fernet keys;
# the others still decrypt, while `flask rotate-mfa-keys` re-encrypts (README, Two-step login).
# Development derives one from the development secret; production requires its own.
DEVELOPMENT_MFA_KEY = base64.urlsafe_b64encode(hashlib.sha256(f"{DEVELOPMENT_SECRET} mfa".encode()).digest()).decode()
MFA_ENCRYPTION_KEYS = env_list("MFA_ENCRYPTION_KEYS", DEVELOPMENT_MFA_KEY if DEVELOPMENT else "")
# Who must use a second factor: "admins" (whoever holds any auth.* permission) or "nobody".
MFA_REQUIRED_FOR = env("MFA_REQUIRED_FOR", "nobody" if DEVELOPMENT else "admins")
MFA_TOKEN_TTL_SECONDS = env_int("MFA_TOKEN_TTL_SECONDS", 300)  # life of the first step's mfa_token

# Passwords.
PASSWORD_PEPPER = env("PASSWORD_PEPPER", DEVELOPMENT_SECRET if DEVELOPMENT else None)  # HMAC key; not in the database
PASSWORD_OLD_PEPPERS = env_list("PASSWORD_OLD_PEPPERS")  # earlier peppers, newest first, while hashes still use them
BCRYPT_ROUNDS = env_int("BCRYPT_ROUNDS", 12)  # bcrypt cost; each +1 doubles the work
PASSWORD_MIN_LENGTH = 12  # characters after NFKC; the contract fixes both bounds
PASSWORD_MAX_LENGTH = 128

# Brute-force throttling: failures count within a window; locks double from the base delay up to the cap.
LOGIN_ACCOUNT_MAX_FAILURES = env_int("LOGIN_ACCOUNT_MAX_FAILURES", 5)  # per account (and per known address)
LOGIN_ACCOUNT_WINDOW_SECONDS = env_int("LOGIN_ACCOUNT_WINDOW_SECONDS", 900)  # a count starts over after this
LOGIN_IP_MAX_FAILURES = env_int("LOGIN_IP_MAX_FAILURES", 20)  # per IP within the window
LOGIN_IP_WINDOW_SECONDS = env_int("LOGIN_IP_WINDOW_SECONDS", 900)
KNOWN_ADDRESS_DAYS = env_int("KNOWN_ADDRESS_DAYS", 30)  # an address that logged in lately escapes the account lock
LOGIN_LOCK_BASE_SECONDS = env_int("LOGIN_LOCK_BASE_SECONDS", 30)
LOGIN_LOCK_MAX_SECONDS = env_int("LOGIN_LOCK_MAX_SECONDS", 900)

# Password recovery. The link of the mail leads to the frontend's reset page; in development
# to the API's own description of the reset call, as no page is served here.
RESET_TOKEN_TTL_SECONDS = env_int("RESET_TOKEN_TTL_SECONDS", 900)  # life of a mailed reset code
RESET_MAILS_PER_HOUR = env_int("RESET_MAILS_PER_HOUR", 3)  # per account; more requests mail nothing
PASSWORD_RESET_URL = env(  # never built from the Host header; {code} is replaced
    "PASSWORD_RESET_URL", "http://127.0.0.1:7878/openapi.json#code={code}" if DEVELOPMENT else None
)
FORGOT_IP_MAX_REQUESTS = env_int("FORGOT_IP_MAX_REQUESTS", 10)  # recovery requests per client address per window
FORGOT_LOGIN_MAX_REQUESTS = env_int("FORGOT_LOGIN_MAX_REQUESTS", 5)  # per login as typed, whoever asks
FORGOT_WINDOW_SECONDS = env_int("FORGOT_WINDOW_SECONDS", 900)

# Mail. Without SMTP_HOST (development only), mails are written to the log.
SMTP_HOST = env("SMTP_HOST")
SMTP_PORT = env_int("SMTP_PORT", 587)
SMTP_USER = env("SMTP_USER")
SMTP_PASSWORD = env("SMTP_PASSWORD")
SMTP_FROM = env("SMTP_FROM", "Eqeqo Auth <no-reply@eqeqo.local>" if DEVELOPMENT else None)
SMTP_STARTTLS = env_bool("SMTP_STARTTLS", "true")  # upgrade a plain connection with STARTTLS
SMTP_TLS = env_bool("SMTP_TLS", "false")  # implicit TLS from the first byte (SMTPS, usually port 465)
SMTP_CA_FILE = env("SMTP_CA_FILE")  # CA certificates to trust for the SMTP server; default: the system's
SMTP_TIMEOUT_SECONDS = env_float("SMTP_TIMEOUT_SECONDS", 10)

# Background jobs (jobs.py): the outbox and the periodic purge.
JOB_POLL_SECONDS = env_float("JOB_POLL_SECONDS", 1)  # how often an idle worker looks for due jobs
JOB_RETRY_BASE_SECONDS = env_float("JOB_RETRY_BASE_SECONDS", 5)  # first retry of a failed job; doubles each time
JOB_RETRY_MAX_SECONDS = env_float("JOB_RETRY_MAX_SECONDS", 3600)
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 30)  # about a day of retries at the cap, then given up
PURGE_INTERVAL_SECONDS = env_float("PURGE_INTERVAL_SECONDS", 3600)  # expired rows are deleted this often
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365)  # audit events older than this are deleted

# Logging.
LOG_LEVEL = env("LOG_LEVEL", "INFO")


def problems(cfg):
    """What keeps a service with settings `cfg` (this module's names, or an app's config) from
    starting: one sentence each, naming the variable. Production requires real secrets and
    real mail; both modes require a database URL and well-formed values."""
    found = list(PROBLEMS)
    url = cfg["DATABASE_URL"]
    if not url:
        found.append("DATABASE_URL is not set (make run and make db set it to the development server)")
    elif urlsplit(url).scheme not in {"postgresql", "postgres"} or not urlsplit(url).path.strip("/"):
        found.append("DATABASE_URL must be a URL such as postgresql://user:password@host:5432/database")
    if cfg["METRICS_BIND"] != "off" and not re.fullmatch(r"[^:\s]+:[0-9]{1,5}", cfg["METRICS_BIND"]):
        found.append(f"METRICS_BIND must be host:port (or off), not {cfg['METRICS_BIND']!r}")
    for origin in cfg["CORS_ALLOWED_ORIGINS"]:
        # A typo such as a trailing slash would otherwise fail silently in every browser.
        if not re.fullmatch(r"https?://[^/\s*]+", origin):
            found.append(f"CORS_ALLOWED_ORIGINS: {origin!r} is not an origin such as https://app.example")
    if cfg["MFA_REQUIRED_FOR"] not in {"admins", "nobody"}:
        found.append(f"MFA_REQUIRED_FOR must be admins or nobody, not {cfg['MFA_REQUIRED_FOR']!r}")
    if not cfg["MFA_ENCRYPTION_KEYS"]:
        found.append(
            "MFA_ENCRYPTION_KEYS is not set; generate one: "
            "python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
        )
    elif not all(_fernet_key(key) for key in cfg["MFA_ENCRYPTION_KEYS"]):
        found.append("MFA_ENCRYPTION_KEYS must be Fernet keys: 32 bytes each, in URL-safe base64")
    if cfg["APP_ENV"] != "production":
        return found
    for name in ("TOKEN_SECRET", "PASSWORD_PEPPER"):
        secret = cfg[name] or ""
        if not secret:
            found.append(f"{name} is not set; generate one: python3 -c 'import secrets; print(secrets.token_hex(32))'")
        elif secret == DEVELOPMENT_SECRET:
            found.append(f"{name} is the development value, which is public")
        elif len(secret.encode()) < MIN_SECRET_BYTES:
            found.append(f"{name} must be at least {MIN_SECRET_BYTES} bytes")
    if DEVELOPMENT_MFA_KEY in cfg["MFA_ENCRYPTION_KEYS"]:
        found.append("MFA_ENCRYPTION_KEYS holds the development key, which is public")
    if not cfg["SMTP_HOST"]:
        found.append("SMTP_HOST is not set: reset codes and notices must go by mail, never to the log")
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", parseaddr(cfg["SMTP_FROM"] or "")[1]):
        found.append("SMTP_FROM must be an address, such as 'Eqeqo <no-reply@example.com>'")
    if cfg["SMTP_USER"] and not cfg["SMTP_PASSWORD"]:
        found.append("SMTP_PASSWORD is not set, but SMTP_USER is")
    link = cfg["PASSWORD_RESET_URL"] or ""
    if urlsplit(link).scheme not in {"http", "https"} or "{code}" not in link:
        found.append(
            "PASSWORD_RESET_URL must be the frontend's reset page with {code} in it, such as "
            "https://app.example/reset#code={code}"
        )
    return found


def _fernet_key(text):
    try:
        return len(base64.urlsafe_b64decode(text.encode())) == 32
    except (binascii.Error, ValueError):
        return False


def check(cfg):
    """Stop the process with one line saying what is wrong, when anything is."""
    found = problems(cfg)
    if found:
        raise SystemExit(f"refusing to start ({cfg['APP_ENV']}): " + "; ".join(found))
