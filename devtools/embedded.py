"""The embedded PostgreSQL of development and the tests, for when no DATABASE_URL is given.

The server binaries come from the PyPI package `pgserver` (a development requirement); the
data lives under the work tree (var/pgdata by default) and the server keeps running between
commands, listening on a Unix socket only. Run as a script for the Makefile:

    python -m devtools.embedded url            print the connection URL (starting the server)
    python -m devtools.embedded psql ARGS...   run the bundled psql against it
    python -m devtools.embedded stop           stop the server
"""

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path


def _server(pgdata):
    # platformdirs warns about XDG_RUNTIME_DIR on servers; pgserver's fallback is fine.
    warnings.filterwarnings("ignore", module="platformdirs")
    # pgserver narrates every process that touches the embedded server; only its warnings matter.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    import pgserver

    Path(pgdata).parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, so gunicorn workers,
    # psql and the tests all share it.
    return pgserver.get_server(Path(pgdata), cleanup_mode=None)


def start(pgdata):
    """Start the server if it is not running (again, after `stop`); return its connection URL."""
    server = _server(pgdata)
    # get_server hands back its cached handle, which does not notice a stop.
    with server._lock:
        server.ensure_postgres_running()
    return server.get_uri()


def stop(pgdata):
    """Stop the server (fast shutdown: open sessions are disconnected)."""
    server = _server(pgdata)
    from pgserver import _commands

    _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def psql_path():
    """The psql shipped with the server binaries."""
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "psql")


def main(argv):
    """Entry point of `python -m db.embedded`."""
    import config

    command, args = (argv[0] if argv else "url"), argv[1:]
    if command == "url":
        print(config.DATABASE_URL or start(config.EMBEDDED_PGDATA))
    elif command == "psql":
        url = config.DATABASE_URL or start(config.EMBEDDED_PGDATA)
        os.execv(  # noqa: S606 (our own bundled psql, arguments from the Makefile)
            psql_path(), [psql_path(), "--no-psqlrc", "-d", url, *args]
        )
    elif command == "stop":
        if not config.DATABASE_URL:
            stop(config.EMBEDDED_PGDATA)
    else:
        sys.exit(f"unknown command {command!r}: use url, psql or stop")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except subprocess.CalledProcessError as error:
        sys.exit(f"embedded PostgreSQL failed: {error}")
