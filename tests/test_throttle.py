"""Brute-force throttling (web/throttle.py): per account and per IP within a window, doubling
locks capped at 15 minutes, addresses that logged in before kept out of the account-wide lock,
at most the limit of parallel guesses answered, concurrent right passwords never refused,
trusted proxies, outages never counted, unknown users timed like known ones, and
administrators lifting a lock."""

import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from security import passwords
from tests import fixtures
from tests.fixtures import DEMO, Api, db_rows, start_gunicorn, stop_gunicorn

PASSWORD = "correct-horse-battery-9"
WRONG = "definitely-not-the-password"
CLIENT_IP = "192.0.2.10"


def login(client, username, password=PASSWORD, ip=CLIENT_IP, headers=None):
    """One login attempt from `ip` (the socket peer the app sees)."""
    return client.post(
        "/auth/login",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": ip},
        headers=headers or {},
    )


def fail(client, username, times, ip=CLIENT_IP, headers=None):
    """`times` wrong passwords, each answered 401."""
    for _ in range(times):
        response = login(client, username, WRONG, ip, headers)
        assert response.status_code == 401, response.get_json()


def counter(url, key):
    """The throttle row of `key` (failures, locked_until), or None."""
    rows = db_rows(url, "select failures, locked_until from auth.login_failures where key = %s", [key])
    return rows[0] if rows else None


def expire_locks(url):
    """Age every lock into the past instead of sleeping it out."""
    db_rows(url, "update auth.login_failures set locked_until = now() - interval '1 second' where locked_until > now()")


def assert_throttled(response, longest, shortest=None):
    """429 too_many_attempts with a Retry-After in [shortest, longest] seconds."""
    assert response.status_code == 429, response.get_json()
    assert response.get_json()["error"] == "too_many_attempts"
    retry_after = int(response.headers["Retry-After"])
    # A second may pass between the lock and the refusal.
    assert (shortest or longest - 2) <= retry_after <= longest
    return retry_after


@pytest.fixture
def user(api):
    """A user with a known password at the test cost, so each attempt is quick."""
    return api.create_user("dora", password=PASSWORD, email=f"dora-{uuid.uuid4().hex[:10]}@example.com")


# --- per account ------------------------------------------------------------------------


def test_five_failures_lock_the_account_even_against_the_right_password(client, test_database, user):
    fail(client, "dora", 5)

    assert_throttled(login(client, "dora"), 30)
    assert counter(test_database, f"user:{user['id']}")["failures"] == 5
    # Only that account: another one from the same IP logs in.
    assert login(client, "alice", DEMO["alice"]).status_code == 200


def test_four_failures_do_not_lock(client, user):
    fail(client, "dora", 4)
    assert login(client, "dora").status_code == 200


def test_the_lock_doubles_with_each_further_failure_up_to_15_minutes(client, test_database, user):
    fail(client, "dora", 5)
    assert_throttled(login(client, "dora"), 30)
    for expected in (60, 120, 240, 480, 900, 900):
        expire_locks(test_database)
        fail(client, "dora", 1)
        assert_throttled(login(client, "dora"), expected)


def test_an_expired_lock_lets_the_right_password_in_and_a_success_resets_the_count(client, test_database, user):
    fail(client, "dora", 5)
    assert_throttled(login(client, "dora"), 30)
    expire_locks(test_database)

    assert login(client, "dora").status_code == 200
    assert counter(test_database, f"user:{user['id']}")["failures"] == 0
    # Counting starts over: four more failures lock nothing.
    fail(client, "dora", 4)
    assert login(client, "dora").status_code == 200


def test_a_success_resets_the_account_count(client, user):
    fail(client, "dora", 4)
    assert login(client, "dora").status_code == 200
    # Without the reset, the first of these would have been the fifth failure in a row.
    fail(client, "dora", 4)
    assert login(client, "dora").status_code == 200


def test_failures_from_any_ip_add_up_on_the_account(client, user):
    for n in range(5):
        fail(client, "dora", 1, ip=f"198.51.100.{n + 1}")
    assert_throttled(login(client, "dora", ip="198.51.100.99"), 30)


