"""Prometheus metrics: counters that move with requests in the app, served by gunicorn's master
on a listener of its own (METRICS_BIND), never on the API's port, with totals that add up
across the workers of a real gunicorn (multiprocess mode)."""

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests import fixtures
from tests.fixtures import DEMO, db_rows, start_gunicorn, stop_gunicorn
from web import metrics

# Test servers leave the control socket of the developer's gunicorn alone.
GUNICORN_ENV = {"WEB_CONCURRENCY": "2"}


def value(text, name, **labels):
    """The value of one sample in a Prometheus text page; 0 when the series is absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0


def scrape(client):
    """The process's own registry, as the metrics listener would show it."""
    metrics.sample_pool(client.application.extensions["db_pool"])
    return generate_latest(REGISTRY).decode()


def test_the_api_port_serves_no_metrics(client):
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_the_metrics_listener_speaks_prometheus_text(live_server):
    response = httpx.get(live_server.metrics_url)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "auth_http_requests",
        "auth_http_request_duration_seconds",
        "auth_check_token",
        "auth_token_renewals",
        "auth_logins",
        "auth_db_pool_connections",
        "auth_db_pool_max_connections",
    } <= names


def test_requests_count_by_route_pattern_and_status(app, client, api):
    user_route = next(rule.rule for rule in app.url_map.iter_rules() if rule.endpoint == "users.get_user")
    before = scrape(client)
    headers = api.headers()
    assert client.get("/healthz").status_code == 200
    assert client.get("/users/2", headers=headers).status_code == 200
    assert client.get("/users/999999", headers=headers).status_code == 404
    assert client.get("/no/such/path").status_code == 404
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("auth_http_requests_total", method="GET", endpoint="/healthz", status="200") == 1
    # The pattern, never the id: one series per route, whatever ids are asked for.
    assert delta("auth_http_requests_total", method="GET", endpoint=user_route, status="200") == 1
    assert delta("auth_http_requests_total", method="GET", endpoint=user_route, status="404") == 1
    assert delta("auth_http_requests_total", method="GET", endpoint="unmatched", status="404") == 1
    assert "/users/2" not in after and "/no/such/path" not in after
    assert delta("auth_http_request_duration_seconds_count", method="GET", endpoint="/healthz") == 1
    assert delta("auth_http_request_duration_seconds_sum", method="GET", endpoint="/healthz") > 0


@pytest.mark.parametrize(
    ("user", "service", "result", "status"),
    [
        ("alice", "stock", "valid", 200),
        ("alice", "manufacturing", "forbidden", 403),
        (None, "stock", "dead", 401),
    ],
)
def test_check_token_results_are_counted(client, api, user, service, result, status):
    token = api.login(user) if user else "0" * 64
    before = scrape(client)
    response = client.post("/check-token", json={"token": token, "service_id": service})
    assert response.status_code == status
    after = scrape(client)
    for other in ("valid", "dead", "forbidden"):
        expected = 1 if other == result else 0
        delta = value(after, "auth_check_token_total", result=other) - value(
            before, "auth_check_token_total", result=other
        )
        assert delta == expected, other


def test_a_bad_check_token_request_is_no_result(client):
    before = scrape(client)
    assert client.post("/check-token", json={"service_id": "stock"}).status_code == 400
    after = scrape(client)
    for result in ("valid", "dead", "forbidden"):
        assert value(after, "auth_check_token_total", result=result) == value(
            before, "auth_check_token_total", result=result
        )


def test_renewals_are_counted_only_when_a_token_is_renewed(client, api, test_database):
    token = api.login("alice")
    before = scrape(client)
    fresh = client.post("/check-token", json={"token": token, "service_id": "stock"}).get_json()
    assert fresh["renewed"] is False
    assert value(scrape(client), "auth_token_renewals_total") == value(before, "auth_token_renewals_total")

    # Older than the renewal threshold: the next use renews, by check-token, profile or an admin call.
    admin = api.login("admin")
    for use in (
        lambda: client.post("/check-token", json={"token": token, "service_id": "stock"}),
        lambda: client.get("/auth/profile", headers={"token": token}),
        lambda: client.get("/services", headers={"token": admin}),
    ):
        db_rows(test_database, "update auth.tokens_cache set modified_at = now() - interval '60 seconds'")
        before = scrape(client)
        response = use()
        assert response.status_code == 200
        assert value(scrape(client), "auth_token_renewals_total") == value(before, "auth_token_renewals_total") + 1


def test_login_successes_failures_and_locks_are_counted(client, api):
    api.create_user("metrics-user", password="correct-horse-battery-9")
    before = scrape(client)
    assert (
        client.post("/auth/login", json={"username": "metrics-user", "password": "correct-horse-battery-9"}).status_code
        == 200
    )
    for _ in range(5):
        assert (
            client.post("/auth/login", json={"username": "metrics-user", "password": "wrong-password-1"}).status_code
            == 401
        )
    # The account is locked now: even the right password gets 429.
    assert (
        client.post("/auth/login", json={"username": "metrics-user", "password": "correct-horse-battery-9"}).status_code
        == 429
    )
    assert client.post("/auth/login", json={"username": "metrics-user"}).status_code == 400
    after = scrape(client)

    def delta(result):
        return value(after, "auth_logins_total", result=result) - value(before, "auth_logins_total", result=result)

    assert (delta("success"), delta("failure"), delta("locked")) == (1, 5, 1)


