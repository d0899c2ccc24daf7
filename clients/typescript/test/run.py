"""`make test-js` and `make test-browser`: `node --test` against servers of their own.

Serves the demo data from a throwaway database (devtools.local_gunicorn.demo_server), with CORS open
to the origin the login page is to be served from, and the example stock backend
(clients/python/examples/stock_api.py) protected by it. Then runs `node --test` on every *.test.js in the
folder given, in clients/typescript, with this in the environment:

    AUTH_BASE_URL    the auth service
    AUTH_SERVER_LOG  its log, where the development mails (reset codes) are written
    STOCK_URL        the stock backend; it lets the page's origin call it too
    PAGE_ORIGIN      where to serve the login page (http://127.0.0.1:<port>)
    SCREENSHOT_DIR   where the browser test saves its screenshot (var/)

Stops both servers and removes the database however the tests end; exits with node's status.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from devtools import local_gunicorn  # noqa: E402 (after the path is set)


@contextlib.contextmanager
def stock_backend(auth_url, page_origin, log_path):
    """The SDK's example stock backend on a spare port, asking `auth_url`; yields its URL."""
    port = local_gunicorn.free_port()
    env = {**os.environ, "AUTH_BASE_URL": auth_url, "PORT": str(port), "CORS_ALLOWED_ORIGINS": page_origin}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "clients/python/examples/stock_api.py"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/stock/items", process, log_path)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def wait_until_answering(url, process, log_path, timeout=20):
    """Return once `url` answers at all (a 401 will do); RuntimeError with the log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (our own http URL)
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer:\n{log_path.read_text()[-4000:]}")


def main(folder):
    """Serve, run node --test on the folder's *.test.js, clean up; node's exit status."""
    node = shutil.which("node")
    if node is None:
        print("these tests need Node.js 20 or newer (node on the PATH)", file=sys.stderr)
        return 1
    tests = sorted(str(path.relative_to(HERE)) for path in (HERE / folder).glob("*.test.js"))
    if not tests:  # node --test without files would run whatever it finds
        print(f"no *.test.js in {HERE / folder}", file=sys.stderr)
        return 1
    page_origin = f"http://127.0.0.1:{local_gunicorn.free_port()}"
    settings = {
        "CORS_ALLOWED_ORIGINS": page_origin,
        # Every test calls from 127.0.0.1; the per-account lock stays as in production.
        "LOGIN_IP_MAX_FAILURES": "100000",
    }
    with tempfile.TemporaryDirectory(prefix="stock-") as scratch:
        try:
            with (
                local_gunicorn.demo_server(settings) as server,
                stock_backend(server.url, page_origin, Path(scratch) / "stock.log") as stock_url,
            ):
                env = {
                    **os.environ,
                    "AUTH_BASE_URL": server.url,
                    "AUTH_SERVER_LOG": str(server.log_path),
                    "STOCK_URL": stock_url,
                    "PAGE_ORIGIN": page_origin,
                    "SCREENSHOT_DIR": str(ROOT / "var"),
                }
                status = subprocess.run([node, "--test", *tests], cwd=HERE, env=env, check=False).returncode
                if status:
                    print("the auth service's last log lines:", *server.log().splitlines()[-20:], sep="\n")
                return status
        except RuntimeError as error:
            print(f"a server did not start: {error}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