def test_a_lock_does_not_reveal_whether_the_account_exists(client, test_database):
    fail(client, "nobody-by-this-name", 5)
    response = login(client, "nobody-by-this-name")
    assert_throttled(response, 30)
    assert counter(test_database, "login:nobody-by-this-name")["failures"] == 5


def test_disabled_users_are_counted_too(client, test_database):
    fail(client, "carol", 5)
    assert_throttled(login(client, "carol", DEMO["carol"]), 30)


def test_failures_older_than_the_window_no_longer_count(client, test_database, user):
    fail(client, "dora", 4)
    db_rows(
        test_database,
        "update auth.login_failures set last_failure_at = now() - interval '901 seconds' where key = %s",
        [f"user:{user['id']}"],
    )
    fail(client, "dora", 4)
    assert counter(test_database, f"user:{user['id']}")["failures"] == 4
    assert login(client, "dora").status_code == 200


# --- the owner's addresses --------------------------------------------------------------

OWNER_IP, ATTACKER_IP = "198.51.100.7", "203.0.113.66"


def test_a_guesser_cannot_lock_the_owner_out_of_an_address_that_logged_in_before(client, test_database, user):
    assert login(client, "dora", ip=OWNER_IP).status_code == 200
    fail(client, "dora", 5, ip=ATTACKER_IP)

    # New addresses meet the account-wide lock, the right password included...
    assert_throttled(login(client, "dora", ip=ATTACKER_IP), 30)
    assert_throttled(login(client, "dora", ip="192.0.2.99"), 30)
    # ...the owner's address does not, and its success leaves the account-wide count alone.
    assert login(client, "dora", ip=OWNER_IP).status_code == 200
    assert counter(test_database, f"user:{user['id']}")["failures"] == 5


def test_a_known_address_has_its_own_limit(client, test_database, user):
    assert login(client, "dora", ip=OWNER_IP).status_code == 200
    fail(client, "dora", 5, ip=OWNER_IP)

    assert_throttled(login(client, "dora", ip=OWNER_IP), 30)
    assert counter(test_database, f"user:{user['id']}@{OWNER_IP}")["failures"] == 5
    # Its failures are its own: another address is not locked out by them.
    assert counter(test_database, f"user:{user['id']}") is None
    assert login(client, "dora", ip="192.0.2.99").status_code == 200


def test_an_address_is_known_for_30_days(client, test_database, user):
    assert login(client, "dora", ip=OWNER_IP).status_code == 200
    db_rows(test_database, "update auth.login_addresses set last_login_at = now() - interval '31 days'")
    fail(client, "dora", 5, ip=ATTACKER_IP)
    assert_throttled(login(client, "dora", ip=OWNER_IP), 30)


def test_the_owner_is_mailed_once_when_the_account_locks(client, mailbox, user):
    fail(client, "dora", 5, ip=ATTACKER_IP)

    notice = mailbox.wait_for(user["email"])
    assert "paused" in notice["Subject"]
    assert ATTACKER_IP in notice.get_content()
    assert PASSWORD not in notice.get_content()
    # A further failure after the lock doubles it, and mails nothing more.
    expire_locks_of(client, user)
    fail(client, "dora", 1, ip=ATTACKER_IP)
    time.sleep(0.5)
    assert len(mailbox.to(user["email"])) == 1


def expire_locks_of(client, user):
    db_rows(client.application.config["DATABASE_URL"], "update auth.login_failures set locked_until = null")


# --- per IP -----------------------------------------------------------------------------


def spread_failures(client, total, ip):
    """`total` failures from `ip`, four per made-up name, so that no account locks."""
    for n in range(total):
        fail(client, f"guess-{n // 4}", 1, ip=ip)


def test_twenty_failures_from_one_ip_lock_that_ip(client, test_database, user):
    spread_failures(client, 20, "203.0.113.7")

    assert_throttled(login(client, "dora", ip="203.0.113.7"), 30)
    assert counter(test_database, "ip:203.0.113.7")["failures"] == 20
    # Neither the account nor other addresses are touched.
    assert login(client, "dora", ip="203.0.113.8").status_code == 200


def test_nineteen_failures_from_one_ip_do_not_lock_it(client, user):
    spread_failures(client, 19, "203.0.113.7")
    assert login(client, "dora", ip="203.0.113.7").status_code == 200


