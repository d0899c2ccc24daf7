"""The demo data (sql/demo_seed.sql): users, services, roles and permissions the README uses.

    python -m devtools.demo seed     load it into the database (make db)
    python -m devtools.demo reset    build the schema again and load it, ids included (make demo-reset)

Both act on DATABASE_URL, and only with DEMO=1, which the Makefile sets for the embedded
development server: demo users' passwords are published, so they never reach another
database by accident. A reset ends every session of a server that is serving the database
(`make run`), which reconnects by itself.
"""

import sys

import psycopg

import config
from db import migrate

SEED = config.BASE_DIR / "sql" / "demo_seed.sql"


def seed(url):
    """Load the demo data; running it again changes nothing."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED.read_text())


def reset(url):
    """Drop the schema and yoyo's bookkeeping, migrate from scratch, load the demo data, and
    end the other sessions, whose prepared statements name the dropped tables."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop schema if exists auth cascade")
        for table in ("_yoyo_log", "_yoyo_migration", "_yoyo_version", "yoyo_lock"):
            conn.execute(f"drop table if exists public.{table}")
    migrate.upgrade(url)
    seed(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid()"
        )


def main(argv):
    """Entry point of `python -m devtools.demo`."""
    command = argv[0] if argv else ""
    if command not in {"seed", "reset"}:
        sys.exit("usage: python -m devtools.demo seed|reset")
    if not config.DATABASE_URL:
        sys.exit("DATABASE_URL is not set")
    if not config.DEMO:
        print(
            f"not loading the demo data into {config.DATABASE_URL.rsplit('@', 1)[-1]}: it is not the embedded "
            "development database (set DEMO=1 to load it there anyway)"
        )
        return
    (seed if command == "seed" else reset)(config.DATABASE_URL)
    print("demo data loaded" if command == "seed" else "demo data restored")


if __name__ == "__main__":
    main(sys.argv[1:])
