"""Administration of people (/users, API.md "Administration" and "Resources"): listing and
filtering, reading with grants, creating under the password policy, updating, soft and
hard deletion, clearing a login lock. No response ever carries a password hash."""

import datetime

import pytest

from tests.fixtures import DEMO, assert_error, db_rows

USER_KEYS = {"id", "username", "name", "email", "active", "created_at", "updated_at"}
GOOD_PASSWORD = "velvet-compass-93"


@pytest.fixture(autouse=True)
def no_hash_in_any_response(app):
    """Every response of every test here is searched for a password hash."""
    bodies = []

    @app.after_request
    def keep(response):
        bodies.append(response.get_data(as_text=True))
        return response

    yield
    assert bodies, "the hook saw no response"
    for text in bodies:
        assert "$2b$" not in text
        assert "password_hash" not in text


@pytest.fixture
def admin(api):
    """The administrator's headers."""
    return api.headers("admin")


def user_id(url, username):
    return db_rows(url, "select id from auth.users where username = %s", [username])[0]["id"]


def user_count(url):
    return db_rows(url, "select count(*) as n from auth.users")[0]["n"]


def login_status(client, username, password):
    return client.post("/auth/login", json={"username": username, "password": password}).status_code


def assert_user_resource(user):
    assert set(user) == USER_KEYS
    created = datetime.datetime.fromisoformat(user["created_at"])
    assert created.utcoffset() == datetime.timedelta(0)


# --- list ---------------------------------------------------------------------------------


def test_list_answers_the_list_shape(client, admin):
    response = client.get("/users", headers=admin)

    assert response.status_code == 200
    body = response.get_json()
    assert (body["total"], body["limit"], body["offset"]) == (4, 100, 0)
    assert [user["username"] for user in body["items"]] == ["admin", "alice", "bob", "carol"]
    for user in body["items"]:
        assert_user_resource(user)


@pytest.mark.parametrize(
    ("query", "usernames"),
    [
        ("limit=2", ["admin", "alice"]),
        ("limit=2&offset=1", ["alice", "bob"]),
        ("limit=1&offset=3", ["carol"]),
        ("offset=4", []),
        ("limit=1000&offset=0", ["admin", "alice", "bob", "carol"]),
    ],
)
def test_list_pages_with_limit_and_offset(client, admin, query, usernames):
    body = client.get(f"/users?{query}", headers=admin).get_json()

    assert [user["username"] for user in body["items"]] == usernames
    assert body["total"] == 4
    params = dict(pair.split("=") for pair in query.split("&"))
    assert body["limit"] == int(params.get("limit", 100))
    assert body["offset"] == int(params.get("offset", 0))


@pytest.mark.parametrize(
    ("query", "usernames"),
    [
        ("q=ALI", ["alice"]),  # username, any case
        ("q=Example.COM", ["alice"]),  # email
        ("q=nistrat", ["admin"]),  # name "Administrator"
        ("q=ar", ["carol"]),
        ("q=o", ["admin", "alice", "bob", "carol"]),
        ("q=nobody", []),
        ("q=%25", []),  # a LIKE wildcard is a plain character here
        ("q=_", []),
        ("active=false", ["carol"]),
        ("active=true", ["admin", "alice", "bob"]),
        ("active=FALSE", ["carol"]),
        ("q=a&active=false", ["carol"]),
        ("q=bob&active=false", []),
    ],
)
def test_list_filters_by_substring_and_state(client, admin, query, usernames):
    body = client.get(f"/users?{query}", headers=admin).get_json()

    assert [user["username"] for user in body["items"]] == usernames
    assert body["total"] == len(usernames)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=", "limit"),
        ("offset=-1", "offset"),
        ("offset=abc", "offset"),
        ("active=maybe", "active"),
        ("active=1", "active"),
    ],
)
def test_list_refuses_bad_query_parameters(client, admin, query, field):
    body = assert_error(client.get(f"/users?{query}", headers=admin), 400, "validation_error")
    assert field in body["fields"]


def test_total_counts_the_whole_filter_not_the_page(client, admin, api):
    for n in range(3):
        api.create_user(f"temp{n}", email=f"temp{n}@example.org")

    body = client.get("/users?q=example.org&limit=2", headers=admin).get_json()

    assert body["total"] == 3
    assert [user["username"] for user in body["items"]] == ["temp0", "temp1"]


