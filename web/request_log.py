"""Logging: JSON lines for the application and one access line per request.

An access line carries time, ip, method, path, endpoint, status, duration, request id and
a token fingerprint (a short digest prefix) -- never a token, password or reset code.
"""

import itertools
import logging
import re
import secrets
import sys
import time

from flask import g, request
from pythonjsonlogger.orjson import OrjsonFormatter

from security.tokens import fingerprint
from web.client_ip import client_ip
from web.guard import header_token

access_log = logging.getLogger("auth.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# A new request id is this process's random prefix and a count: unique without a random draw
# (a system call) per request. It identifies a request in the logs; it guards nothing.
_PROCESS_PREFIX = secrets.token_hex(8)
_COUNT = itertools.count()


def configure(level):
    """Send every log record to stderr as one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OrjsonFormatter("%(asctime)s %(levelname)s %(name)s %(process)d %(message)s", timestamp=True))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # What no line shows, and a record would otherwise look up for every request (the caller's
    # frame, the thread): the logging HOWTO's own advice for a logger on a hot path.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False


def start(environ):
    """Start timing the request of `environ`, and give it an id."""
    g.started = time.perf_counter()
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    # A caller's id is kept when it is plain, so logs of several services can be joined.
    g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else f"{_PROCESS_PREFIX}{next(_COUNT):016x}"


def finish(environ, method, path, endpoint, status):
    """Write the request's access line."""
    if access_log.isEnabledFor(logging.INFO):
        token = g.get("token") or header_token(environ)
        access_log.info(
            "request",
            extra={
                "ip": client_ip(environ),
                "method": method,
                "path": path,
                "endpoint": endpoint,
                "status": status,
                "duration_ms": round((time.perf_counter() - g.started) * 1000, 2),
                "token_fp": fingerprint(token if isinstance(token, str) else None),
                "request_id": g.request_id,
            },
        )


def _start():
    start(request.environ)


def _finish(response):
    response.headers["X-Request-ID"] = g.request_id
    req = request._get_current_object()  # one look through the proxy instead of one a field
    finish(req.environ, req.method, req.path, req.endpoint, response.status_code)
    return response


def init_app(app):
    """Time and log every request, and give each a request id."""
    app.before_request(_start)
    app.after_request(_finish)