def test_recovery_requests_count_as_queued_or_throttled(app_factory):
    client = app_factory(FORGOT_LOGIN_MAX_REQUESTS=2).test_client()
    before = scrape(client)
    for _ in range(3):
        client.post("/auth/password/forgot", json={"username": "alice"})
    after = scrape(client)

    def delta(result):
        return value(after, "auth_password_recoveries_total", result=result) - value(
            before, "auth_password_recoveries_total", result=result
        )

    assert (delta("queued"), delta("throttled")) == (2, 1)


def test_pool_gauges_show_this_apps_pool(app_factory):
    app = app_factory(DB_POOL_MIN_SIZE=2, DB_POOL_MAX_SIZE=7)
    text = scrape(app.test_client())
    assert value(text, "auth_db_pool_max_connections") == 7
    assert value(text, "auth_db_pool_connections") >= 2
    assert 0 <= value(text, "auth_db_pool_idle_connections") <= value(text, "auth_db_pool_connections")
    assert value(text, "auth_db_pool_waiting_requests") == 0


# --- a real gunicorn with 2 workers --------------------------------------------------------


@pytest.fixture(scope="module")
def metrics_database(postgres):
    return postgres.create_database("auth_metrics")


def log_lines(server):
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


def served_by(server, path):
    """The worker pids that answered `path`, from the server's JSON access lines."""
    return {line["process"] for line in log_lines(server) if line["name"] == "auth.access" and line["path"] == path}


def worker_pids(server):
    """Every worker pid the master booted, in order."""
    return [
        int(line["message"].rsplit(" ", 1)[1])
        for line in log_lines(server)
        if line["message"].startswith("Booting worker")
    ]


# Without keep-alive every request is a new connection, which either worker may accept.
FRESH_CONNECTIONS = httpx.Limits(max_keepalive_connections=0)


def hit(url, times):
    """`times` requests at once, each on its own connection, so both workers take some."""
    with httpx.Client(limits=FRESH_CONNECTIONS, timeout=5) as http, ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: http.get(url).status_code, range(times)))
    assert statuses == [200] * times


def scrape_live(server):
    response = httpx.get(server.metrics_url, timeout=5)
    assert response.status_code == 200
    return response.text


def test_totals_add_up_across_workers(metrics_database, mailbox, tmp_path):
    settings = {**fixtures.test_settings(metrics_database, mailbox), "DB_POOL_MAX_SIZE": 3}
    server = start_gunicorn(settings, tmp_path, GUNICORN_ENV)
    try:
        sent = 0
        for _ in range(20):
            hit(f"{server.url}/healthz", 20)
            sent += 20
            if len(served_by(server, "/healthz")) == 2:
                break
        assert len(served_by(server, "/healthz")) == 2, "one worker answered every request"

        # The master's listener reports every worker's counts.
        text = scrape_live(server)
        assert value(text, "auth_http_requests_total", method="GET", endpoint="/healthz", status="200") == sent
        assert value(text, "auth_http_request_duration_seconds_count", method="GET", endpoint="/healthz") == sent
        assert value(text, "auth_db_pool_max_connections") == 2 * 3
        assert httpx.get(f"{server.url}/metrics").status_code == 404

        # A worker dies: its counts stay, its live gauges go (child_exit), its successor adds its own.
        dead = worker_pids(server)[0]
        os.kill(dead, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(worker_pids(server)) < 3:
            time.sleep(0.1)
        successor = worker_pids(server)[2]
        while time.monotonic() < deadline and successor not in served_by(server, "/healthz"):
            hit(f"{server.url}/healthz", 8)
            sent += 8
        assert successor in served_by(server, "/healthz")
        text = scrape_live(server)
        assert value(text, "auth_http_requests_total", method="GET", endpoint="/healthz", status="200") == sent
        assert value(text, "auth_db_pool_max_connections") == 2 * 3
    finally:
        stop_gunicorn(server)


def test_metrics_start_from_zero_in_a_reused_directory(metrics_database, mailbox, tmp_path):
    directory = tmp_path / "metrics"
    settings = fixtures.test_settings(metrics_database, mailbox)
    env = {**GUNICORN_ENV, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for run in ("first", "second"):
        (tmp_path / run).mkdir()
        server = start_gunicorn(settings, tmp_path / run, env)
        try:
            hit(f"{server.url}/healthz", 3)
            text = scrape_live(server)
            # The second run does not add the first run's files to its counts.
            assert value(text, "auth_http_requests_total", method="GET", endpoint="/healthz", status="200") == 3
        finally:
            stop_gunicorn(server)
    # The operator's directory is kept (emptied at the next start, not removed).
    assert directory.is_dir()


def test_login_counts_on_a_live_server(live_server):
    before = scrape_live(live_server)
    response = httpx.post(f"{live_server.url}/auth/login", json={"username": "bob", "password": DEMO["bob"]})
    assert response.status_code == 200
    after = scrape_live(live_server)
    assert (
        value(after, "auth_logins_total", result="success") == value(before, "auth_logins_total", result="success") + 1
    )
