"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

No preload: each worker builds the app, and so opens its own pool, after the fork.
"""

import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from gunicorn import glogging, util

import config as app_config  # "config" itself is a gunicorn setting name

# Before anything starts: one line naming what is missing or malformed, and no server.
app_config.check(vars(app_config))

bind = f"{app_config.SERVER_HOST}:{app_config.SERVER_PORT}"
# 2 gthread workers x 4 threads, keep-alive 5 s, chosen with make bench on 2 cores shared with
# PostgreSQL and the load (16 clients, 20,000 tokens, 6 s a target in 3 rounds, one run each):
#   keep-alive clients:  2x4 gthread 2,438 check-token/s (0.49 ms worker CPU each, p99 15.2 ms);
#                        2x2 1,944/s (0.58 ms); 4x2 2,037/s (0.59 ms); sync 4x1 1,706/s (0.58 ms)
#   a new connection per request: 2x4 1,565/s (p99 22.4 ms); 4x2 1,655/s (p99 25.8 ms)
# Checked again after the later cuts (3 interleaved rounds of 4 s): 2x4 2,667/s (0.44 ms),
# 2x3 2,586/s (0.45 ms), 2x4 with 2 connections a worker instead of up to 10 2,470/s (0.52 ms).
# More processes than cores only add switching; sync workers close every connection (a
# backend's pool then reconnects each time) and a bcrypt login would stall one whole worker,
# while a thread waiting for bcrypt or PostgreSQL lets the worker's others run.
# Not reuse_port, though it balances keep-alive connections across the workers (the workers
# share one listening socket, and a burst of new connections may all go to the first to
# wake: make bench shows the spread; with reuse_port check-token gained 10 %, 2,687 -> 2,969/s):
# each worker then has a socket of its own, and one that stops keeps being handed new
# connections until it closes, which then resets them (3 reloads under 4 clients opening a
# connection per request: 0 of 29,318 failed on the shared socket, 5 of 24,257 with
# reuse_port). An auth service drops no request on a reload.
workers = app_config.WEB_CONCURRENCY
threads = app_config.GUNICORN_THREADS
worker_class = app_config.GUNICORN_WORKER_CLASS
# A request waits at most DB_POOL_TIMEOUT_SECONDS for a connection, so the worker
# timeout is only for a worker that is truly stuck.
timeout = 30
graceful_timeout = 10
keepalive = app_config.GUNICORN_KEEPALIVE_SECONDS
# The longest request line gunicorn accepts (its default is 4094): a long query string then
# reaches the app, which answers it in JSON. Anything longer gets gunicorn's own answer;
# a proxy in front should refuse it first (README, Deploying).
limit_request_line = 8190
accesslog = None  # the app logs each request itself, with a token fingerprint


class Logger(glogging.Logger):
    """gunicorn's logger without its access lines. The app writes one per request itself (with a
    token fingerprint); gunicorn would otherwise build a record of its own for every request, at
    a measured 6 % of a worker's time on /check-token, because a logging config is set."""

    def access(self, resp, req, environ, request_time):
        """Nothing: web/request_log.py logs the request."""


logger_class = Logger
errorlog = "-"
# gunicorn's control socket sits at one path per user, so every server on the machine
# (tests, make postman, make bench) would take it over; nothing here uses it.
control_socket_disable = True

# The master's and the workers' own lines as JSON objects, shaped like the app's (web/request_log.py).
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.orjson.OrjsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "timestamp": True,
        }
    },
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": app_config.LOG_LEVEL, "handlers": ["stderr"]},
    "loggers": {"gunicorn.error": {"level": app_config.LOG_LEVEL, "handlers": ["stderr"], "propagate": False}},
}

# gunicorn answers a request it cannot parse itself (a request line past the limit above, a
# doubled Content-Length, a malformed header): in the contract's JSON shape, not its HTML page.
PROTOCOL_ERRORS = {400: "bad_request", 413: "payload_too_large", 414: "uri_too_long", 431: "headers_too_large"}


def json_protocol_error(sock, status_int, reason, mesg):
    """Stands in for gunicorn.util.write_error, which the workers call for such requests."""
    body = json.dumps({"error": PROTOCOL_ERRORS.get(status_int, "bad_request"), "message": f"{reason}: {mesg}"})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nX-Request-ID: {uuid.uuid4().hex}\r\n"
        f"Content-Length: {len(body) + 1}\r\n\r\n"
    )
    util.write_nonblock(sock, (head + body + "\n").encode())


util.write_error = json_protocol_error

_format_http_date = util.http_date
_last_date = (0, "")


def http_date(timestamp=None):
    """Stands in for gunicorn.util.http_date: the Date header of every response, formatted once a
    second instead of once a response (2.7 % of a worker's time on /check-token). Threads that
    race on the cache both store a right answer."""
    global _last_date
    if timestamp is not None:
        return _format_http_date(timestamp)
    second = int(time.time())
    if _last_date[0] != second:
        _last_date = (second, _format_http_date(second))
    return _last_date[1]


util.http_date = http_date

# Prometheus multiprocess mode: every worker writes its metrics to files in one directory,
# and /metrics adds them up (web/metrics.py).
METRICS_DIR_PREFIX = "eqeqo-auth-metrics-"


def on_starting(server):
    """Give this run a fresh metrics directory before any worker exists.

    An operator's PROMETHEUS_MULTIPROC_DIR is emptied of an earlier run's files, which
    would otherwise be added in; without one, a temporary directory is made (and removed
    at exit). Set here, before the fork and before prometheus_client is imported anywhere,
    the variable reaches every worker.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX)


def when_ready(server):
    """Serve every worker's metrics, added up, on METRICS_BIND: a port of its own, so that
    whoever reaches the API cannot read its counters, and a scrape costs the API nothing."""
    if app_config.METRICS_BIND == "off":
        return
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    host, port = app_config.METRICS_BIND.rsplit(":", 1)
    start_http_server(int(port), addr=host, registry=registry)
    server.log.info("metrics on http://%s/metrics", app_config.METRICS_BIND)


def post_worker_init(worker):
    """Start this worker's background jobs (jobs.py: the outbox and the purge)."""
    import jobs  # here, in the worker: the master never loads the app's modules

    jobs.start(worker.wsgi)


def worker_exit(server, worker):
    """Let the background jobs finish the one at hand, then close the worker's connections."""
    app = getattr(worker, "wsgi", None)  # none when the worker died loading it, or in the master
    if app is None:
        return
    import jobs

    jobs.stop(app)
    app.extensions["db_pool"].close()


def child_exit(server, worker):
    """Drop a dead worker's live gauges; its counters stay, so totals never go backwards."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory on_starting made (an operator's own is left alone)."""
    directory = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""))
    if directory.name.startswith(METRICS_DIR_PREFIX):
        shutil.rmtree(directory, ignore_errors=True)
