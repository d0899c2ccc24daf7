"""Data access: the connection pool, opened once per gunicorn worker after the fork."""

import logging
from contextlib import contextmanager

import psycopg
from flask import current_app
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    """The database did not answer in time; rendered as 503 service_unavailable."""


def init_app(app):
    """Create and open the pool for this process, and close it when the process exits."""
    cfg = app.config
    pool = ConnectionPool(
        cfg["DATABASE_URL"],
        open=False,
        min_size=cfg["DB_POOL_MIN_SIZE"],
        max_size=cfg["DB_POOL_MAX_SIZE"],
        timeout=cfg["DB_POOL_TIMEOUT_SECONDS"],
        # Bounded, so a dead database answers 503 fast instead of queueing workers.
        max_waiting=cfg["DB_POOL_MAX_SIZE"] * 4,
        # Short: after an outage the next request starts a fresh attempt instead of waiting
        # out a long backoff, so the service recovers as soon as the database is back.
        reconnect_timeout=cfg["DB_POOL_TIMEOUT_SECONDS"] * 2,
        check=refuse_hung_up,
        kwargs={
            "row_factory": dict_row,
            # One statement is its own transaction: no BEGIN/COMMIT round trips on the hot path.
            "autocommit": True,
            "connect_timeout": cfg["DB_CONNECT_TIMEOUT_SECONDS"],
            # UTC, so timestamps serialize as the contract's ISO 8601 UTC strings.
            "options": f"-c statement_timeout={cfg['DB_STATEMENT_TIMEOUT_MS']} -c timezone=UTC",
        },
        name="auth",
    )
    # Not waiting: the app starts even while the database is down, and says 503 until it is back.
    pool.open(wait=False)
    app.extensions["db_pool"] = pool


def refuse_hung_up(conn):
    """The pool's check at every checkout: refuse a connection the server has hung up on.

    After a database restart every pooled connection is dead, and the first request to use
    one would fail with 503. This reads only what the socket already holds, so the hot path
    keeps its one round trip: the first read takes the server's goodbye, the second meets the
    closed socket and raises. The pool then drops the connection, the sweep drops its stale
    siblings, and the request is served on a fresh connection.
    """
    try:
        conn.pgconn.consume_input()
        conn.pgconn.consume_input()
    except psycopg.OperationalError:
        _pool().check()
        raise


def connection():
    """A pooled connection in autocommit mode, for handlers that run one statement.

    A connection is not probed with a query before use, to keep the hot path at one round
    trip; one that breaks anyway fails its request with 503, is discarded by the pool, and
    `handle_outage` then drops the other stale ones at once.
    """
    return _pool().connection()


@contextmanager
def transaction():
    """A pooled connection inside a transaction: committed on success, rolled back on error."""
    with _pool().connection() as conn, conn.transaction():
        yield conn


def _pool():
    return current_app.extensions["db_pool"]


def handle_outage(error):
    """Turn a pool timeout or a lost connection into DatabaseUnavailable, after a sweep."""
    log.warning("database unavailable: %s", type(error).__name__)
    if isinstance(error, psycopg.OperationalError):
        _pool().check()
    raise DatabaseUnavailable() from error


OUTAGE_ERRORS = (PoolTimeout, psycopg.OperationalError)
