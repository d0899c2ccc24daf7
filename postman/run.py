"""`make postman`: run the Postman collection with newman against a server of its own.

Starts a throwaway embedded PostgreSQL (var/pgpostman-*) with the schema and the demo
data, serves it with gunicorn on a spare port, runs newman, then stops both and removes
the data folder. The developer's server (port 7878, var/pgdata) is never touched.
Exits with newman's status.
"""

import contextlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config  # noqa: E402 (after the path is set)
import local_gunicorn  # noqa: E402
from db import embedded  # noqa: E402

HERE = ROOT / "postman"
NEWMAN = HERE / "node_modules" / ".bin" / "newman"
COLLECTION = HERE / "eqeqo-auth.postman_collection.json"
ENVIRONMENT = HERE / "local.postman_environment.json"


def load_demo(url):
    """The schema and the demo data, as `make db` applies them."""
    for script in ("sql/run_all.sql", "sql/demo_seed.sql"):
        subprocess.run(
            [embedded.psql_path(), "--no-psqlrc", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-d", url, "-f", script],
            cwd=ROOT,
            check=True,
        )


def server_environment(url):
    """The demo server's settings: this run's database, and nothing from `.env` that matters."""
    return {
        "DATABASE_URL": url,
        # The demo users' hashes were made with the development pepper.
        "PASSWORD_PEPPER": config.DEVELOPMENT_SECRET,
        "TOKEN_SECRET": config.DEVELOPMENT_SECRET,
        # No mail leaves this machine: the reset mail is written to the server's log.
        "SMTP_HOST": "",
        "WEB_CONCURRENCY": "2",
    }


def main():
    """Serve, run newman, clean up; newman's exit status."""
    pgdata = Path(tempfile.mkdtemp(prefix="pgpostman-", dir=ROOT / "var"))
    log_path = pgdata.with_suffix(".log")
    server = None
    try:
        url = embedded.start(pgdata)
        load_demo(url)
        try:
            server = local_gunicorn.start(server_environment(url), log_path)
        except RuntimeError as error:
            print(f"the demo server did not start: {error}", file=sys.stderr)
            return 1
        base_url = server.url
        newman = [str(NEWMAN), "run", str(COLLECTION), "-e", str(ENVIRONMENT), "--env-var", f"baseUrl={base_url}"]
        status = subprocess.run([*newman, "--no-insecure-file-read"], check=False).returncode
        if status:
            tail = log_path.read_text().splitlines()[-40:]
            print("the server's last log lines:", *tail, sep="\n", file=sys.stderr)
        return status
    finally:
        if server is not None:
            server.stop()
        with contextlib.suppress(subprocess.CalledProcessError):  # it never started
            embedded.stop(pgdata)
        shutil.rmtree(pgdata, ignore_errors=True)
        log_path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
