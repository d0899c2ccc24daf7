"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

No preload: each worker builds the app, and so opens its own pool, after the fork.
"""

import os
import shutil
import tempfile
from pathlib import Path

import config as app_config  # "config" itself is a gunicorn setting name

bind = f"{app_config.SERVER_HOST}:{app_config.SERVER_PORT}"
workers = app_config.WEB_CONCURRENCY
threads = app_config.GUNICORN_THREADS
worker_class = "gthread"
# A request waits at most DB_POOL_TIMEOUT_SECONDS for a connection, so the worker
# timeout is only for a worker that is truly stuck.
timeout = 30
graceful_timeout = 10
keepalive = 5
# The longest request line gunicorn accepts (its default is 4094): a long query string then
# reaches the app, which answers it in JSON. Anything longer gets gunicorn's own answer;
# a proxy in front should refuse it first (README, Deploying).
limit_request_line = 8190
accesslog = None  # the app logs each request itself, with a token fingerprint
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
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "timestamp": True,
        }
    },
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": app_config.LOG_LEVEL, "handlers": ["stderr"]},
    "loggers": {"gunicorn.error": {"level": app_config.LOG_LEVEL, "handlers": ["stderr"], "propagate": False}},
}

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


def post_worker_init(worker):
    """Start this worker's background jobs (jobs.py: the outbox and the purge)."""
    import jobs  # here, in the worker: the master never loads the app's modules

    jobs.start(worker.wsgi)


def worker_exit(server, worker):
    """Let the background jobs finish the one at hand."""
    import jobs

    jobs.stop(worker.wsgi)


def child_exit(server, worker):
    """Drop a dead worker's live gauges; its counters stay, so totals never go backwards."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory on_starting made (an operator's own is left alone)."""
    directory = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""))
    if directory.name.startswith(METRICS_DIR_PREFIX):
        shutil.rmtree(directory, ignore_errors=True)