def test_the_ip_lock_doubles_like_the_account_lock(client, test_database, user):
    spread_failures(client, 20, "203.0.113.7")
    expire_locks(test_database)
    fail(client, "another-guess", 1, ip="203.0.113.7")
    assert_throttled(login(client, "dora", ip="203.0.113.7"), 60)


def test_a_success_does_not_reset_the_ip_count(client, test_database, user):
    # Otherwise one good account would let an IP guess at every other one.
    spread_failures(client, 19, "203.0.113.7")
    assert login(client, "dora", ip="203.0.113.7").status_code == 200
    fail(client, "another-guess", 1, ip="203.0.113.7")
    assert_throttled(login(client, "dora", ip="203.0.113.7"), 30)


def test_the_ip_count_starts_over_after_15_minutes_without_failures(client, test_database, user):
    spread_failures(client, 19, "203.0.113.7")
    db_rows(
        test_database,
        "update auth.login_failures set last_failure_at = now() - interval '901 seconds' where key = %s",
        ["ip:203.0.113.7"],
    )
    fail(client, "another-guess", 1, ip="203.0.113.7")
    assert counter(test_database, "ip:203.0.113.7")["failures"] == 1
    assert login(client, "dora", ip="203.0.113.7").status_code == 200


# --- trusted proxies --------------------------------------------------------------------

PROXY = "10.0.0.1"


@pytest.fixture
def proxied(app_factory):
    """The app behind one trusted proxy."""
    return app_factory(TRUSTED_PROXIES=[PROXY]).test_client()


def test_a_trusted_proxy_passes_on_the_client_ip(proxied, test_database):
    fail(proxied, "someone", 1, ip=PROXY, headers={"X-Forwarded-For": "203.0.113.50"})
    assert counter(test_database, "ip:203.0.113.50")["failures"] == 1
    assert counter(test_database, f"ip:{PROXY}") is None


def test_behind_a_trusted_proxy_one_client_is_locked_not_the_proxy(proxied):
    for n in range(20):
        fail(proxied, f"guess-{n // 4}", 1, ip=PROXY, headers={"X-Forwarded-For": "203.0.113.50"})

    locked = login(proxied, "alice", DEMO["alice"], ip=PROXY, headers={"X-Forwarded-For": "203.0.113.50"})
    assert_throttled(locked, 30)
    other = login(proxied, "alice", DEMO["alice"], ip=PROXY, headers={"X-Forwarded-For": "203.0.113.51"})
    assert other.status_code == 200


@pytest.mark.parametrize("peer", ["10.0.0.2", "192.0.2.200"])
def test_forwarded_for_from_an_untrusted_peer_is_ignored(proxied, client, test_database, peer):
    # Rotating the header does not spread an attacker's failures over made-up addresses.
    for n in range(20):
        fail(proxied, f"guess-{n // 4}", 1, ip=peer, headers={"X-Forwarded-For": f"203.0.113.{n}"})
    assert counter(test_database, f"ip:{peer}")["failures"] == 20
    assert_throttled(login(proxied, "alice", DEMO["alice"], ip=peer, headers={"X-Forwarded-For": "203.0.113.99"}), 30)


def test_without_trusted_proxies_forwarded_for_is_ignored(client, test_database):
    fail(client, "someone", 1, ip=PROXY, headers={"X-Forwarded-For": "203.0.113.50"})
    assert counter(test_database, f"ip:{PROXY}")["failures"] == 1
    assert counter(test_database, "ip:203.0.113.50") is None


# --- a database outage never counts -----------------------------------------------------


def wait_until_ready(client):
    """Poll /readyz until the app reaches the database again (the pool reconnects by itself)."""
    deadline = time.monotonic() + 15
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the app did not reconnect"
        time.sleep(0.2)


