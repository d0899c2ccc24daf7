"""Services, roles, permissions and the links between them and people (API.md
"Administration" and "Resources"): CRUD, the protected service "auth", link semantics,
filters, 404s naming the missing id, and cascades that take grants away at once."""

import pytest

from tests.fixtures import assert_error, db_rows

SERVICE_KEYS = {"id", "name", "description", "active"}
NAMED_KEYS = {"id", "name", "description"}
KEYS = {"/roles": NAMED_KEYS, "/permissions": NAMED_KEYS | {"builtin"}}


@pytest.fixture
def admin(api):
    return api.headers("admin")


@pytest.fixture
def ids(test_database):
    """ids("roles", "clerk") -> the id of that demo row in this test's database."""

    def look_up(table, name):
        column = "username" if table == "users" else "name"
        rows = db_rows(test_database, f"select id from auth.{table} where {column} = %s", [name])  # noqa: S608
        return rows[0]["id"]

    return look_up


def grants(client, admin, user_id):
    """{service: (roles, permissions)} as GET /users/{id} shows them."""
    services = client.get(f"/users/{user_id}", headers=admin).get_json()["services"]
    return {s["service"]: (s["roles"], s["permissions"]) for s in services}


def count(url, table, where="true", params=None):
    return db_rows(url, f"select count(*) as n from auth.{table} where {where}", params)[0]["n"]  # noqa: S608


# --- services -----------------------------------------------------------------------------


def test_list_services(client, admin):
    body = client.get("/services", headers=admin).get_json()

    assert [s["name"] for s in body["items"]] == ["auth", "stock", "sales", "manufacturing"]
    assert (body["total"], body["limit"], body["offset"]) == (4, 100, 0)
    assert all(set(s) == SERVICE_KEYS for s in body["items"])


def test_list_services_pages(client, admin):
    body = client.get("/services?limit=2&offset=1", headers=admin).get_json()
    assert [s["name"] for s in body["items"]] == ["stock", "sales"]
    assert (body["total"], body["limit"], body["offset"]) == (4, 2, 1)


def test_create_service(client, admin):
    response = client.post("/services", json={"name": "billing", "description": "Invoices"}, headers=admin)

    assert response.status_code == 201
    service = response.get_json()
    assert set(service) == SERVICE_KEYS
    assert (service["name"], service["description"], service["active"]) == ("billing", "Invoices", True)
    assert client.get(f"/services/{service['id']}", headers=admin).get_json() == service


def test_create_service_with_a_taken_name_is_409(client, admin, test_database):
    body = assert_error(client.post("/services", json={"name": "stock"}, headers=admin), 409, "conflict")
    assert "name" in body["fields"]
    assert count(test_database, "services") == 4


@pytest.mark.parametrize("name", ["Stock", "1stock", "stock room", "", "s" * 64])
def test_service_names_are_short_lower_case_codes(client, admin, test_database, name):
    # Starting with a letter keeps every name apart from every numeric id.
    assert_error(client.post("/services", json={"name": name}, headers=admin), 400, "validation_error")
    assert count(test_database, "services") == 4


@pytest.mark.parametrize("by", ["id", "name"])
def test_get_service_by_id_or_name(client, admin, ids, by):
    ref = ids("services", "stock") if by == "id" else "stock"

    response = client.get(f"/services/{ref}", headers=admin)

    assert response.status_code == 200
    assert response.get_json() == {
        "id": ids("services", "stock"),
        "name": "stock",
        "description": "Stock and warehouses",
        "active": True,
    }


@pytest.mark.parametrize("ref", ["987654", "nosuch", "99999999999999999999999"])
def test_unknown_service_is_404_naming_it(client, admin, ref):
    for method in ("GET", "PUT", "DELETE"):
        response = client.open(f"/services/{ref}", method=method, json={"description": "x"}, headers=admin)
        body = assert_error(response, 404, "not_found")
        assert ref in body["message"]


@pytest.mark.parametrize("by", ["id", "name"])
@pytest.mark.parametrize(
    "change",
    [{"name": "warehouse"}, {"description": "Warehouses"}, {"description": None}, {"active": False}, {"active": True}],
)
def test_update_service(client, admin, ids, by, change):
    stock = ids("services", "stock")
    ref = stock if by == "id" else "stock"

    response = client.put(f"/services/{ref}", json=change, headers=admin)

    assert response.status_code == 200, response.get_json()
    expected = {"id": stock, "name": "stock", "description": "Stock and warehouses", "active": True} | change
    assert response.get_json() == expected
    assert client.get(f"/services/{stock}", headers=admin).get_json() == expected


