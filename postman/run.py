"""`make postman`: run the Postman collection with newman against a server of its own.

Starts a throwaway embedded PostgreSQL (var/pgpostman-*) with the schema and the demo
data, serves it with gunicorn on a spare port, runs newman, then stops both and removes
the data folder. The developer's server (port 7878, var/pgdata) is never touched.
Exits with newman's status.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config  # noqa: E402 (after the path is set)
from db import embedded  # noqa: E402

HERE = ROOT / "postman"
NEWMAN = HERE / "node_modules" / ".bin" / "newman"
COLLECTION = HERE / "eqeqo-auth.postman_collection.json"
ENVIRONMENT = HERE / "local.postman_environment.json"
START_SECONDS = 30


def spare_port():
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_demo(url):
    """The schema and the demo data, as `make db` applies them."""
    for script in ("sql/run_all.sql", "sql/demo_seed.sql"):
        subprocess.run(
            [embedded.psql_path(), "--no-psqlrc", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-d", url, "-f", script],
            cwd=ROOT,
            check=True,
        )


def server_environment(url, port):
    """The environment of the demo server: this run's database and port, nothing from `.env` that matters."""
    return {
        **os.environ,
        "DATABASE_URL": url,
        "SERVER_HOST": "127.0.0.1",
        "SERVER_PORT": str(port),
        # The demo users' hashes were made with the development pepper.
        "PASSWORD_PEPPER": config.DEVELOPMENT_SECRET,
        "TOKEN_SECRET": config.DEVELOPMENT_SECRET,
        # No mail leaves this machine: the reset mail is written to the server's log.
        "SMTP_HOST": "",
        "WEB_CONCURRENCY": "2",
    }


def wait_until_ready(base_url, server):
    """Poll /readyz until the server answers 200; False if it died or took too long."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=1) as response:  # noqa: S310 (our own http URL)
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    return False


def main():
    """Serve, run newman, clean up; newman's exit status."""
    pgdata = Path(tempfile.mkdtemp(prefix="pgpostman-", dir=ROOT / "var"))
    log_path = pgdata.with_suffix(".log")
    server = None
    try:
        url = embedded.start(pgdata)
        load_demo(url)
        port = spare_port()
        base_url = f"http://127.0.0.1:{port}"
        with log_path.open("w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=server_environment(url, port),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not wait_until_ready(base_url, server):
            print(f"the demo server did not start; its log:\n{log_path.read_text()}", file=sys.stderr)
            return 1
        newman = [str(NEWMAN), "run", str(COLLECTION), "-e", str(ENVIRONMENT), "--env-var", f"baseUrl={base_url}"]
        status = subprocess.run([*newman, "--no-insecure-file-read"], check=False).returncode
        if status:
            tail = log_path.read_text().splitlines()[-40:]
            print("the server's last log lines:", *tail, sep="\n", file=sys.stderr)
        return status
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        with contextlib.suppress(subprocess.CalledProcessError):  # it never started
            embedded.stop(pgdata)
        shutil.rmtree(pgdata, ignore_errors=True)
        log_path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
