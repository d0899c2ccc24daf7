"""The revocation feed: an event for every way a session ends or an answer goes stale, in
commit order behind a cursor that never skips one, 410 past the retention, and long polls
woken by NOTIFY within a bounded number of waiting threads."""

import hashlib
import threading
import time

import psycopg
import pytest

import jobs
from tests.fixtures import DEMO, assert_error, db_rows

STOCK_KEY = "eqsk_demo_stock_key_not_secret"
KEY = {"service-token": STOCK_KEY}


def login(client, username="alice", password=None):
    answer = client.post("/auth/login", json={"username": username, "password": password or DEMO[username]})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["token"]


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def head(client):
    answer = client.get("/revocations", headers=KEY)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["events"] == []
    return answer.get_json()["cursor"]


def events_after(client, cursor, **params):
    answer = client.get("/revocations", query_string={"after": cursor, **params}, headers=KEY)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def ident(url, table, name):
    column = "username" if table == "users" else "name"
    return db_rows(url, f"select id from auth.{table} where {column} = %s", [name])[0]["id"]  # noqa: S608


def kinds(feed):
    return [(e["kind"], e.get("token_hash") or e.get("user_id"), e.get("service_id")) for e in feed["events"]]


# --- who may read it ------------------------------------------------------------------------


def test_the_feed_takes_a_service_key(client):
    assert_error(client.get("/revocations"), 401, "invalid_service_key")
    assert_error(client.get("/revocations", headers={"service-token": "eqsk_nope"}), 401, "invalid_service_key")
    assert_error(client.get("/revocations", headers={"token": login(client)}), 401, "invalid_service_key")
    assert client.get("/revocations", headers=KEY).status_code == 200


@pytest.mark.parametrize(
    "cursor", ["", "x", "1", "1.", ".1", "1.2.3", "-1.2", "1" * 21 + ".1", f"{2**64}.1", f"1.{2**63}", "\uff11.1"]
)
def test_a_malformed_cursor_is_400(client, cursor):
    answer = client.get("/revocations", query_string={"after": cursor}, headers=KEY)
    assert_error(answer, 400, "validation_error")


@pytest.mark.parametrize("params", [{"wait": 26}, {"wait": -1}, {"limit": 0}, {"limit": 1001}, {"wait": "soon"}])
def test_out_of_range_wait_and_limit_are_400(client, params):
    answer = client.get("/revocations", query_string={"after": head(client), **params}, headers=KEY)
    assert_error(answer, 400, "validation_error")


# --- an event for every way a session ends --------------------------------------------------


def test_logout_publishes_the_tokens_digest(client):
    token = login(client)
    cursor = head(client)
    assert client.post("/auth/logout", headers={"token": token}).status_code == 200
    feed = events_after(client, cursor)
    assert [(e["kind"], e["token_hash"]) for e in feed["events"]] == [("token", token_hash(token))]
    assert feed["cursor"] == feed["events"][-1]["cursor"] and feed["more"] is False
    assert events_after(client, feed["cursor"])["events"] == []


def test_logout_all_publishes_every_session(client):
    tokens = [login(client) for _ in range(3)]
    cursor = head(client)
    assert client.post("/auth/logout-all", headers={"token": tokens[0]}).status_code == 200
    published = {e["token_hash"] for e in events_after(client, cursor)["events"]}
    assert published == {token_hash(t) for t in tokens}


def test_a_password_change_publishes_the_other_sessions_and_the_user(client, test_database):
    kept, other = login(client), login(client)
    cursor = head(client)
    body = {"current_password": DEMO["alice"], "new_password": "lilac-thunder-harbor-93"}
    assert client.put("/auth/password", json=body, headers={"token": kept}).status_code == 200
    found = kinds(events_after(client, cursor))
    assert ("token", token_hash(other), None) in found
    assert ("user", ident(test_database, "users", "alice"), None) in found
    assert ("token", token_hash(kept), None) not in found


