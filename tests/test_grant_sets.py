"""auth.grant_sets (migration 0008) is auth.user_grants aggregated, and stays so whatever
changes grants, however two writers race: check-token reads its grants there.

Each test starts from the demo data (`app` restores it): alice is a clerk in stock (stock.read)
and a seller in sales (sales.read, sales.write); bob a manager in manufacturing; admin the
administrator of auth.
"""

import threading
import time

import psycopg
import pytest

from tests.fixtures import db_rows

# Rows where the table and the view disagree, whichever side is missing.
STALE = """
with fresh as (
    select g.user_id, g.service_id,
           array_agg(distinct g.role order by g.role) as roles,
           coalesce(array_agg(distinct g.permission order by g.permission)
                    filter (where g.permission is not null), '{}') as permissions
    from auth.user_grants g
    group by g.user_id, g.service_id
)
select f.user_id, f.service_id, f.roles, f.permissions, s.user_id as kept_user_id, s.roles as kept_roles,
       s.permissions as kept_permissions
from fresh f
full join auth.grant_sets s on s.user_id = f.user_id and s.service_id = f.service_id
where f.user_id is null or s.user_id is null or f.roles <> s.roles or f.permissions <> s.permissions
"""


def grants_of(url, username):
    return {
        row["service"]: (row["roles"], row["permissions"])
        for row in db_rows(
            url,
            "select s.name as service, g.roles, g.permissions from auth.grant_sets g"
            " join auth.users u on u.id = g.user_id join auth.services s on s.id = g.service_id"
            " where u.username = %s",
            [username],
        )
    }


CHANGES = {
    "a role given": "insert into auth.person_service_roles (user_id, service_id, role_id)"
    " select u.id, s.id, r.id from auth.users u, auth.services s, auth.roles r"
    " where u.username = 'bob' and s.name = 'stock' and r.name = 'clerk'",
    "a role taken": "delete from auth.person_service_roles"
    " where user_id = (select id from auth.users where username = 'alice')"
    " and role_id = (select id from auth.roles where name = 'seller')",
    "a permission added to a role": "insert into auth.role_permissions (role_id, permission_id)"
    " select r.id, p.id from auth.roles r, auth.permissions p where r.name = 'clerk' and p.name = 'stock.write'",
    "a permission taken from a role": "delete from auth.role_permissions"
    " where role_id = (select id from auth.roles where name = 'seller')"
    " and permission_id = (select id from auth.permissions where name = 'sales.write')",
    "a role renamed": "update auth.roles set name = 'storeman' where name = 'clerk'",
    "a permission renamed": "update auth.permissions set name = 'sales.edit' where name = 'sales.write'",
    "a service disabled": "update auth.services set active = false where name = 'sales'",
    "a role deleted": "delete from auth.roles where name = 'seller'",
    "a permission deleted": "delete from auth.permissions where name = 'stock.read'",
    "a service deleted": "delete from auth.services where name = 'stock'",
    "a user deleted": "delete from auth.users where username = 'alice'",
    "a role taken from nobody": "delete from auth.person_service_roles where false",
}


def test_the_demo_data_is_aggregated(app, test_database):
    assert db_rows(test_database, STALE) == []
    assert grants_of(test_database, "alice") == {
        "stock": (["clerk"], ["stock.read"]),
        "sales": (["seller"], ["sales.read", "sales.write"]),
    }


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_of_grants_is_aggregated_in_its_transaction(app, test_database, change):
    before = db_rows(test_database, "select * from auth.grant_sets order by user_id, service_id")
    with psycopg.connect(test_database) as conn:
        conn.execute(CHANGES[change])
        # Inside the writing transaction already: nobody can read a committed change without it.
        assert conn.execute(STALE).fetchall() == []
    assert db_rows(test_database, STALE) == []
    after = db_rows(test_database, "select * from auth.grant_sets order by user_id, service_id")
    assert (after == before) == (change == "a role taken from nobody")


def test_a_reenabled_service_gets_its_grants_back(app, test_database):
    db_rows(test_database, "update auth.services set active = false where name = 'sales'")
    assert "sales" not in grants_of(test_database, "alice")
    db_rows(test_database, "update auth.services set active = true where name = 'sales'")
    assert grants_of(test_database, "alice")["sales"] == (["seller"], ["sales.read", "sales.write"])


def waiters_for_the_grants_lock(url):
    return db_rows(url, "select count(*) as n from pg_locks where locktype = 'advisory' and not granted")[0]["n"]


@pytest.mark.parametrize("first", ["a role given", "a permission added to a role"])
def test_two_writers_racing_leave_no_stale_set(app, test_database, first):
    """Bob becomes a clerk while stock.write is added to clerk, in two open transactions: the
    second waits for the first to commit and reads its row, so bob ends with stock.write."""
    second = next(name for name in ("a role given", "a permission added to a role") if name != first)
    errors = []

    def write_second():
        try:
            with psycopg.connect(test_database) as conn:
                conn.execute(CHANGES[second])
        except Exception as error:  # reported below, not lost in the thread
            errors.append(error)

    with psycopg.connect(test_database) as conn:
        conn.execute(CHANGES[first])
        racer = threading.Thread(target=write_second)
        racer.start()
        deadline = time.monotonic() + 5
        while waiters_for_the_grants_lock(test_database) == 0 and racer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        # Still open, so the other writer cannot have read this transaction's row.
    racer.join(timeout=10)

    assert errors == [] and not racer.is_alive()
    assert db_rows(test_database, STALE) == []
    assert grants_of(test_database, "bob")["stock"] == (["clerk"], ["stock.read", "stock.write"])


def test_check_token_answers_from_the_aggregated_grants(api, test_database):
    token = api.login("alice")
    db_rows(test_database, "update auth.grant_sets set roles = '{from-the-table}' where roles = '{clerk}'")
    body = api.client.post("/check-token", json={"token": token, "service_id": "stock"}).get_json()
    assert body["payload"]["roles"] == ["from-the-table"]
