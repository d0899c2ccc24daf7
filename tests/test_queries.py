"""db/queries.py: a statement marked `prepared` answers exactly as the same text run through a
psycopg cursor, and fails as psycopg would."""

import threading

import psycopg
import pytest
from psycopg.rows import dict_row

import config
from db import queries as q
from db.queries import Query
from security.tokens import digest
from tests.fixtures import db_rows

STOCK_KEY = "eqsk_demo_stock_key_not_secret"


@pytest.fixture
def conn(test_database):
    with psycopg.connect(test_database, autocommit=True, options="-c timezone=UTC") as conn:
        yield conn


def through_a_cursor(conn, query, params):
    return conn.cursor(row_factory=dict_row).execute(query.sql, params).fetchone()


def check_params(token, **overrides):
    params = {
        "token_hash": digest(token),
        "ttl": config.TOKEN_TTL_SECONDS,
        "max_lifetime": config.TOKEN_MAX_LIFETIME_SECONDS,
        "threshold": config.TOKEN_RENEW_THRESHOLD_SECONDS,
        "service_id": None,
        "service_name": "stock",
        "user_id": None,
        "key_hash": None,
    }
    return {**params, **overrides}


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"service_name": None, "service_id": 2},
        {"service_name": "no such service"},
        {"service_name": "auth"},
        {"user_id": 1},
        {"user_id": 2**40},
        {"key_hash": digest(STOCK_KEY)},
        {"key_hash": b"\x00" * 32},
        {"token_hash": b"\xff" * 32},
    ],
    ids=["by name", "by id", "unknown service", "no role", "user", "other user", "key", "unknown key", "dead"],
)
def test_a_prepared_statement_answers_as_a_cursor_does(api, conn, overrides):
    assert q.check_token.prepared
    params = check_params(api.login("alice"), **overrides)
    for _ in range(2):  # the first call prepares, the second runs what was prepared
        assert q.check_token(conn, **params) == through_a_cursor(conn, q.check_token, params)


def test_text_with_percent_signs_and_repeated_names():
    query = Query("sum", "^", "-- adds\nselect %(a)s::int + %(b)s::int as s, %(a)s::int as a, '5%%' as pct", "t", True)
    assert query.statement[1] == b"select $1::int + $2::int as s, $1::int as a, '5%' as pct"
    assert query.params == ["a", "b"]


def test_only_a_one_row_query_can_be_prepared():
    with pytest.raises(ValueError, match="only a one-row query"):
        Query("many", "", "select 1", "t", True)


def test_values_of_every_kind_go_and_come_back(conn):
    query = Query(
        "echo", "^", "select %(n)s::bigint as n, %(t)s::text as t, %(b)s::bytea as b, %(z)s::int as z", "t", True
    )
    row = query(conn, n=-(2**62), t="ñ'\\\"%s", b=b"\x00\\\xff", z=None)
    assert row == {"n": -(2**62), "t": "ñ'\\\"%s", "b": b"\x00\\\xff", "z": None}
    assert Query("none", "^", "select 1 as one where %(x)s::bool", "t", True)(conn, x=False) is None


def test_an_error_is_psycopgs_and_leaves_the_connection_usable(conn):
    query = Query("divide", "^", "select 1 / %(d)s::int as x", "t", True)
    with pytest.raises(psycopg.errors.DivisionByZero):
        query(conn, d=0)
    assert query(conn, d=1) == {"x": 1}
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_statement_dropped_behind_its_back_is_prepared_again(api, conn):
    """psycopg runs DEALLOCATE ALL when its own cache of prepared statements overflows."""
    params = check_params(api.login("alice"))
    first = q.check_token(conn, **params)
    conn.execute("deallocate all")
    assert q.check_token(conn, **params) == first


def test_inside_a_transaction_a_dropped_statement_costs_nothing(api, conn):
    """There a failed Execute would abort the transaction, so the statement is not tried."""
    params = check_params(api.login("alice"))
    first = q.check_token(conn, **params)
    conn.execute("deallocate all")
    with conn.transaction():
        assert q.check_token(conn, **params) == first
        assert conn.execute("select 1").fetchone() == (1,)  # the transaction lives on


def test_a_lost_connection_is_an_operational_error(test_database, conn):
    """So the app answers 503 and the pool drops the connection, as for any outage."""
    query = Query("one", "^", "select %(x)s::int as x", "t", True)
    assert query(conn, x=1) == {"x": 1}
    db_rows(test_database, f"select pg_terminate_backend({conn.info.backend_pid})")
    with pytest.raises(psycopg.OperationalError):
        query(conn, x=1)


def test_threads_on_connections_of_their_own_get_their_own_answers(test_database):
    query = Query("echo", "^", "select %(n)s::int as n, pg_backend_pid() as pid", "t", True)
    wrong = []

    def run(n):
        with psycopg.connect(test_database, autocommit=True) as own:
            for i in range(200):
                row = query(own, n=n * 1000 + i)
                if row != {"n": n * 1000 + i, "pid": own.info.backend_pid}:
                    wrong.append(row)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