def test_disabling_a_user_publishes_him_and_his_sessions(client, api, test_database):
    token = login(client)
    alice = ident(test_database, "users", "alice")
    cursor = head(client)
    assert client.put(f"/users/{alice}", json={"active": False}, headers=api.headers()).status_code == 200
    found = kinds(events_after(client, cursor))
    assert ("token", token_hash(token), None) in found and ("user", alice, None) in found


def test_deleting_a_user_publishes_his_sessions(client, api, test_database):
    user = api.create_user("dora", email="dora@example.org")
    token = login(client, "dora", "correct-horse-battery-9")
    cursor = head(client)
    answer = client.delete(f"/users/{user['id']}", query_string={"hard": "true"}, headers=api.headers())
    assert answer.status_code in (200, 204), answer.get_json()
    assert ("token", token_hash(token), None) in kinds(events_after(client, cursor))


def test_the_session_cap_publishes_the_oldest_session(app_factory):
    client = app_factory(MAX_SESSIONS_PER_USER=2).test_client()
    first = login(client)
    login(client)
    cursor = head(client)
    login(client)
    assert [e["token_hash"] for e in events_after(client, cursor)["events"]] == [token_hash(first)]


def test_the_purge_of_dead_sessions_publishes_nothing(client, app, test_database):
    login(client)
    db_rows(test_database, "update auth.tokens_cache set expires_at = now() - interval '1 second'")
    cursor = head(client)
    assert jobs.purge(app)["tokens"] >= 1
    assert events_after(client, cursor)["events"] == []


# --- an event for every way an answer goes stale ---------------------------------------------


def test_giving_and_taking_a_role_publishes_the_user_in_that_service(client, api, test_database):
    bob, stock = ident(test_database, "users", "bob"), ident(test_database, "services", "stock")
    grant = {"user_id": bob, "service_id": "stock", "role_id": ident(test_database, "roles", "clerk")}
    cursor = head(client)
    assert client.post("/person-service-roles", json=grant, headers=api.headers()).status_code == 201
    feed = events_after(client, cursor)
    assert kinds(feed) == [("user", bob, stock)]
    assert client.delete("/person-service-roles", json=grant, headers=api.headers()).status_code == 204
    assert kinds(events_after(client, feed["cursor"])) == [("user", bob, stock)]


def test_a_roles_permissions_renames_and_the_service_itself_publish_the_service(client, api, test_database):
    stock, headers = ident(test_database, "services", "stock"), api.headers()
    clerk = ident(test_database, "roles", "clerk")
    link = {"role_id": clerk, "permission_id": ident(test_database, "permissions", "stock.write")}
    permission = ident(test_database, "permissions", "stock.read")
    changes = [
        ("POST", "/role-permissions", link, 201),
        ("DELETE", "/role-permissions", link, 204),
        ("PUT", f"/roles/{clerk}", {"name": "stock-clerk"}, 200),
        ("PUT", f"/permissions/{permission}", {"name": "stock.view"}, 200),
        ("PUT", "/services/stock", {"active": False}, 200),
    ]
    for method, path, body, status in changes:
        cursor = head(client)
        assert client.open(path, method=method, json=body, headers=headers).status_code == status, path
        assert set(kinds(events_after(client, cursor))) == {("service", None, stock)}, (method, path)


def test_a_key_sees_only_its_own_services_changes(client, api, test_database):
    cursor = head(client)
    assert client.put("/services/sales", json={"active": False}, headers=api.headers()).status_code == 200
    bob = ident(test_database, "users", "bob")
    grant = {"user_id": bob, "service_id": "sales", "role_id": ident(test_database, "roles", "seller")}
    assert client.post("/person-service-roles", json=grant, headers=api.headers()).status_code == 201
    assert events_after(client, cursor)["events"] == []


