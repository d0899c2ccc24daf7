"""The schema, as migrations: sql/migrations/NNNN.<name>.sql, applied in order by yoyo-migrations.

`upgrade` applies the pending ones, each in its own transaction, under a PostgreSQL
advisory lock, so several instances starting at once apply each migration exactly once:
the others wait, then find nothing left to do. Yoyo records what it applied in its own
tables (_yoyo_migration and others, in schema public).

The first migration is the schema of the first release, written to be safe on a database
that release built, so such a database is taken over as it is and brought up to date.
"""

import logging
from contextlib import contextmanager
from pathlib import Path

import psycopg
from yoyo import get_backend, read_migrations

MIGRATIONS = Path(__file__).resolve().parent.parent / "sql" / "migrations"
# yoyo narrates every step at INFO; upgrade says itself what it applied.
logging.getLogger("yoyo").setLevel(logging.WARNING)
# Any fixed number: the key of the advisory lock that upgrades take in this database.
LOCK_KEY = 7878_0001


@contextmanager
def _backend(url):
    # yoyo picks its driver by the scheme; the rest of the URL is psycopg's as it is.
    backend = get_backend("postgresql+psycopg://" + url.split("://", 1)[1])
    try:
        yield backend
    finally:
        backend.connection.close()


def pending(url):
    """The ids of the migrations not applied yet, in the order they would be."""
    with _backend(url) as backend:
        return [migration.id for migration in backend.to_apply(read_migrations(str(MIGRATIONS)))]


def upgrade(url):
    """Apply every pending migration; returns their ids (none when the schema is up to date)."""
    with psycopg.connect(url, autocommit=True) as lock, _backend(url) as backend:
        lock.execute("select pg_advisory_lock(%s)", [LOCK_KEY])
        # Only the holder of the advisory lock migrates, so a yoyo lock left by a process that
        # died mid-upgrade is stale, and would otherwise stop every later upgrade.
        backend.break_lock()
        with backend.lock():
            todo = backend.to_apply(read_migrations(str(MIGRATIONS)))
            backend.apply_migrations(todo)
        return [migration.id for migration in todo]