@pytest.mark.parametrize("password", [PASSWORD, WRONG], ids=["right-password", "wrong-password"])
def test_an_outage_during_the_password_check_is_not_counted(client, test_database, outage, user, monkeypatch, password):
    fail(client, "dora", 2)
    key = f"user:{user['id']}"
    real_check = passwords.verify_password

    def check_while_the_database_stops(*args):
        outage.begin()
        return real_check(*args)

    monkeypatch.setattr(passwords, "verify_password", check_while_the_database_stops)
    response = login(client, "dora", password)
    monkeypatch.undo()

    assert response.status_code == 503
    assert response.get_json()["error"] == "service_unavailable"
    outage.end()
    wait_until_ready(client)
    assert counter(test_database, key)["failures"] == 2
    assert counter(test_database, f"ip:{CLIENT_IP}")["failures"] == 2
    # Two earlier failures plus the unfinished attempt still leave room for the right password.
    assert login(client, "dora").status_code == 200


def test_an_outage_before_the_login_is_not_counted(client, test_database, outage, user):
    fail(client, "dora", 4)
    outage.begin()
    response = login(client, "dora", WRONG)
    assert response.status_code == 503
    outage.end()
    wait_until_ready(client)

    assert counter(test_database, f"user:{user['id']}")["failures"] == 4
    assert login(client, "dora").status_code == 200


# --- a locked account, and administrators ------------------------------------------------


def test_a_locked_account_can_still_reset_its_password(client, mailbox, user):
    fail(client, "dora", 5)
    assert_throttled(login(client, "dora"), 30)

    assert client.post("/auth/password/forgot", json={"username": "dora"}).status_code == 202
    text = mailbox.wait_for(user["email"], subject="Reset your Eqeqo password").get_content()
    code = text.split("#code=")[1].split()[0]
    reset = client.post("/auth/password/reset", json={"code": code, "password": "a-brand-new-passphrase"})
    assert reset.status_code == 200
    # The reset lifts the lock: the new password works at once.
    assert login(client, "dora", "a-brand-new-passphrase").status_code == 200


def test_an_administrator_lifts_a_lock(client, api, test_database, user):
    fail(client, "dora", 5)
    assert_throttled(login(client, "dora"), 30)

    response = client.delete(f"/users/{user['id']}/lock", headers=api.headers())
    assert response.status_code == 204
    assert counter(test_database, f"user:{user['id']}") is None
    assert login(client, "dora").status_code == 200


def test_lifting_the_lock_of_an_unlocked_account_is_fine(client, api, user):
    assert client.delete(f"/users/{user['id']}/lock", headers=api.headers()).status_code == 204


@pytest.mark.parametrize(
    ("who", "status", "error"),
    [(None, 401, "missing_token"), ("alice", 403, "forbidden"), ("bob", 403, "forbidden")],
)
def test_only_user_writers_lift_locks(client, api, test_database, user, who, status, error):
    fail(client, "dora", 5)
    headers = api.headers(who) if who else {}
    response = client.delete(f"/users/{user['id']}/lock", headers=headers)
    assert response.status_code == status
    assert response.get_json()["error"] == error
    assert counter(test_database, f"user:{user['id']}")["failures"] == 5


def test_lifting_the_lock_of_an_unknown_user_is_404(client, api):
    response = client.delete("/users/999999/lock", headers=api.headers())
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


# --- timing -----------------------------------------------------------------------------

TIMING_ROUNDS = 8  # bcrypt cost high enough that the hash dominates the request
SAMPLES = 25


def test_unknown_and_disabled_users_cost_what_the_stored_hashes_cost(app_factory, test_database):
    # The hashes were made at TIMING_ROUNDS and BCRYPT_ROUNDS was lowered since: a made-up user
    # must still cost what the stored hashes do, not what the setting says.
    creator = Api(app_factory(BCRYPT_ROUNDS=TIMING_ROUNDS).test_client())
    creator.create_user("timed", password=PASSWORD)
    creator.create_user("timed-off", password=PASSWORD)
    db_rows(test_database, "update auth.users set active = false where username = 'timed-off'")
    db_rows(
        test_database,
        "update auth.users set password_hash = (select password_hash from auth.users where username = 'timed')"
        " where username not like 'timed%%'",
    )
    hashes = db_rows(test_database, "select password_hash from auth.users")
    assert all(row["password_hash"].startswith(f"$2b$0{TIMING_ROUNDS}$") for row in hashes)
    timing_client = app_factory(
        BCRYPT_ROUNDS=4, LOGIN_ACCOUNT_MAX_FAILURES=10_000, LOGIN_IP_MAX_FAILURES=10_000
    ).test_client()

    cases = {
        "wrong password": ("timed", WRONG),
        "unknown user": ("no-such-user", WRONG),
        "disabled": ("timed-off", PASSWORD),
    }
    durations = {case: [] for case in cases}
    for _ in range(SAMPLES):
        # Interleaved, so a slow moment of the machine hits every case alike.
        for case, (username, password) in cases.items():
            started = time.perf_counter()
            response = login(timing_client, username, password)
            durations[case].append(time.perf_counter() - started)
            assert response.status_code == 401

    reference = statistics.median(durations["wrong password"])
    for case in ("unknown user", "disabled"):
        median = statistics.median(durations[case])
        assert abs(median - reference) <= 0.2 * reference, {k: statistics.median(v) for k, v in durations.items()}