def test_update_service_onto_a_taken_name_is_409(client, admin):
    assert_error(client.put("/services/stock", json={"name": "sales"}, headers=admin), 409, "conflict")
    assert client.get("/services/stock", headers=admin).status_code == 200


def test_update_service_needs_a_field(client, admin):
    assert_error(client.put("/services/stock", json={}, headers=admin), 400, "validation_error")


def test_disabling_a_service_refuses_its_tokens_at_once(client, admin, api):
    token = api.login("alice")
    assert client.post("/check-token", json={"token": token, "service_id": "stock"}).status_code == 200

    client.put("/services/stock", json={"active": False}, headers=admin)

    response = client.post("/check-token", json={"token": token, "service_id": "stock"})
    assert response.status_code == 403
    assert response.get_json()["valid"] is False


@pytest.mark.parametrize("by", ["id", "name"])
def test_delete_service(client, admin, ids, test_database, by):
    stock = ids("services", "stock")

    response = client.delete(f"/services/{stock if by == 'id' else 'stock'}", headers=admin)

    assert response.status_code == 204
    assert response.get_data() == b""
    assert_error(client.get(f"/services/{stock}", headers=admin), 404, "not_found")
    assert count(test_database, "service_roles", "service_id = %s", [stock]) == 0
    assert count(test_database, "person_service_roles", "service_id = %s", [stock]) == 0
    assert "stock" not in grants(client, admin, ids("users", "alice"))


@pytest.mark.parametrize("by", ["id", "name"])
@pytest.mark.parametrize(
    ("method", "change"),
    [("DELETE", None), ("PUT", {"name": "authz"}), ("PUT", {"active": False}), ("PUT", {"name": "x", "active": True})],
)
def test_service_auth_cannot_be_deleted_renamed_or_disabled(client, admin, ids, test_database, by, method, change):
    auth = ids("services", "auth")
    before = db_rows(test_database, "select * from auth.services where name = 'auth'")

    response = client.open(f"/services/{auth if by == 'id' else 'auth'}", method=method, json=change, headers=admin)

    assert_error(response, 409, "conflict")
    assert db_rows(test_database, "select * from auth.services where name = 'auth'") == before
    # The administrator keeps the access that lives in service "auth".
    assert client.get("/services", headers=admin).status_code == 200


@pytest.mark.parametrize("change", [{"description": "This service"}, {"name": "auth"}, {"active": True}])
def test_service_auth_may_change_harmlessly(client, admin, change):
    response = client.put("/services/auth", json=change, headers=admin)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["name"] == "auth"


@pytest.mark.parametrize(("method", "change"), [("DELETE", None), ("PUT", {"name": "administrator"})])
def test_role_admin_cannot_be_deleted_or_renamed(client, admin, ids, test_database, method, change):
    before = db_rows(test_database, "select * from auth.roles where name = 'admin'")

    response = client.open(f"/roles/{ids('roles', 'admin')}", method=method, json=change, headers=admin)

    assert_error(response, 409, "conflict")
    assert db_rows(test_database, "select * from auth.roles where name = 'admin'") == before
    assert client.get("/roles", headers=admin).status_code == 200


def test_role_admin_may_get_a_new_description(client, admin, ids):
    response = client.put(f"/roles/{ids('roles', 'admin')}", json={"description": "Runs it all"}, headers=admin)
    assert response.status_code == 200
    assert response.get_json()["description"] == "Runs it all"


def test_role_admin_cannot_be_taken_out_of_service_auth(client, admin, ids, test_database):
    link = {"service_id": "auth", "role_id": ids("roles", "admin")}

    assert_error(client.delete("/service-roles", json=link, headers=admin), 409, "conflict")
    assert count(test_database, "person_service_roles", "role_id = %s", [link["role_id"]]) == 1
    assert client.get("/service-roles", headers=admin).status_code == 200


