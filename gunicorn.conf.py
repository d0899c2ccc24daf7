"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

No preload: each worker builds the app, and so opens its own pool, after the fork.
"""

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
accesslog = None  # the app logs each request itself, with a token fingerprint
errorlog = "-"
