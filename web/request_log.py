"""Logging: JSON lines for the application and one access line per request.

An access line carries time, ip, method, path, endpoint, status, duration, request id and
a token fingerprint (a short digest prefix) -- never a token, password or reset code.
"""

import logging
import re
import sys
import time
import uuid

from flask import g, request
from pythonjsonlogger.json import JsonFormatter

from security.tokens import fingerprint
from web.client_ip import client_ip
from web.guard import header_token

access_log = logging.getLogger("auth.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def configure(level):
    """Send every log record to stderr as one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(process)d %(message)s", timestamp=True))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _start():
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    # A caller's id is kept when it is plain, so logs of several services can be joined.
    g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def _finish(response):
    response.headers["X-Request-ID"] = g.get("request_id", "-")
    token = g.get("token") or header_token()
    access_log.info(
        "request",
        extra={
            "ip": client_ip(),
            "method": request.method,
            "path": request.path,
            "endpoint": request.endpoint,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
            "token_fp": fingerprint(token if isinstance(token, str) else None),
            "request_id": g.get("request_id"),
        },
    )
    return response


def init_app(app):
    """Time and log every request, and give each a request id."""
    app.before_request(_start)
    app.after_request(_finish)
