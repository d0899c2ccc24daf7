"""The credential lifecycle: a password change by any path kills every session and reset code
issued before it, even a login racing it; reset codes die with the state they were mailed
for; hashes move to a new cost or pepper at the next login; a user holds a bounded number
of sessions; and every table that grows with traffic is purged."""

import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from security.passwords import hash_password, pepper_id
from tests import fixtures
from tests.fixtures import DEMO, Api, db_rows, start_gunicorn, stop_gunicorn

OLD, NEW = "correct-horse-battery-9", "violet-harbour-lamp-31"
LINK = re.compile(r"#code=(\S+)")


# --- a login racing a password change --------------------------------------------------------


@pytest.fixture(scope="module")
def race_server(postgres, mailbox, tmp_path_factory):
    """A gunicorn with limits out of the way of a burst of logins from one address."""
    url = postgres.create_database("auth_race")
    settings = {
        **fixtures.test_settings(url, mailbox),
        "LOGIN_IP_MAX_FAILURES": 100000,
        "LOGIN_ACCOUNT_MAX_FAILURES": 100000,
        "MAX_SESSIONS_PER_USER": 100000,
        "FORGOT_IP_MAX_REQUESTS": 100000,
    }
    server = start_gunicorn(settings, tmp_path_factory.mktemp("race"))
    server.database = url
    yield server
    stop_gunicorn(server)


def change_by_admin(http, admin, user, mailbox):
    response = http.put(f"/users/{user['id']}", json={"password": NEW}, headers=admin)
    assert response.status_code == 200, response.text
    return None


def change_by_self(http, admin, user, mailbox):
    token = http.post("/auth/login", json={"username": user["username"], "password": OLD}).json()["token"]
    response = http.put("/auth/password", json={"current_password": OLD, "new_password": NEW}, headers={"token": token})
    assert response.status_code == 200, response.text
    return token  # the session the change was made from stays, by design


def change_by_reset(http, admin, user, mailbox):
    assert http.post("/auth/password/forgot", json={"username": user["username"]}).status_code == 202
    code = LINK.search(mailbox.wait_for(user["email"], subject="Reset your Eqeqo password").get_content()).group(1)
    response = http.post("/auth/password/reset", json={"code": code, "password": NEW})
    assert response.status_code == 200, response.text
    return None


def logins_with_the_old_password(server, name, changed):
    """Three threads logging in as `name` with the old password until a moment after `changed`
    is set; returns the threads, and the list the responses (status, token) are added to."""
    answers, done = [], threading.Event()

    def log_in():
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while not done.is_set():
                response = http.post("/auth/login", json={"username": name, "password": OLD})
                token = response.json()["token"] if response.status_code == 200 else None
                answers.append((response.status_code, token))
                if changed.is_set():
                    done.wait(0.05)
                    done.set()

    threads = [threading.Thread(target=log_in) for _ in range(3)]
    for thread in threads:
        thread.start()
    return threads, answers


def admin_headers(http):
    return {"token": http.post("/auth/login", json={"username": "admin", "password": DEMO["admin"]}).json()["token"]}


@pytest.mark.parametrize("change", [change_by_admin, change_by_self, change_by_reset], ids=["admin", "self", "reset"])
def test_no_login_racing_a_password_change_outlives_it(race_server, mailbox, change):
    with httpx.Client(base_url=race_server.url, timeout=30) as http:
        admin = admin_headers(http)
        for _ in range(20):
            name = f"racer-{uuid.uuid4().hex[:8]}"
            body = {"username": name, "password": OLD, "email": f"{name}@example.com"}
            user = http.post("/users", json=body, headers=admin).json()
            changed = threading.Event()
            threads, answers = logins_with_the_old_password(race_server, name, changed)
            time.sleep(0.05)
            kept = change(http, admin, user, mailbox)
            changed.set()
            for thread in threads:
                thread.join(30)

            assert {status for status, _ in answers} <= {200, 401}
            issued = [token for _, token in answers if token]
            live = [
                t for t in issued if t != kept and http.get("/auth/profile", headers={"token": t}).status_code == 200
            ]
            assert live == [], f"{len(live)} of {len(issued)} sessions from the old password outlived the change"
            assert http.post("/auth/login", json={"username": name, "password": NEW}).status_code == 200