# --- parallel guesses, against a real gunicorn ------------------------------------------


@pytest.fixture(scope="module")
def throttle_server(postgres, mailbox, tmp_path_factory):
    """A gunicorn (2 workers x 4 threads) with the production limits; it believes
    X-Forwarded-For from 127.0.0.1, so each test can act as a client IP of its own."""
    url = postgres.create_database("auth_throttle")
    settings = {**fixtures.test_settings(url, mailbox), "TRUSTED_PROXIES": "127.0.0.1"}
    server = start_gunicorn(settings, tmp_path_factory.mktemp("throttle"))
    server.database = url
    yield server
    stop_gunicorn(server)


def parallel_logins(server, bodies, client_ip):
    """POST every body at once (lined up on a barrier) from `client_ip`, or from each of a list
    of addresses; the responses in order."""
    start = threading.Barrier(len(bodies))
    addresses = client_ip if isinstance(client_ip, list) else [client_ip] * len(bodies)

    def one(body, address):
        with httpx.Client(base_url=server.url, timeout=30) as http:
            start.wait()
            return http.post("/auth/login", json=body, headers={"X-Forwarded-For": address})

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies, addresses))


def create_live_user(server, username):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        token = http.post("/auth/login", json={"username": "admin", "password": DEMO["admin"]}).json()["token"]
        response = http.post("/users", json={"username": username, "password": PASSWORD}, headers={"token": token})
        assert response.status_code == 201, response.text
        return response.json()["id"]


def assert_at_most_limit_evaluated(responses, limit):
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {401, 429}, statuses
    evaluated = statuses.count(401)
    assert 1 <= evaluated <= limit, statuses
    assert all(int(r.headers["Retry-After"]) >= 1 for r in responses if r.status_code == 429)
    return evaluated


def test_fifty_parallel_guesses_at_one_account_get_at_most_five_evaluated(throttle_server):
    user_id = create_live_user(throttle_server, "target")
    bodies = [{"username": "target", "password": f"{WRONG}-{n}"} for n in range(50)]

    evaluated = assert_at_most_limit_evaluated(parallel_logins(throttle_server, bodies, "198.18.0.1"), 5)

    row = counter(throttle_server.database, f"user:{user_id}")
    assert row["failures"] == evaluated
    with httpx.Client(base_url=throttle_server.url) as http:
        right = http.post("/auth/login", json={"username": "target", "password": PASSWORD})
    assert right.status_code == 429


def test_fifty_parallel_guesses_from_fifty_addresses_get_at_most_five_evaluated(throttle_server):
    user_id = create_live_user(throttle_server, "spread-target")
    bodies = [{"username": "spread-target", "password": f"{WRONG}-{n}"} for n in range(50)]

    responses = parallel_logins(throttle_server, bodies, [f"198.18.1.{n}" for n in range(50)])

    evaluated = assert_at_most_limit_evaluated(responses, 5)
    assert counter(throttle_server.database, f"user:{user_id}")["failures"] == evaluated