# --- get ----------------------------------------------------------------------------------


def test_get_shows_the_user_and_its_grants_as_the_profile_does(client, admin, api, test_database):
    alice = user_id(test_database, "alice")
    profile = client.get("/auth/profile", headers=api.headers("alice")).get_json()["payload"]

    response = client.get(f"/users/{alice}", headers=admin)

    assert response.status_code == 200
    user = response.get_json()
    assert set(user) == USER_KEYS | {"services"}
    assert (user["id"], user["username"], user["email"], user["active"]) == (alice, "alice", "alice@example.com", True)
    assert user["services"] == profile["services"]
    assert {(s["service"], tuple(s["roles"]), tuple(s["permissions"])) for s in user["services"]} == {
        ("stock", ("clerk",), ("stock.read",)),
        ("sales", ("seller",), ("sales.read", "sales.write")),
    }


def test_get_a_user_without_grants_shows_no_services(client, admin, api):
    dora = api.create_user("dora")
    assert client.get(f"/users/{dora['id']}", headers=admin).get_json()["services"] == []


def test_get_unknown_user_is_404_naming_it(client, admin):
    body = assert_error(client.get("/users/987654", headers=admin), 404, "not_found")
    assert "987654" in body["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        *[
            (method, path)
            for method in ("GET", "PUT", "DELETE")
            for path in ("/users/99999999999999999999999", f"/users/{2**63}", "/users/0", "/users/abc")
        ],
        ("DELETE", f"/users/{2**63}/lock"),
        ("DELETE", "/users/0/lock"),
    ],
)
def test_impossible_id_is_404_for_every_method_of_the_route(client, admin, method, path):
    # No user can have such an id, so the answer is "not found", never a database error.
    assert_error(client.open(path, method=method, json={"name": "X"}, headers=admin), 404, "not_found")


# --- create -------------------------------------------------------------------------------


def test_create_answers_201_with_the_user(client, admin, test_database):
    response = client.post(
        "/users",
        json={"username": "dora", "password": GOOD_PASSWORD, "name": "Dora", "email": "dora@example.com"},
        headers=admin,
    )

    assert response.status_code == 201
    user = response.get_json()
    assert_user_resource(user)
    assert (user["username"], user["name"], user["email"], user["active"]) == (
        "dora",
        "Dora",
        "dora@example.com",
        True,
    )
    assert user["id"] == user_id(test_database, "dora")
    stored = db_rows(test_database, "select password_hash from auth.users where id = %s", [user["id"]])[0]
    assert stored["password_hash"].startswith("$2b$")
    assert GOOD_PASSWORD not in stored["password_hash"]
    assert login_status(client, "dora", GOOD_PASSWORD) == 200
    assert login_status(client, "dora@example.com", GOOD_PASSWORD) == 200


def test_create_with_only_username_and_password(client, admin):
    response = client.post("/users", json={"username": "dora", "password": GOOD_PASSWORD}, headers=admin)

    assert response.status_code == 201
    assert (response.get_json()["name"], response.get_json()["email"]) == (None, None)


@pytest.mark.parametrize(
    ("fields", "taken"),
    [
        ({"username": "alice"}, "username"),
        ({"username": "ALICE"}, "username"),
        ({"username": "dora", "email": "alice@example.com"}, "email"),
        ({"username": "dora", "email": "Alice@EXAMPLE.com"}, "email"),
    ],
)
def test_create_taken_username_or_email_is_409(client, admin, test_database, fields, taken):
    before = user_count(test_database)

    response = client.post("/users", json={"password": GOOD_PASSWORD, **fields}, headers=admin)

    body = assert_error(response, 409, "conflict")
    assert taken in body["fields"]
    assert user_count(test_database) == before


WEAK_PASSWORDS = [
    ("short-pw-11", "12 to 128"),
    ("x" * 129, "12 to 128"),
    ("é" * 129, "12 to 128"),
    ("123qweasdzxc", "common"),
    ("1q2w3e4r5t6y", "common"),
    ("1Q2W3E4R5T6Y", "common"),
    ("dora-lantern-99", "username"),
    ("lantern-DORA-99", "username"),
]