# --- roles and permissions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/roles", ["admin", "clerk", "seller", "manager"]),
        (
            "/permissions",
            [
                "auth.users.read",
                "auth.users.write",
                "auth.rbac.read",
                "auth.rbac.write",
                "auth.audit.read",
                "auth.admin",
                "stock.read",
                "stock.write",
                "sales.read",
                "sales.write",
                "manufacturing.read",
                "manufacturing.write",
            ],
        ),
    ],
)
def test_list_roles_and_permissions(client, admin, path, names):
    body = client.get(path, headers=admin).get_json()

    assert [item["name"] for item in body["items"]] == names
    assert body["total"] == len(names)
    assert all(set(item) == KEYS[path] for item in body["items"])
    page = client.get(f"{path}?limit=1&offset=2", headers=admin).get_json()
    assert [item["name"] for item in page["items"]] == names[2:3]
    assert page["total"] == len(names)


@pytest.mark.parametrize(("path", "name"), [("/roles", "auditor"), ("/permissions", "stock.audit")])
def test_create_role_or_permission(client, admin, path, name):
    response = client.post(path, json={"name": name, "description": "New"}, headers=admin)

    assert response.status_code == 201
    item = response.get_json()
    assert set(item) == KEYS[path]
    assert (item["name"], item["description"]) == (name, "New")
    shown = client.get(f"{path}/{item['id']}", headers=admin).get_json()
    assert {key: shown[key] for key in KEYS[path]} == item


@pytest.mark.parametrize(("path", "name"), [("/roles", "clerk"), ("/permissions", "stock.read")])
def test_create_role_or_permission_with_a_taken_name_is_409(client, admin, test_database, path, name):
    table = path.strip("/")
    before = count(test_database, table)

    body = assert_error(client.post(path, json={"name": name}, headers=admin), 409, "conflict")

    assert "name" in body["fields"]
    assert count(test_database, table) == before


@pytest.mark.parametrize(
    ("role", "permissions"),
    [
        ("clerk", ["stock.read"]),
        ("seller", ["sales.read", "sales.write"]),
        (
            "admin",
            [
                "auth.admin",
                "auth.audit.read",
                "auth.rbac.read",
                "auth.rbac.write",
                "auth.users.read",
                "auth.users.write",
            ],
        ),
    ],
)
def test_get_role_lists_its_permission_names(client, admin, ids, role, permissions):
    response = client.get(f"/roles/{ids('roles', role)}", headers=admin)

    assert response.status_code == 200
    body = response.get_json()
    assert (body["id"], body["name"]) == (ids("roles", role), role)
    assert sorted(body["permissions"]) == permissions


def test_a_new_role_has_no_permissions(client, admin):
    role = client.post("/roles", json={"name": "auditor"}, headers=admin).get_json()
    assert client.get(f"/roles/{role['id']}", headers=admin).get_json()["permissions"] == []


def test_get_permission(client, admin, ids):
    stock_read = ids("permissions", "stock.read")
    response = client.get(f"/permissions/{stock_read}", headers=admin)
    assert response.get_json() == {
        "id": stock_read,
        "name": "stock.read",
        "description": "Read stock",
        "builtin": False,
    }


@pytest.mark.parametrize(
    ("path", "table", "name"), [("/roles", "roles", "clerk"), ("/permissions", "permissions", "stock.read")]
)
@pytest.mark.parametrize("change", [{"name": "renamed"}, {"description": "Changed"}, {"description": None}])
def test_update_role_or_permission(client, admin, ids, path, table, name, change):
    ident = ids(table, name)
    before = client.get(f"{path}/{ident}", headers=admin).get_json()

    response = client.put(f"{path}/{ident}", json=change, headers=admin)

    assert response.status_code == 200, response.get_json()
    expected = {key: before[key] for key in KEYS[path]} | change
    assert response.get_json() == expected
    shown = client.get(f"{path}/{ident}", headers=admin).get_json()
    assert {key: shown[key] for key in KEYS[path]} == expected


@pytest.mark.parametrize(
    ("path", "table", "name", "taken"),
    [("/roles", "roles", "clerk", "seller"), ("/permissions", "permissions", "stock.read", "stock.write")],
)
def test_update_role_or_permission_onto_a_taken_name_is_409(client, admin, ids, path, table, name, taken):
    ident = ids(table, name)
    assert_error(client.put(f"{path}/{ident}", json={"name": taken}, headers=admin), 409, "conflict")
    assert client.get(f"{path}/{ident}", headers=admin).get_json()["name"] == name


