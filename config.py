"""The one reader of the environment: every knob of the service, with its unit and default.

Values come from the process environment, after a `.env` file in the project folder
(python-dotenv) has filled in what the environment leaves unset.
"""

import os
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".env")


def env(name, default=None):
    """Read one variable; an empty value counts as unset so `.env` lines can stay blank."""
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_bool(name, default):
    """Read a yes/no variable (1/true/yes/on)."""
    return env(name, default).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    """Read a comma-separated list."""
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# Used only by development and tests; anything else must set its own secrets.
DEVELOPMENT_SECRET = "development-only-do-not-use-in-production"  # noqa: S105 (announced at start)

# Database. Unset: the project starts its own embedded PostgreSQL under var/pgdata.
DATABASE_URL = env("DATABASE_URL")
EMBEDDED_PGDATA = Path(env("EMBEDDED_PGDATA", str(BASE_DIR / "var" / "pgdata")))
DB_POOL_MIN_SIZE = int(env("DB_POOL_MIN_SIZE", "2"))  # connections kept open per worker
DB_POOL_MAX_SIZE = int(env("DB_POOL_MAX_SIZE", "10"))  # per worker; 2 workers x 10 < PostgreSQL's 100
DB_POOL_TIMEOUT_SECONDS = float(env("DB_POOL_TIMEOUT_SECONDS", "1.5"))  # wait for a connection, then 503 (< 2 s)
DB_CONNECT_TIMEOUT_SECONDS = int(env("DB_CONNECT_TIMEOUT_SECONDS", "1"))  # a dead host must fail fast
DB_STATEMENT_TIMEOUT_MS = int(env("DB_STATEMENT_TIMEOUT_MS", "5000"))  # no request holds a connection longer

# HTTP server.
SERVER_HOST = env("SERVER_HOST", "127.0.0.1")
SERVER_PORT = int(env("SERVER_PORT", "7878"))
WEB_CONCURRENCY = int(env("WEB_CONCURRENCY", "2"))  # gunicorn workers; one per core
GUNICORN_THREADS = int(env("GUNICORN_THREADS", "4"))  # threads per worker, so bcrypt waits don't stall it
MAX_BODY_BYTES = int(env("MAX_BODY_BYTES", "65536"))  # larger bodies get 413; no request needs more
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")  # peers whose X-Forwarded-For is believed; default none
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")  # exact web-page origins (scheme://host:port); default none

# Tokens. A token is valid while now < modified_at + TTL and now < created_at + max lifetime.
TOKEN_TTL_SECONDS = int(env("TOKEN_TTL_SECONDS", "300"))  # sliding lifetime; seed: 2-5 min
TOKEN_RENEW_THRESHOLD_SECONDS = int(env("TOKEN_RENEW_THRESHOLD_SECONDS", "30"))  # at most one renewal write per window
TOKEN_MAX_LIFETIME_SECONDS = int(env("TOKEN_MAX_LIFETIME_SECONDS", "43200"))  # absolute cap, 12 h, however busy
TOKEN_SECRET = env("TOKEN_SECRET", DEVELOPMENT_SECRET)  # the "secret" of hash(secret + random + timestamp)
TOKEN_PURGE_BATCH = int(env("TOKEN_PURGE_BATCH", "1000"))  # dead rows deleted per purge statement
MAX_SESSIONS_PER_USER = int(env("MAX_SESSIONS_PER_USER", "20"))  # live tokens a user may hold; oldest go first

# Passwords.
PASSWORD_PEPPER = env("PASSWORD_PEPPER", DEVELOPMENT_SECRET)  # HMAC key of the pre-hash; not in the database
PASSWORD_OLD_PEPPERS = env_list("PASSWORD_OLD_PEPPERS")  # earlier peppers, newest first, while hashes still use them
BCRYPT_ROUNDS = int(env("BCRYPT_ROUNDS", "12"))  # bcrypt cost; each +1 doubles the work
PASSWORD_MIN_LENGTH = 12  # characters after NFKC; the contract fixes both bounds
PASSWORD_MAX_LENGTH = 128

