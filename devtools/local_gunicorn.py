"""A gunicorn of this project on a spare loopback port, for the tests, make bench and make postman.

It runs `gunicorn -c gunicorn.conf.py wsgi:app` exactly as production does, with the
given environment on top of this process's, and is ready once /readyz answers 200.
`demo_server()` adds a throwaway embedded PostgreSQL with the demo data, for the runners
of make postman, make test-js and make test-browser.
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

import config
from db import migrate
from devtools import demo, embedded

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A started gunicorn: its base URL, its metrics URL, its master process, and its captured output."""

    def __init__(self, url, metrics_url, process, log_path):
        self.url, self.metrics_url, self.process, self.log_path = url, metrics_url, process, Path(log_path)

    def log(self):
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self):
        """Stop gracefully, or kill after 15 s."""
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def ready(url):
    """Whether /readyz answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:  # noqa: S310 (our own http URL)
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def start(env, log_path, timeout=30):
    """Start gunicorn with `env` (strings) on spare ports (the API's and the metrics'); RuntimeError
    with its log if it fails."""
    port, metrics_port = free_port(), free_port()
    ports = {"SERVER_HOST": "127.0.0.1", "SERVER_PORT": str(port), "METRICS_BIND": f"127.0.0.1:{metrics_port}"}
    with Path(log_path).open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env={**os.environ, **env, **ports},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics", process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if ready(server.url):
            return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"gunicorn did not start:\n{server.log()[-4000:]}")


def load_demo(url):
    """The schema and the demo data, as `make db` applies them."""
    migrate.upgrade(url)
    demo.seed(url)


def demo_environment(url):
    """The demo server's settings: its own database, and nothing from `.env` that matters."""
    return {
        "APP_ENV": "development",
        "DATABASE_URL": url,
        # The demo users' hashes were made with the development pepper.
        "PASSWORD_PEPPER": config.DEVELOPMENT_SECRET,
        "TOKEN_SECRET": config.DEVELOPMENT_SECRET,
        # No mail leaves this machine: each mail, reset codes included, is written to the log.
        "SMTP_HOST": "",
        "CORS_ALLOWED_ORIGINS": "",
        "WEB_CONCURRENCY": "2",
    }


@contextlib.contextmanager
def demo_server(env=None):
    """Serve the demo data from a throwaway embedded PostgreSQL (var/pgdemo-*), `env` on top.

    Yields the started Server; stops it and the database and removes both the data folder
    and the log when the block ends, however it ends. The developer's server (port 7878,
    var/pgdata) is never touched. RuntimeError, with the log, when gunicorn does not start.
    """
    (ROOT / "var").mkdir(exist_ok=True)
    pgdata = Path(tempfile.mkdtemp(prefix="pgdemo-", dir=ROOT / "var"))
    log_path = pgdata.with_suffix(".log")
    server = None
    try:
        url = embedded.start(pgdata)
        load_demo(url)
        server = start({**demo_environment(url), **(env or {})}, log_path)
        yield server
    finally:
        if server is not None:
            server.stop()
        with contextlib.suppress(subprocess.CalledProcessError):  # it never started
            embedded.stop(pgdata)
        shutil.rmtree(pgdata, ignore_errors=True)
        log_path.unlink(missing_ok=True)