@pytest.mark.parametrize("path", ["/roles", "/permissions"])
@pytest.mark.parametrize("ref", ["987654", "abc", "99999999999999999999999", "0"])
def test_unknown_role_or_permission_is_404_naming_it(client, admin, path, ref):
    for method in ("GET", "PUT", "DELETE"):
        response = client.open(f"{path}/{ref}", method=method, json={"description": "x"}, headers=admin)
        body = assert_error(response, 404, "not_found")
        assert ref in body["message"]


def test_delete_role_takes_it_from_people_at_once(client, admin, api, ids, test_database):
    clerk, alice = ids("roles", "clerk"), ids("users", "alice")
    token = api.login("alice")

    response = client.delete(f"/roles/{clerk}", headers=admin)

    assert response.status_code == 204
    assert_error(client.get(f"/roles/{clerk}", headers=admin), 404, "not_found")
    assert "stock" not in grants(client, admin, alice)
    assert client.post("/check-token", json={"token": token, "service_id": "stock"}).status_code == 403
    for table in ("role_permissions", "service_roles", "person_service_roles"):
        assert count(test_database, table, "role_id = %s", [clerk]) == 0, table


def test_delete_permission_takes_it_from_roles_and_people_at_once(client, admin, api, ids, test_database):
    sales_write, alice = ids("permissions", "sales.write"), ids("users", "alice")
    token = api.login("alice")

    response = client.delete(f"/permissions/{sales_write}", headers=admin)

    assert response.status_code == 204
    assert_error(client.get(f"/permissions/{sales_write}", headers=admin), 404, "not_found")
    assert grants(client, admin, alice)["sales"] == (["seller"], ["sales.read"])
    assert client.get(f"/roles/{ids('roles', 'seller')}", headers=admin).get_json()["permissions"] == ["sales.read"]
    check = client.post("/check-token", json={"token": token, "service_id": "sales"}).get_json()
    assert check["payload"]["permissions"] == ["sales.read"]
    assert count(test_database, "role_permissions", "permission_id = %s", [sales_write]) == 0


# --- links --------------------------------------------------------------------------------


def test_role_permission_add_list_remove(client, admin, api, ids):
    clerk, stock_write = ids("roles", "clerk"), ids("permissions", "stock.write")
    link = {"role_id": clerk, "permission_id": stock_write}
    token = api.login("alice")

    first = client.post("/role-permissions", json=link, headers=admin)
    again = client.post("/role-permissions", json=link, headers=admin)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json() == again.get_json() == link
    listed = client.get(f"/role-permissions?role_id={clerk}", headers=admin).get_json()
    assert listed["items"] == [{"role_id": clerk, "permission_id": ids("permissions", "stock.read")}, link]
    assert listed["total"] == 2
    # Takes effect on the very next check.
    check = client.post("/check-token", json={"token": token, "service_id": "stock"}).get_json()
    assert check["payload"]["permissions"] == ["stock.read", "stock.write"]

    assert client.delete("/role-permissions", json=link, headers=admin).status_code == 204
    assert link not in client.get(f"/role-permissions?role_id={clerk}", headers=admin).get_json()["items"]
    check = client.post("/check-token", json={"token": token, "service_id": "stock"}).get_json()
    assert check["payload"]["permissions"] == ["stock.read"]


def test_role_permission_list_without_filter_shows_all(client, admin, test_database):
    body = client.get("/role-permissions", headers=admin).get_json()
    assert body["total"] == count(test_database, "role_permissions")
    assert len(body["items"]) == body["total"]


def test_link_delete_takes_query_parameters(client, admin, ids, test_database):
    clerk, stock_read = ids("roles", "clerk"), ids("permissions", "stock.read")

    response = client.delete(f"/role-permissions?role_id={clerk}&permission_id={stock_read}", headers=admin)

    assert response.status_code == 204
    assert count(test_database, "role_permissions", "role_id = %s", [clerk]) == 0


