"""One token under a burst of parallel checks on a real gunicorn: no errors, at most one renewal
write per threshold window, and a logout that no concurrent renewal can undo."""

import hashlib
import itertools
import threading
import time
import uuid

import httpx
import pytest

import config
from tests.fixtures import DEMO, db_rows

THREADS, PER_THREAD = 32, 20
# The live server runs with the configured lifetimes; a row aged by twice the threshold is
# due for renewal and still well alive.
TTL, DUE = config.TOKEN_TTL_SECONDS, 2 * config.TOKEN_RENEW_THRESHOLD_SECONDS


class Live:
    """The live server and its database, with a user of this test's own (the data is shared)."""

    def __init__(self, server, database_url):
        self.url, self.database_url = server.url, database_url

    def login(self, username, password):
        response = httpx.post(f"{self.url}/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def new_clerk(self):
        """A fresh user with role clerk in stock; returns (user id, token)."""
        admin = {"token": self.login("admin", DEMO["admin"])}
        username, password = f"burst-{uuid.uuid4().hex[:12]}", "correct-horse-battery-9"
        created = httpx.post(f"{self.url}/users", json={"username": username, "password": password}, headers=admin)
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        clerk = db_rows(self.database_url, "select id from auth.roles where name = 'clerk'")[0]["id"]
        granted = httpx.post(
            f"{self.url}/person-service-roles",
            json={"user_id": user_id, "service_id": "stock", "role_id": clerk},
            headers=admin,
        )
        assert granted.status_code == 201, granted.text
        return user_id, self.login(username, password)

    def row(self, token):
        found = db_rows(
            self.database_url,
            "select modified_at, extract(epoch from modified_at)::float8 as modified_epoch, xmin::text as xmin"
            " from auth.tokens_cache where token_hash = %s",
            [hashlib.sha256(token.encode()).digest()],
        )
        return found[0] if found else None

    def age(self, token, seconds):
        db_rows(
            self.database_url,
            "update auth.tokens_cache set modified_at = now() - make_interval(secs => %s) where token_hash = %s",
            [seconds, hashlib.sha256(token.encode()).digest()],
        )


@pytest.fixture
def live(live_server, postgres):
    return Live(live_server, postgres.url("auth_live"))


def burst(live, send, per_thread=PER_THREAD, on_response=None):
    """THREADS threads, each with its own open connection, released together, each sending
    `per_thread` requests; returns (start time, status, body) of every request."""
    results, lock = [], threading.Lock()
    start = threading.Barrier(THREADS, timeout=30)

    def worker():
        with httpx.Client(timeout=10) as http:
            # Connected before the barrier, so the first requests really arrive together.
            http.get(f"{live.url}/healthz")
            start.wait()
            for _ in range(per_thread):
                began = time.monotonic()
                response = send(http)
                with lock:
                    results.append((began, response.status_code, response.json()))
                    if on_response:
                        on_response(len(results))

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == THREADS * per_thread
    return results


def check(live, token, user_id):
    return lambda http: http.post(
        f"{live.url}/check-token", json={"token": token, "service_id": "stock", "user_id": user_id}
    )


def test_parallel_checks_of_one_token_all_succeed_without_writing(live):
    user_id, token = live.new_clerk()
    before = live.row(token)

    results = burst(live, check(live, token, user_id))

    assert {status for _, status, _ in results} == {200}
    assert all(body["valid"] and body["payload"]["user_id"] == user_id for _, _, body in results)
    # The token is fresh, so no check may write: the row version is the one login wrote.
    assert sum(body["renewed"] for _, _, body in results) == 0
    assert live.row(token)["xmin"] == before["xmin"]


@pytest.mark.parametrize("window", range(4))
def test_a_burst_on_a_token_due_for_renewal_renews_it_exactly_once(live, window):
    """Each window is a fresh race for the one renewal write; several make a lost race likely to show."""
    user_id, token = live.new_clerk()
    live.age(token, DUE)
    aged = live.row(token)

    results = burst(live, check(live, token, user_id), per_thread=5)

    assert {status for _, status, _ in results} == {200}
    renewals = [body for _, _, body in results if body["renewed"]]
    assert len(renewals) == 1
    after = live.row(token)
    assert after["modified_at"] > aged["modified_at"]
    # The one renewal reported is the write that is in the row now.
    assert renewals[0]["expires_at"] == int(after["modified_epoch"] + TTL)


def test_a_renewal_never_brings_a_logged_out_token_back(live):
    user_id, token = live.new_clerk()
    logged_out_at = []
    enough = threading.Event()
    calls = itertools.count()

    def send(http):
        # Half the threads' calls renew through /check-token, half through /auth/profile.
        if next(calls) % 2:
            return check(live, token, user_id)(http)
        return http.get(f"{live.url}/auth/profile", headers={"token": token})

    def logout_when_busy():
        # Keep the row due for renewal, so checks are renewing it while the logout lands.
        while not enough.wait(0.01):
            live.age(token, DUE)
        response = httpx.post(f"{live.url}/auth/logout", headers={"token": token})
        assert response.status_code == 200
        logged_out_at.append(time.monotonic())

    logout = threading.Thread(target=logout_when_busy)
    logout.start()
    results = burst(live, send, on_response=lambda count: count >= THREADS * 3 and enough.set())
    logout.join(10)

    assert logged_out_at, "the logout did not happen"
    assert {status for _, status, _ in results} <= {200, 401}
    assert any(body.get("renewed") for _, _, body in results), "no renewal raced the logout"
    after_logout = [(status, body) for began, status, body in results if began > logged_out_at[0]]
    assert len(after_logout) >= THREADS
    assert all(status == 401 for status, _ in after_logout)
    assert live.row(token) is None
    assert httpx.post(f"{live.url}/check-token", json={"token": token, "service_id": "stock"}).status_code == 401