# Brute-force throttling: failures count within a window; locks double from the base delay up to the cap.
LOGIN_ACCOUNT_MAX_FAILURES = int(env("LOGIN_ACCOUNT_MAX_FAILURES", "5"))  # per account (and per known address)
LOGIN_ACCOUNT_WINDOW_SECONDS = int(env("LOGIN_ACCOUNT_WINDOW_SECONDS", "900"))  # a count starts over after this
LOGIN_IP_MAX_FAILURES = int(env("LOGIN_IP_MAX_FAILURES", "20"))  # per IP within the window
LOGIN_IP_WINDOW_SECONDS = int(env("LOGIN_IP_WINDOW_SECONDS", "900"))
KNOWN_ADDRESS_DAYS = int(env("KNOWN_ADDRESS_DAYS", "30"))  # an address that logged in lately escapes the account lock
LOGIN_LOCK_BASE_SECONDS = int(env("LOGIN_LOCK_BASE_SECONDS", "30"))
LOGIN_LOCK_MAX_SECONDS = int(env("LOGIN_LOCK_MAX_SECONDS", "900"))

# Password recovery.
RESET_TOKEN_TTL_SECONDS = int(env("RESET_TOKEN_TTL_SECONDS", "900"))  # life of a mailed reset code
RESET_MAILS_PER_HOUR = int(env("RESET_MAILS_PER_HOUR", "3"))  # per account; more requests mail nothing
PASSWORD_RESET_URL = env("PASSWORD_RESET_URL", "http://127.0.0.1:7878/reset#code={code}")  # never the Host header
FORGOT_IP_MAX_REQUESTS = int(env("FORGOT_IP_MAX_REQUESTS", "10"))  # recovery requests per client address per window
FORGOT_LOGIN_MAX_REQUESTS = int(env("FORGOT_LOGIN_MAX_REQUESTS", "5"))  # per login as typed, whoever asks
FORGOT_WINDOW_SECONDS = int(env("FORGOT_WINDOW_SECONDS", "900"))

# Mail. Without SMTP_HOST, mails are written to the log (development only).
SMTP_HOST = env("SMTP_HOST")
SMTP_PORT = int(env("SMTP_PORT", "587"))
SMTP_USER = env("SMTP_USER")
SMTP_PASSWORD = env("SMTP_PASSWORD")
SMTP_FROM = env("SMTP_FROM", "Eqeqo Auth <no-reply@eqeqo.local>")
SMTP_STARTTLS = env_bool("SMTP_STARTTLS", "true")  # upgrade a plain connection with STARTTLS
SMTP_TLS = env_bool("SMTP_TLS", "false")  # implicit TLS from the first byte (SMTPS, usually port 465)
SMTP_CA_FILE = env("SMTP_CA_FILE")  # CA certificates to trust for the SMTP server; default: the system's
SMTP_TIMEOUT_SECONDS = float(env("SMTP_TIMEOUT_SECONDS", "10"))

# Background jobs (jobs.py): the outbox and the periodic purge.
JOB_POLL_SECONDS = float(env("JOB_POLL_SECONDS", "1"))  # how often an idle worker looks for due jobs
JOB_RETRY_BASE_SECONDS = float(env("JOB_RETRY_BASE_SECONDS", "5"))  # first retry of a failed job; doubles each time
JOB_RETRY_MAX_SECONDS = float(env("JOB_RETRY_MAX_SECONDS", "3600"))
JOB_MAX_ATTEMPTS = int(env("JOB_MAX_ATTEMPTS", "30"))  # about a day of retries at the cap, then given up
PURGE_INTERVAL_SECONDS = float(env("PURGE_INTERVAL_SECONDS", "3600"))  # expired rows are deleted this often
AUDIT_RETENTION_DAYS = int(env("AUDIT_RETENTION_DAYS", "365"))  # audit events older than this are deleted

# Logging.
LOG_LEVEL = env("LOG_LEVEL", "INFO")
