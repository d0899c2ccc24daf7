"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

No preload: each worker builds the app, and so opens its own pool, after the fork.
"""

import config as app_config  # "config" itself is a gunicorn setting name

bind = f"{app_config.SERVER_HOST}:{app_config.SERVER_PORT}"
workers = int(app_config.env("WEB_CONCURRENCY", "2"))  # one per core
threads = int(app_config.env("GUNICORN_THREADS", "4"))  # gthread: bcrypt waits don't stall a worker
worker_class = "gthread"
# A request waits at most DB_POOL_TIMEOUT_SECONDS for a connection, so the worker
# timeout is only for a worker that is truly stuck.
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = None  # the app logs each request itself, with a token fingerprint
errorlog = "-"