@pytest.mark.parametrize(
    ("path", "link", "missing"),
    [
        ("/role-permissions", {"role_id": 987654, "permission_id": ("permissions", "stock.read")}, "role 987654"),
        ("/role-permissions", {"role_id": ("roles", "clerk"), "permission_id": 987654}, "permission 987654"),
        ("/service-roles", {"service_id": 987654, "role_id": ("roles", "clerk")}, "service 987654"),
        ("/service-roles", {"service_id": "nosuch", "role_id": ("roles", "clerk")}, "service nosuch"),
        ("/service-roles", {"service_id": ("services", "stock"), "role_id": 987654}, "role 987654"),
        (
            "/person-service-roles",
            {"user_id": 987654, "service_id": ("services", "stock"), "role_id": ("roles", "clerk")},
            "user 987654",
        ),
        (
            "/person-service-roles",
            {"user_id": ("users", "bob"), "service_id": 987654, "role_id": ("roles", "clerk")},
            "service 987654",
        ),
        (
            "/person-service-roles",
            {"user_id": ("users", "bob"), "service_id": ("services", "stock"), "role_id": 987654},
            "role 987654",
        ),
    ],
)
@pytest.mark.parametrize("how", ["POST", "DELETE body", "DELETE query"])
def test_link_to_a_missing_id_is_404_naming_it(client, admin, ids, test_database, path, link, missing, how):
    data = {key: ids(*value) if isinstance(value, tuple) else value for key, value in link.items()}
    before = count(test_database, path.strip("/").replace("-", "_"))

    if how == "POST":
        response = client.post(path, json=data, headers=admin)
    elif how == "DELETE body":
        response = client.delete(path, json=data, headers=admin)
    else:
        response = client.delete(path, query_string=data, headers=admin)

    body = assert_error(response, 404, "not_found")
    assert missing in body["message"]
    assert count(test_database, path.strip("/").replace("-", "_")) == before


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/role-permissions", "role_id=987654"),
        ("/service-roles", "service_id=987654"),
        ("/service-roles", "service_id=nosuch"),
        ("/person-service-roles", "user_id=987654"),
        ("/person-service-roles", "service_id=nosuch"),
    ],
)
def test_link_filter_on_a_missing_id_is_404(client, admin, path, query):
    body = assert_error(client.get(f"{path}?{query}", headers=admin), 404, "not_found")
    assert query.split("=")[1] in body["message"]


@pytest.mark.parametrize("by", ["id", "name", "decimal string"])
def test_service_role_add_with_service_by_id_or_name(client, admin, ids, by):
    sales, clerk = ids("services", "sales"), ids("roles", "clerk")
    service_ref = {"id": sales, "name": "sales", "decimal string": str(sales)}[by]

    first = client.post("/service-roles", json={"service_id": service_ref, "role_id": clerk}, headers=admin)
    again = client.post("/service-roles", json={"service_id": sales, "role_id": clerk}, headers=admin)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json() == {"service_id": sales, "role_id": clerk}


@pytest.mark.parametrize("by", ["id", "name"])
def test_service_role_list_filters_by_service_id_or_name(client, admin, ids, by):
    stock = ids("services", "stock")

    body = client.get(f"/service-roles?service_id={stock if by == 'id' else 'stock'}", headers=admin).get_json()

    assert body["items"] == [{"service_id": stock, "role_id": ids("roles", "clerk")}]
    assert body["total"] == 1


@pytest.mark.parametrize("how", ["body", "query"])
def test_removing_a_service_role_takes_that_role_from_people_there(client, admin, api, ids, test_database, how):
    stock, clerk, alice = ids("services", "stock"), ids("roles", "clerk"), ids("users", "alice")
    token = api.login("alice")
    link = {"service_id": "stock", "role_id": clerk}

    if how == "body":
        response = client.delete("/service-roles", json=link, headers=admin)
    else:
        response = client.delete("/service-roles", query_string=link, headers=admin)

    assert response.status_code == 204
    assert count(test_database, "service_roles", "service_id = %s and role_id = %s", [stock, clerk]) == 0
    assert count(test_database, "person_service_roles", "service_id = %s", [stock]) == 0
    assert set(grants(client, admin, alice)) == {"sales"}
    assert client.post("/check-token", json={"token": token, "service_id": "stock"}).status_code == 403


def test_person_service_role_add_list_remove(client, admin, api, ids):
    bob, stock, clerk = ids("users", "bob"), ids("services", "stock"), ids("roles", "clerk")
    link = {"user_id": bob, "service_id": stock, "role_id": clerk}
    token = api.login("bob")
    assert client.post("/check-token", json={"token": token, "service_id": "stock"}).status_code == 403

    first = client.post("/person-service-roles", json={**link, "service_id": "stock"}, headers=admin)
    again = client.post("/person-service-roles", json=link, headers=admin)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json() == link
    assert link in client.get(f"/person-service-roles?user_id={bob}", headers=admin).get_json()["items"]
    assert grants(client, admin, bob)["stock"] == (["clerk"], ["stock.read"])
    assert client.post("/check-token", json={"token": token, "service_id": "stock"}).status_code == 200

    assert client.delete("/person-service-roles", json=link, headers=admin).status_code == 204
    assert "stock" not in grants(client, admin, bob)
    assert client.post("/check-token", json={"token": token, "service_id": "stock"}).status_code == 403


