"""Prometheus metrics: requests, latency, token checks, logins, recoveries and the pool.

Under gunicorn each worker writes its numbers to files in PROMETHEUS_MULTIPROC_DIR
(gunicorn.conf.py makes the directory fresh at start), and the master serves their sum on
its own listener, METRICS_BIND, never on the API's port. Without that variable (tests,
`flask run`) the process keeps its own registry. A request costs a few counter increments;
the pool's stats are copied into the gauges at most once a second.
"""

import time

from flask import current_app, g, request
from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("auth_http_requests", "HTTP requests by method, route and status.", ["method", "endpoint", "status"])
LATENCY = Histogram(
    "auth_http_request_duration_seconds",
    "Time from the request's start to its response, by method and route.",
    ["method", "endpoint"],
    # Fine below 100 ms where /check-token lives; 2 s is the outage bound of the contract.
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
CHECK_TOKEN = Counter("auth_check_token", "POST /check-token answers: valid, dead (401), forbidden (403).", ["result"])
RENEWALS = Counter("auth_token_renewals", "Tokens whose sliding lifetime was renewed by a use.")
LOGINS = Counter("auth_logins", "POST /auth/login answers: success, failure (401) or locked (429).", ["result"])
RECOVERIES = Counter(
    "auth_password_recoveries", "POST /auth/password/forgot answers: queued, or throttled (429).", ["result"]
)
# Summed over the live workers: the connections this server holds against PostgreSQL.
POOL = {
    stat: Gauge(f"auth_db_pool_{name}", text, multiprocess_mode="livesum")
    for stat, name, text in (
        ("pool_size", "connections", "Open connections to the database, in use or idle."),
        ("pool_available", "idle_connections", "Open connections waiting in the pool for a request."),
        ("pool_max", "max_connections", "The most connections the pools may open."),
        ("requests_waiting", "waiting_requests", "Requests queued for a connection right now."),
        ("requests_errors", "request_errors", "Requests that got no connection in time, since the workers started."),
    )
}
POOL_SAMPLE_SECONDS = 1.0

# What the status of an answer means, for the endpoints counted by outcome.
OUTCOMES = {
    "tokens.check_token": (CHECK_TOKEN, {200: "valid", 401: "dead", 403: "forbidden"}),
    "auth.login": (LOGINS, {200: "success", 401: "failure", 429: "locked"}),
    "passwords.forgot": (RECOVERIES, {202: "queued", 429: "throttled"}),
}

for _counter, _results in OUTCOMES.values():
    for _result in _results.values():
        _counter.labels(_result)  # every series exists from the start, at 0

_pool_sampled_at = 0.0


def sample_pool(pool):
    """Copy the pool's current stats into the gauges."""
    global _pool_sampled_at
    _pool_sampled_at = time.monotonic()
    stats = pool.get_stats()
    for stat, gauge in POOL.items():
        gauge.set(stats.get(stat, 0))


def _series(metric, *labels):
    """The labelled child of `metric`, looked up once: a label lookup costs more than the count."""
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


_children = {}


def count(method, route, endpoint, status):
    """Count one answered request: `route` is its URL rule (not the path: ids in paths would make
    a series per user), `endpoint` the view's name."""
    _series(REQUESTS, method, route, str(status)).inc()
    _series(LATENCY, method, route).observe(time.perf_counter() - g.started)
    outcome = OUTCOMES.get(endpoint)
    if outcome and status in outcome[1]:
        _series(outcome[0], outcome[1][status]).inc()
    if g.get("renewed"):  # set by every view that validated a token (web/guard.py and others)
        RENEWALS.inc()
    if time.monotonic() - _pool_sampled_at >= POOL_SAMPLE_SECONDS:
        sample_pool(current_app.extensions["db_pool"])


def _count(response):
    req = request._get_current_object()  # one look through the proxy instead of one a field
    rule = req.url_rule
    count(req.method, rule.rule if rule else "unmatched", req.endpoint, response.status_code)
    return response


def init_app(app):
    """Count every request."""
    app.after_request(_count)
    sample_pool(app.extensions["db_pool"])