def test_a_refused_write_publishes_nothing(client, api, test_database):
    """The delegation rules roll a refused write back, and its events with it."""
    from tests.test_delegation import People

    rbacw = People(api, test_database).delegate("rbacw", ["auth.rbac.write"])
    cursor = head(client)
    grant = {"user_id": rbacw.id, "service_id": "auth", "role_id": ident(test_database, "roles", "admin")}
    assert client.post("/person-service-roles", json=grant, headers=rbacw.headers).status_code == 403
    assert events_after(client, cursor)["events"] == []


# --- order, pages, retention ----------------------------------------------------------------


def test_pages_follow_each_other_in_order(client):
    tokens = [login(client) for _ in range(5)]
    cursor = head(client)
    for token in tokens:
        assert client.post("/auth/logout", headers={"token": token}).status_code == 200
    seen = []
    while True:
        feed = events_after(client, cursor, limit=2)
        seen += [e["token_hash"] for e in feed["events"]]
        cursor = feed["cursor"]
        if not feed["more"]:
            break
    assert seen == [token_hash(t) for t in tokens]


def test_an_event_committed_late_is_not_skipped(client, test_database):
    """A transaction that began writing first but commits last: its event is held back until
    it commits, so no cursor handed out meanwhile can pass it."""
    slow, fast = login(client), login(client)
    cursor = head(client)
    with psycopg.connect(test_database) as held:
        held.execute("delete from auth.tokens_cache where token_hash = %s", [hashlib.sha256(slow.encode()).digest()])
        assert client.post("/auth/logout", headers={"token": fast}).status_code == 200
        assert events_after(client, cursor)["events"] == []  # the fast one waits behind the open one
        held.commit()
    feed = events_after(client, cursor)
    assert [e["token_hash"] for e in feed["events"]] == [token_hash(slow), token_hash(fast)]


def test_a_cursor_older_than_the_retention_is_410(app_factory):
    app = app_factory(REVOCATION_RETENTION_SECONDS=0)
    client = app.test_client()
    token = login(client)
    cursor = head(client)
    assert client.post("/auth/logout", headers={"token": token}).status_code == 200
    time.sleep(0.01)
    assert jobs.purge(app)["revocations"] >= 1
    answer = client.get("/revocations", query_string={"after": cursor}, headers=KEY)
    assert_error(answer, 410, "cursor_expired")
    fresh = head(client)
    assert events_after(client, fresh)["events"] == []


# --- long polls -----------------------------------------------------------------------------


def test_a_long_poll_answers_when_an_event_arrives(app):
    client = app.test_client()
    token = login(client)
    cursor = head(client)
    threading.Timer(0.3, lambda: app.test_client().post("/auth/logout", headers={"token": token})).start()
    started = time.monotonic()
    feed = events_after(client, cursor, wait=10)
    assert [e["token_hash"] for e in feed["events"]] == [token_hash(token)]
    assert time.monotonic() - started < 9  # woken by the event, not by the end of the wait


def test_a_long_poll_with_nothing_to_say_ends_with_its_wait(client):
    feed = events_after(client, head(client), wait=1)
    assert feed["events"] == [] and feed["more"] is False


def test_waiting_polls_beyond_the_workers_slots_answer_at_once(app_factory):
    app = app_factory(FEED_WAITERS_PER_WORKER=1)
    client = app.test_client()
    cursor = head(client)
    holder = threading.Thread(target=lambda: events_after(app.test_client(), cursor, wait=3))
    holder.start()
    time.sleep(0.3)
    started = time.monotonic()
    answer = client.get("/revocations", query_string={"after": cursor, "wait": 3}, headers=KEY)
    assert answer.status_code == 200 and answer.get_json()["events"] == []
    assert answer.headers["Retry-After"] == "1"
    assert time.monotonic() - started < 2.5  # not held for its wait
    holder.join()
    assert "Retry-After" not in events_after(client, cursor, wait=1)