@pytest.mark.parametrize(("password", "reason"), WEAK_PASSWORDS)
def test_create_refuses_a_weak_password_with_the_reason(client, admin, test_database, password, reason):
    before = user_count(test_database)

    response = client.post("/users", json={"username": "dora", "password": password}, headers=admin)

    body = assert_error(response, 400, "validation_error")
    assert reason in body["fields"]["password"]
    assert user_count(test_database) == before


@pytest.mark.parametrize(
    "password",
    ["Tr0ub4dor&3x", "quiet-lemur-harbor-tango-" * 5 + "x12", "é-wombat-ferry" * 9 + "xy", "🦊🐢🐙🦉🐝🦀🦑🐌🦋🐞🦂🐡"],
)
def test_create_accepts_passwords_at_the_length_bounds(client, admin, password):
    response = client.post("/users", json={"username": "dora", "password": password}, headers=admin)

    assert response.status_code == 201, response.get_json()
    assert login_status(client, "dora", password) == 200


def fullwidth(text):
    """The letters as a Japanese keyboard types them (U+FF41...), which NFKC folds back."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isalpha() else c for c in text)


@pytest.mark.parametrize(
    ("typed", "other_form"),
    [
        (fullwidth("velvet-compass-93"), "velvet-compass-93"),
        ("velvet-compass-93", fullwidth("velvet-compass-93")),
        ("ﬁrework-lantern", "firework-lantern"),  # a ligature
        ("cafe\u0301-lantern-93", "café-lantern-93"),  # combining accent vs precomposed
    ],
)
def test_passwords_are_nfkc_normalized(client, admin, typed, other_form):
    response = client.post("/users", json={"username": "dora", "password": typed}, headers=admin)
    assert response.status_code == 201, response.get_json()

    assert login_status(client, "dora", other_form) == 200
    assert login_status(client, "dora", typed) == 200


def test_length_is_counted_after_normalization(client, admin):
    # Eleven characters as typed, twelve once the ligature is spelled out.
    password = "ﬁrework-lam"
    assert len(password) == 11

    response = client.post("/users", json={"username": "dora", "password": password}, headers=admin)

    assert response.status_code == 201, response.get_json()
    assert login_status(client, "dora", "firework-lam") == 200


@pytest.mark.parametrize("missing", ["username", "password"])
def test_create_needs_username_and_password(client, admin, missing):
    data = {"username": "dora", "password": GOOD_PASSWORD}
    del data[missing]

    body = assert_error(client.post("/users", json=data, headers=admin), 400, "validation_error")
    assert body["fields"] == {missing: "is required"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("username", "has space"), ("username", "x" * 65), ("email", "not-an-email"), ("name", "n" * 201)],
)
def test_create_refuses_malformed_fields(client, admin, test_database, field, value):
    before = user_count(test_database)
    data = {"username": "dora", "password": GOOD_PASSWORD, field: value}

    body = assert_error(client.post("/users", json=data, headers=admin), 400, "validation_error")

    assert field in body["fields"]
    assert user_count(test_database) == before


# --- update -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "shown"),
    [
        ({"name": "Robert"}, {"name": "Robert"}),
        ({"email": "bob@example.com"}, {"email": "bob@example.com"}),
        ({"username": "robert"}, {"username": "robert"}),
        ({"active": False}, {"active": False}),
        ({"name": None}, {"name": None}),
        ({"name": "Robert", "email": "bob@example.com"}, {"name": "Robert", "email": "bob@example.com"}),
    ],
)
def test_update_changes_the_given_fields_only(client, admin, test_database, change, shown):
    bob = user_id(test_database, "bob")
    before = client.get(f"/users/{bob}", headers=admin).get_json()

    response = client.put(f"/users/{bob}", json=change, headers=admin)

    assert response.status_code == 200, response.get_json()
    user = response.get_json()
    assert_user_resource(user)
    expected = {key: before[key] for key in USER_KEYS - {"updated_at"}} | shown
    assert {key: user[key] for key in USER_KEYS - {"updated_at"}} == expected
    assert user["updated_at"] is not None
    stored = client.get(f"/users/{bob}", headers=admin).get_json()
    assert {key: stored[key] for key in USER_KEYS} == user


def test_update_name_and_email_to_null(client, admin, test_database):
    alice = user_id(test_database, "alice")

    response = client.put(f"/users/{alice}", json={"name": None, "email": None}, headers=admin)

    assert response.status_code == 200
    assert (response.get_json()["name"], response.get_json()["email"]) == (None, None)
    # Without an email, the address no longer logs in, the username still does.
    assert login_status(client, "alice@example.com", DEMO["alice"]) == 401
    assert login_status(client, "alice", DEMO["alice"]) == 200


def test_update_username_changes_the_login_name(client, admin, test_database):
    bob = user_id(test_database, "bob")
    client.put(f"/users/{bob}", json={"username": "robert"}, headers=admin)

    assert login_status(client, "robert", DEMO["bob"]) == 200
    assert login_status(client, "bob", DEMO["bob"]) == 401


def test_update_password_revokes_tokens_and_changes_the_login(client, admin, api, test_database):
    bob = user_id(test_database, "bob")
    token = api.login("bob")

    response = client.put(f"/users/{bob}", json={"password": GOOD_PASSWORD}, headers=admin)

    assert response.status_code == 200
    assert client.get("/auth/profile", headers={"token": token}).status_code == 401
    assert login_status(client, "bob", GOOD_PASSWORD) == 200
    assert login_status(client, "bob", DEMO["bob"]) == 401


@pytest.mark.parametrize(("password", "reason"), [*WEAK_PASSWORDS[:5], ("lantern-BOB-99", "username")])
def test_update_refuses_a_weak_password_and_keeps_everything(client, admin, api, test_database, password, reason):
    bob = user_id(test_database, "bob")
    token = api.login("bob")

    response = client.put(f"/users/{bob}", json={"password": password, "name": "Robert"}, headers=admin)

    body = assert_error(response, 400, "validation_error")
    assert reason in body["fields"]["password"]
    assert client.get("/auth/profile", headers={"token": token}).status_code == 200
    assert login_status(client, "bob", DEMO["bob"]) == 200
    assert client.get(f"/users/{bob}", headers=admin).get_json()["name"] == "Bob"


def test_update_password_checks_the_new_username_too(client, admin, test_database):
    bob = user_id(test_database, "bob")
    response = client.put(f"/users/{bob}", json={"username": "robert", "password": "robert-lantern-9"}, headers=admin)
    assert "username" in assert_error(response, 400, "validation_error")["fields"]["password"]


def test_disabling_revokes_tokens_and_refuses_login_until_enabled(client, admin, api, test_database):
    bob = user_id(test_database, "bob")
    token = api.login("bob")

    assert client.put(f"/users/{bob}", json={"active": False}, headers=admin).status_code == 200
    assert client.get("/auth/profile", headers={"token": token}).status_code == 401
    assert login_status(client, "bob", DEMO["bob"]) == 401

    assert client.put(f"/users/{bob}", json={"active": True}, headers=admin).status_code == 200
    assert login_status(client, "bob", DEMO["bob"]) == 200


def test_a_name_change_keeps_the_users_tokens(client, admin, api, test_database):
    bob = user_id(test_database, "bob")
    token = api.login("bob")
    client.put(f"/users/{bob}", json={"name": "Robert"}, headers=admin)
    assert client.get("/auth/profile", headers={"token": token}).status_code == 200


@pytest.mark.parametrize("data", [{}, {"unknown": 1}, {"id": 5}])
def test_update_needs_at_least_one_field(client, admin, test_database, data):
    bob = user_id(test_database, "bob")
    assert_error(client.put(f"/users/{bob}", json=data, headers=admin), 400, "validation_error")


@pytest.mark.parametrize(
    ("change", "taken"),
    [
        ({"username": "alice"}, "username"),
        ({"username": "Alice"}, "username"),
        ({"email": "ALICE@example.com"}, "email"),
    ],
)
def test_update_onto_a_taken_username_or_email_is_409(client, admin, test_database, change, taken):
    bob = user_id(test_database, "bob")

    body = assert_error(client.put(f"/users/{bob}", json=change, headers=admin), 409, "conflict")

    assert taken in body["fields"]
    assert client.get(f"/users/{bob}", headers=admin).get_json()["username"] == "bob"


def test_update_unknown_user_is_404_naming_it(client, admin):
    body = assert_error(client.put("/users/987654", json={"name": "X"}, headers=admin), 404, "not_found")
    assert "987654" in body["message"]


# --- delete -------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?hard=false"])
def test_delete_disables_the_user_and_keeps_it(client, admin, api, test_database, query):
    bob = user_id(test_database, "bob")
    token = api.login("bob")

    response = client.delete(f"/users/{bob}{query}", headers=admin)

    assert response.status_code == 204
    assert response.get_data() == b""
    assert client.get(f"/users/{bob}", headers=admin).get_json()["active"] is False
    assert login_status(client, "bob", DEMO["bob"]) == 401
    assert client.get("/auth/profile", headers={"token": token}).status_code == 401
    assert db_rows(test_database, "select count(*) as n from auth.tokens_cache where user_id = %s", [bob])[0]["n"] == 0
    inactive = client.get("/users?active=false", headers=admin).get_json()["items"]
    assert [user["username"] for user in inactive] == ["bob", "carol"]


def test_hard_delete_removes_the_user_and_everything_it_held(client, admin, api, test_database):
    alice = user_id(test_database, "alice")
    token = api.login("alice")

    response = client.delete(f"/users/{alice}?hard=true", headers=admin)

    assert response.status_code == 204
    assert_error(client.get(f"/users/{alice}", headers=admin), 404, "not_found")
    assert login_status(client, "alice", DEMO["alice"]) == 401
    assert client.get("/auth/profile", headers={"token": token}).status_code == 401
    for table in ("tokens_cache", "person_service_roles"):
        rows = db_rows(test_database, f"select count(*) as n from auth.{table} where user_id = %s", [alice])  # noqa: S608
        assert rows[0]["n"] == 0, table
    listed = client.get("/users", headers=admin).get_json()
    assert "alice" not in [user["username"] for user in listed["items"]]
    assert listed["total"] == 3
    # The name is free again.
    assert (
        client.post("/users", json={"username": "alice", "password": GOOD_PASSWORD}, headers=admin).status_code == 201
    )


def test_hard_delete_keeps_the_audit_trail(client, admin, api, test_database):
    alice = user_id(test_database, "alice")
    api.login("alice")

    client.delete(f"/users/{alice}?hard=true", headers=admin)

    events = client.get(f"/audit-events?user_id={alice}", headers=admin).get_json()["items"]
    assert {"authn_login_success", "user_deleted"} <= {event["event"] for event in events}


@pytest.mark.parametrize("query", ["", "?hard=true"])
def test_delete_unknown_user_is_404(client, admin, query):
    body = assert_error(client.delete(f"/users/987654{query}", headers=admin), 404, "not_found")
    assert "987654" in body["message"]


def test_delete_with_a_bad_hard_flag_is_400_and_deletes_nothing(client, admin, test_database):
    bob = user_id(test_database, "bob")
    assert_error(client.delete(f"/users/{bob}?hard=yes-please", headers=admin), 400, "validation_error")
    assert client.get(f"/users/{bob}", headers=admin).get_json()["active"] is True


# --- lock ---------------------------------------------------------------------------------


def test_clearing_the_lock_lets_the_right_password_in_again(client, admin, test_database):
    bob = user_id(test_database, "bob")
    for _ in range(5):
        assert login_status(client, "bob", "wrong-password-123") == 401
    assert login_status(client, "bob", DEMO["bob"]) == 429

    response = client.delete(f"/users/{bob}/lock", headers=admin)

    assert response.status_code == 204
    assert response.get_data() == b""
    assert login_status(client, "bob", DEMO["bob"]) == 200


def test_clearing_a_lock_that_is_not_there_is_fine(client, admin, test_database):
    assert client.delete(f"/users/{user_id(test_database, 'bob')}/lock", headers=admin).status_code == 204


def test_clearing_the_lock_of_an_unknown_user_is_404(client, admin):
    body = assert_error(client.delete("/users/987654/lock", headers=admin), 404, "not_found")
    assert "987654" in body["message"]