def test_person_service_role_delete_by_query(client, admin, ids, test_database):
    alice = ids("users", "alice")
    query = {"user_id": alice, "service_id": "stock", "role_id": ids("roles", "clerk")}

    assert client.delete("/person-service-roles", query_string=query, headers=admin).status_code == 204
    assert set(grants(client, admin, alice)) == {"sales"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("user_id={alice}", [("alice", "stock", "clerk"), ("alice", "sales", "seller")]),
        ("service_id=stock", [("alice", "stock", "clerk")]),
        ("service_id={stock}", [("alice", "stock", "clerk")]),
        ("user_id={alice}&service_id=sales", [("alice", "sales", "seller")]),
        ("user_id={bob}&service_id=sales", []),
        (
            "",
            [
                ("admin", "auth", "admin"),
                ("alice", "stock", "clerk"),
                ("alice", "sales", "seller"),
                ("bob", "manufacturing", "manager"),
            ],
        ),
    ],
)
def test_person_service_role_list_filters(client, admin, ids, query, expected):
    query = query.format(alice=ids("users", "alice"), bob=ids("users", "bob"), stock=ids("services", "stock"))

    body = client.get(f"/person-service-roles?{query}", headers=admin).get_json()

    want = [
        {"user_id": ids("users", u), "service_id": ids("services", s), "role_id": ids("roles", r)}
        for u, s, r in expected
    ]
    assert sorted(body["items"], key=lambda x: tuple(x.values())) == sorted(want, key=lambda x: tuple(x.values()))
    assert body["total"] == len(expected)


def test_a_role_not_assigned_to_the_service_cannot_be_given_there(client, admin, ids, test_database):
    before = count(test_database, "person_service_roles")
    link = {"user_id": ids("users", "bob"), "service_id": "stock", "role_id": ids("roles", "seller")}

    body = assert_error(client.post("/person-service-roles", json=link, headers=admin), 409, "conflict")

    assert "service" in body["message"]
    assert count(test_database, "person_service_roles") == before


def test_removing_a_link_that_is_not_there_is_fine(client, admin, ids, test_database):
    link = {"role_id": ids("roles", "clerk"), "permission_id": ids("permissions", "sales.write")}
    before = count(test_database, "role_permissions")
    assert client.delete("/role-permissions", json=link, headers=admin).status_code == 204
    assert count(test_database, "role_permissions") == before


@pytest.mark.parametrize(
    ("path", "link", "missing"),
    [
        ("/role-permissions", {"role_id": 1}, "permission_id"),
        ("/service-roles", {"role_id": 1}, "service_id"),
        ("/person-service-roles", {"user_id": 1, "service_id": "stock"}, "role_id"),
    ],
)
@pytest.mark.parametrize("how", ["POST", "DELETE body", "DELETE query"])
def test_link_needs_every_field(client, admin, test_database, path, link, missing, how):
    table = path.strip("/").replace("-", "_")
    before = count(test_database, table)

    if how == "POST":
        response = client.post(path, json=link, headers=admin)
    elif how == "DELETE body":
        response = client.delete(path, json=link, headers=admin)
    else:
        response = client.delete(path, query_string=link, headers=admin)

    body = assert_error(response, 400, "validation_error")
    assert body["fields"] == {missing: "is required"}
    assert count(test_database, table) == before


def test_delete_service_cascades_to_grants(client, admin, ids, test_database):
    sales, alice = ids("services", "sales"), ids("users", "alice")

    assert client.delete("/services/sales", headers=admin).status_code == 204

    assert set(grants(client, admin, alice)) == {"stock"}
    assert client.get(f"/person-service-roles?user_id={alice}", headers=admin).get_json()["total"] == 1
    assert count(test_database, "service_roles", "service_id = %s", [sales]) == 0
    # The role itself stays; it is only no longer given in that service.
    assert client.get(f"/roles/{ids('roles', 'seller')}", headers=admin).status_code == 200
