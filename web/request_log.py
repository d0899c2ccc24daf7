"""Logging: JSON lines for the application and one access line per request.

An access line carries time, ip, method, path, endpoint, status, duration, request id and
a token fingerprint (a short digest prefix) -- never a token, password or reset code.

Access lines have the shape of every other line (`configure` below) but skip the logging
machinery: each is one orjson call into a buffer that reaches stderr in writes of whole
lines, at most PIPE_BUF bytes each unless one line alone is longer (so they never interleave
with another process's lines on a pipe, which writes that short cannot), and at most a second
old, as nginx's `access_log ... buffer= flush=` does.
Through logging, with a write per line, the access line cost 0.08 ms of the 0.45 ms a
check-token request costs a worker (README, Performance). The level of the `auth.access`
logger still decides whether they are written. A worker killed outright loses at most the
last second of its lines; one that stops as asked writes them at exit.
"""

import atexit
import datetime
import itertools
import logging
import os
import re
import secrets
import select
import sys
import threading
import time

import orjson
from flask import g, request
from pythonjsonlogger.orjson import OrjsonFormatter

from security.tokens import fingerprint
from web.client_ip import client_ip
from web.guard import header_token

access_log = logging.getLogger("auth.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# A new request id is this process's random prefix and a count: unique without a random draw
# (a system call) per request. It identifies a request in the logs; it guards nothing. Both,
# and the process id of the access lines, are this process's own (`_own_process`).


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
    g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else f"{_process_prefix}{next(_count):016x}"


class LineBuffer:
    """Whole lines for a file descriptor, written when the next would pass PIPE_BUF bytes, or by
    a thread of this process at most `delay` seconds after they came."""

    def __init__(self, fd=2, delay=1.0):
        self.fd, self.delay = fd, delay
        self._after_fork()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self):
        # A child starts empty (its parent writes what it had buffered), with a lock of its own
        # (another thread may have held the parent's at the fork) and no flusher (threads do
        # not survive a fork).
        self.lock = threading.Lock()
        self.lines, self.size = [], 0
        self.flushing = False

    def add(self, line):
        with self.lock:
            if self.size + len(line) > select.PIPE_BUF:
                self._write()
            self.lines.append(line)
            self.size += len(line)
            if self.flushing:
                return
            self.flushing = True
        try:
            threading.Thread(target=self._flush_every_delay, name="access-log-flusher", daemon=True).start()
        except RuntimeError:  # no thread to be had now: the next line tries again, the request goes on
            with self.lock:
                self.flushing = False

    def flush(self):
        """Write what is buffered now."""
        with self.lock:
            self._write()

    def redirect(self, fd):
        """Write what is buffered, then send later lines to `fd`; returns the fd they went to."""
        with self.lock:
            self._write()
            previous, self.fd = self.fd, fd
        return previous

    def _write(self):
        data = b"".join(self.lines)
        self.lines, self.size = [], 0
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:
            pass  # stderr is gone (a closed pipe): the lines are lost, as logging would lose them

    def _flush_every_delay(self):
        while True:
            time.sleep(self.delay)
            self.flush()


ACCESS_LINES = LineBuffer()
atexit.register(ACCESS_LINES.flush)


def _own_process():
    """This process's id (os.getpid() is a system call each time it is asked) and a request-id
    prefix and count of its own: drawn again in a forked child, or two gunicorn workers forked
    from a master that had imported this module would hand out the same ids."""
    global _pid, _process_prefix, _count
    _pid = os.getpid()
    _process_prefix = secrets.token_hex(8)
    _count = itertools.count()


_own_process()
os.register_at_fork(after_in_child=_own_process)
_clock = (None, "", "")  # (second, its local asctime, its UTC ISO timestamp), formatted once a second


def _times(now):
    """`asctime` and `timestamp` as the other lines' formatter writes them, for `now`."""
    global _clock
    second, micros = divmod(round(now * 1_000_000), 1_000_000)
    if _clock[0] != second:
        utc = datetime.datetime.fromtimestamp(second, datetime.UTC)
        _clock = (second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second)), utc.isoformat()[:19])
    return f"{_clock[1]},{micros // 1000:03d}", f"{_clock[2]}.{micros:06d}+00:00"


def finish(environ, method, path, endpoint, status):
    """Write the request's access line."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    token = g.get("token") or header_token(environ)
    asctime, timestamp = _times(time.time())
    line = {
        "asctime": asctime,
        "levelname": "INFO",
        "name": access_log.name,
        "process": _pid,
        "message": "request",
        "ip": client_ip(environ),
        "method": method,
        "path": path,
        "endpoint": endpoint,
        "status": status,
        "duration_ms": round((time.perf_counter() - g.started) * 1000, 2),
        "token_fp": fingerprint(token if isinstance(token, str) else None),
        "request_id": g.request_id,
        "timestamp": timestamp,
    }
    ACCESS_LINES.add(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))


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