def test_fifty_parallel_guesses_from_one_ip_get_at_most_twenty_evaluated(throttle_server):
    create_live_user(throttle_server, "bystander")
    bodies = [{"username": f"guess-{n}", "password": WRONG} for n in range(50)]

    evaluated = assert_at_most_limit_evaluated(parallel_logins(throttle_server, bodies, "198.18.0.2"), 20)

    assert counter(throttle_server.database, "ip:198.18.0.2")["failures"] == evaluated
    with httpx.Client(base_url=throttle_server.url) as http:
        body = {"username": "bystander", "password": PASSWORD}
        assert http.post("/auth/login", json=body, headers={"X-Forwarded-For": "198.18.0.2"}).status_code == 429
        assert http.post("/auth/login", json=body, headers={"X-Forwarded-For": "198.18.0.3"}).status_code == 200


def change_password(client, token, current, ip=CLIENT_IP):
    return client.put(
        "/auth/password",
        json={"current_password": current, "new_password": "a-fresh-passphrase-77"},
        headers={"token": token},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_wrong_current_passwords_lock_the_account_like_failed_logins(client, test_database, user):
    # A stolen token must not buy unlimited guesses at the password behind it.
    token = login(client, user["username"]).get_json()["token"]
    for _ in range(5):
        assert change_password(client, token, WRONG).status_code == 401
    assert_throttled(change_password(client, token, PASSWORD), 30)
    assert_throttled(login(client, user["username"]), 30)
    # Counted on the account as seen from the address it logged in from.
    assert counter(test_database, f"user:{user['id']}@{CLIENT_IP}")["failures"] == 5


def test_a_right_current_password_resets_the_account_count(client, test_database, user):
    token = login(client, user["username"]).get_json()["token"]
    for _ in range(4):
        assert change_password(client, token, WRONG).status_code == 401
    assert change_password(client, token, PASSWORD).status_code == 200
    assert counter(test_database, f"user:{user['id']}@{CLIENT_IP}")["failures"] == 0


@pytest.fixture(scope="module")
def quick_lock_server(postgres, mailbox, tmp_path_factory):
    """A gunicorn whose locks and windows last seconds, not minutes, so a test sees many of them."""
    url = postgres.create_database("auth_quick_lock")
    settings = {
        **fixtures.test_settings(url, mailbox),
        "TRUSTED_PROXIES": "127.0.0.1",
        "LOGIN_ACCOUNT_WINDOW_SECONDS": 3,
        "LOGIN_IP_WINDOW_SECONDS": 3,
        "LOGIN_LOCK_BASE_SECONDS": 1,
        "LOGIN_LOCK_MAX_SECONDS": 2,
    }
    server = start_gunicorn(settings, tmp_path_factory.mktemp("quick-lock"))
    yield server
    stop_gunicorn(server)


SIEGE_SECONDS = 30  # ten windows and fifteen locks of the quick-lock server


def test_a_guesser_at_the_limit_never_keeps_the_owner_out(quick_lock_server):
    create_live_user(quick_lock_server, "besieged")
    with httpx.Client(base_url=quick_lock_server.url, timeout=30) as http:
        owner = {"X-Forwarded-For": "198.51.100.20"}
        body = {"username": "besieged", "password": PASSWORD}
        assert http.post("/auth/login", json=body, headers=owner).status_code == 200
    attacker_statuses, owner_statuses, stop = [], [], threading.Event()

    def attack():
        with httpx.Client(base_url=quick_lock_server.url, timeout=30) as http:
            while not stop.is_set():
                body = {"username": "besieged", "password": WRONG}
                response = http.post("/auth/login", json=body, headers={"X-Forwarded-For": "203.0.113.200"})
                attacker_statuses.append(response.status_code)

    attacker = threading.Thread(target=attack)
    attacker.start()
    deadline = time.monotonic() + SIEGE_SECONDS
    with httpx.Client(base_url=quick_lock_server.url, timeout=30) as http:
        while time.monotonic() < deadline:
            owner_statuses.append(http.post("/auth/login", json=body, headers=owner).status_code)
            time.sleep(0.25)
    stop.set()
    attacker.join(30)

    assert owner_statuses and set(owner_statuses) == {200}
    assert 429 in attacker_statuses
    # Five guesses, then one a lock: far fewer evaluated than sent.
    evaluated = attacker_statuses.count(401)
    assert evaluated <= 5 + SIEGE_SECONDS, (evaluated, len(attacker_statuses))