def test_a_login_racing_a_hard_delete_is_refused_never_an_error(race_server):
    with httpx.Client(base_url=race_server.url, timeout=30) as http:
        admin = admin_headers(http)
        statuses = set()
        for _ in range(10):
            name = f"leaver-{uuid.uuid4().hex[:8]}"
            user = http.post("/users", json={"username": name, "password": OLD}, headers=admin).json()
            changed = threading.Event()
            threads, answers = logins_with_the_old_password(race_server, name, changed)
            time.sleep(0.05)
            assert http.delete(f"/users/{user['id']}?hard=true", headers=admin).status_code == 204
            changed.set()
            for thread in threads:
                thread.join(30)
            statuses |= {status for status, _ in answers}
        assert statuses == {200, 401}


# --- reset codes die with the state they were issued for --------------------------------------


@pytest.fixture
def erin(api):
    email = f"erin-{uuid.uuid4().hex[:10]}@example.com"
    return {**api.create_user("erin", password=OLD, email=email), "password": OLD}


def mailed_code(client, mailbox, user):
    assert client.post("/auth/password/forgot", json={"username": user["username"]}).status_code == 202
    return LINK.search(mailbox.wait_for(user["email"], subject="Reset your Eqeqo password").get_content()).group(1)


def own_password_change(client, api, user):
    token = api.login("erin", OLD)
    body = {"current_password": OLD, "new_password": "amber-quay-tango-44"}
    assert client.put("/auth/password", json=body, headers={"token": token}).status_code == 200


def admin_password_change(client, api, user):
    response = client.put(f"/users/{user['id']}", json={"password": "amber-quay-tango-44"}, headers=api.headers())
    assert response.status_code == 200


def email_change(client, api, user):
    response = client.put(f"/users/{user['id']}", json={"email": f"moved-{user['email']}"}, headers=api.headers())
    assert response.status_code == 200


def email_change_and_back(client, api, user):
    email_change(client, api, user)
    assert client.put(f"/users/{user['id']}", json={"email": user["email"]}, headers=api.headers()).status_code == 200


def disable_and_enable(client, api, user):
    for active in (False, True):
        response = client.put(f"/users/{user['id']}", json={"active": active}, headers=api.headers())
        assert response.status_code == 200


def newer_code(client, api, user, mailbox):
    mailed_code(client, mailbox, user)


VOIDING = {
    "own password change": own_password_change,
    "administrator's password change": admin_password_change,
    "email change": email_change,
    "email change and back": email_change_and_back,
    "disable and enable": disable_and_enable,
}


@pytest.mark.parametrize("event", [*VOIDING, "newer code"])
def test_a_reset_code_dies_with_the_state_it_was_issued_for(client, api, mailbox, erin, event):
    code = mailed_code(client, mailbox, erin)
    if event == "newer code":
        newer_code(client, api, erin, mailbox)
    else:
        VOIDING[event](client, api, erin)

    response = client.post("/auth/password/reset", json={"code": code, "password": NEW})

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_reset_code"


def test_a_reset_code_works_when_nothing_happened(client, api, mailbox, erin):
    code = mailed_code(client, mailbox, erin)
    # Changes that touch no credential leave the code alone.
    assert client.put(f"/users/{erin['id']}", json={"name": "Erin"}, headers=api.headers()).status_code == 200
    assert client.post("/auth/password/reset", json={"code": code, "password": NEW}).status_code == 200


# --- hashes move to the configured cost and the newest pepper ---------------------------------


def stored(url, username):
    return db_rows(url, "select password_hash, pepper_id from auth.users where username = %s", [username])[0]


def test_a_login_rehashes_at_a_new_cost(app_factory, test_database):
    Api(app_factory(BCRYPT_ROUNDS=4).test_client()).create_user("hugo", password=OLD)
    assert stored(test_database, "hugo")["password_hash"].startswith("$2b$04$")

    client = app_factory(BCRYPT_ROUNDS=5).test_client()
    assert client.post("/auth/login", json={"username": "hugo", "password": OLD}).status_code == 200

    assert stored(test_database, "hugo")["password_hash"].startswith("$2b$05$")
    assert client.post("/auth/login", json={"username": "hugo", "password": OLD}).status_code == 200
    assert client.post("/auth/login", json={"username": "hugo", "password": NEW}).status_code == 401


FIRST, SECOND = "first-pepper-" + "x" * 32, "second-pepper-" + "y" * 32


def user_with_pepper(url, username, pepper, recorded=True):
    """A user whose hash was made with `pepper` (its id recorded, or null as before ids were)."""
    db_rows(
        url,
        "insert into auth.users (username, password_hash, pepper_id) values (%s, %s, %s)",
        [username, hash_password(OLD, pepper, 4), pepper_id(pepper) if recorded else None],
    )


def test_a_pepper_rotates_from_end_to_end(app_factory, test_database):
    user_with_pepper(test_database, "pia", FIRST)

    # The new pepper alone cannot check a hash made with the old one.
    alone = app_factory(PASSWORD_PEPPER=SECOND).test_client()
    assert alone.post("/auth/login", json={"username": "pia", "password": OLD}).status_code == 401
    # Listed as an older pepper, it can; and the login rehashes with the new one.
    rotating = app_factory(PASSWORD_PEPPER=SECOND, PASSWORD_OLD_PEPPERS=[FIRST]).test_client()
    assert rotating.post("/auth/login", json={"username": "pia", "password": OLD}).status_code == 200
    assert stored(test_database, "pia")["pepper_id"] == pepper_id(SECOND)
    assert alone.post("/auth/login", json={"username": "pia", "password": OLD}).status_code == 200
    # The pepper's id tells nothing of the pepper.
    assert FIRST not in str(db_rows(test_database, "select * from auth.users"))


def test_a_hash_from_before_pepper_ids_uses_the_oldest_pepper(app_factory, test_database):
    user_with_pepper(test_database, "pia", FIRST, recorded=False)

    client = app_factory(PASSWORD_PEPPER=SECOND, PASSWORD_OLD_PEPPERS=[FIRST]).test_client()
    assert client.post("/auth/login", json={"username": "pia", "password": OLD}).status_code == 200
    assert stored(test_database, "pia")["pepper_id"] == pepper_id(SECOND)


# --- bounded sessions and tables ----------------------------------------------------------------


def test_a_user_holds_at_most_max_sessions_the_oldest_revoked_first(app_factory):
    client = app_factory(MAX_SESSIONS_PER_USER=3).test_client()
    tokens = [Api(client).login("bob") for _ in range(5)]

    alive = [client.get("/auth/profile", headers={"token": token}).status_code == 200 for token in tokens]

    assert alive == [False, False, True, True, True]


def test_sixteen_concurrent_logins_of_one_user_all_succeed(race_server):
    start = threading.Barrier(16)

    def log_in(_):
        with httpx.Client(base_url=race_server.url, timeout=30) as http:
            start.wait()
            return http.post("/auth/login", json={"username": "bob", "password": DEMO["bob"]})

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(log_in, range(16)))

    assert [response.status_code for response in responses] == [200] * 16
    assert len({response.json()["token"] for response in responses}) == 16


def test_purge_deletes_what_has_expired_and_keeps_the_rest(app, api, test_database):
    api.login("alice")
    for statement in (
        "insert into auth.login_failures (key, failures, last_failure_at) values"
        " ('ip:192.0.2.1', 3, now() - interval '1 hour'), ('ip:192.0.2.2', 3, now())",
        "insert into auth.request_counts (key, window_start, count) values"
        " ('forgot-ip:192.0.2.1', now() - interval '1 hour', 1), ('forgot-ip:192.0.2.2', now(), 1)",
        "insert into auth.login_addresses (user_id, ip, last_login_at)"
        " values (2, '192.0.2.1', now() - interval '31 days')",
        "insert into auth.audit_events (event, at) values ('authn_login_fail', now() - interval '366 days')",
        "insert into auth.outbox (kind, payload, done_at) values ('mail', '{}', now() - interval '8 days')",
    ):
        db_rows(test_database, statement)

    result = app.test_cli_runner().invoke(args=["purge"])

    assert result.exit_code == 0, result.output
    assert "1 login_failures, 1 request_counts" in result.output
    assert [r["key"] for r in db_rows(test_database, "select key from auth.login_failures")] == ["ip:192.0.2.2"]
    assert [r["key"] for r in db_rows(test_database, "select key from auth.request_counts")] == ["forgot-ip:192.0.2.2"]
    assert db_rows(test_database, "select ip from auth.login_addresses") == [{"ip": "127.0.0.1"}]
    assert db_rows(
        test_database, "select count(*) as n from auth.audit_events where at < now() - interval '1 day'"
    ) == [{"n": 0}]
    assert db_rows(test_database, "select count(*) as n from auth.outbox") == [{"n": 0}]


def test_audit_retention_is_a_setting(app_factory, test_database):
    app = app_factory(AUDIT_RETENTION_DAYS=30)
    db_rows(
        test_database,
        "insert into auth.audit_events (event, at) values ('authn_login_fail', now() - interval '31 days')",
    )
    assert app.test_cli_runner().invoke(args=["purge"]).exit_code == 0
    assert db_rows(test_database, "select count(*) as n from auth.audit_events") == [{"n": 0}]
