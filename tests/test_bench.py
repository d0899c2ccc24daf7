"""`make bench` cannot rot: a one-second run answers every request with 200 (with and without a
service key, and while 50 backends follow the revocation feed), prints the ratios to the trivial
endpoint and ends with the one the README quotes, renews only tokens that were due, and drops
its database."""

import asyncio
import re
import subprocess
import sys

import psutil

from bench import check_token
from tests.fixtures import ROOT, db_rows

RATIO = r"^ratio {}/trivial throughput=\d+\.\d\d server_cpu=\d+\.\d\d p99/p50=\d+\.\d\d$"
LAST = r"ratio check-token/trivial throughput=\d+\.\d\d server_cpu=\d+\.\d\d"
TABLE_ROW = r"^{} +\d+ +\d+ +\d+-\d+ +\d+\.\d\d +\d+\.\d\d +\d+ +(\d+\.\d\d) +(-?\d+\.\d\d) +\d+%$"
WRITES = r"^renewals during .*: (\d+) rows written, (\d+) answers renewed \(.*\), (\d+) fresh tokens written$"


def test_quick_bench_run_completes_and_prints_the_ratios(postgres):
    # On this session's test server: a bench leaves running a server it did not start.
    result = subprocess.run(
        [sys.executable, "-m", "bench.check_token", "--seconds", "1", "--tokens", "2000", "--pgdata", postgres.pgdata],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # A non-zero exit is also how the bench reports any answer other than 200.
    assert result.returncode == 0, result.stdout + result.stderr
    for endpoint in ("healthz", "check-token", "profile"):
        assert re.search(RATIO.format(endpoint), result.stdout, re.M), result.stdout
    assert re.fullmatch(LAST, result.stdout.splitlines()[-1]), result.stdout
    # Every target, loaded and alone, with the server's and PostgreSQL's CPU a request.
    targets = ("trivial Flask POST", "GET /healthz", "POST /check-token", "GET /auth/profile", "check-token +key")
    for target in (*targets, "+key, 50 followers"):
        assert re.search(TABLE_ROW.format(re.escape(target)), result.stdout, re.M), result.stdout
    # The rate of all rounds together lies within the spread of the single rounds.
    rows = re.findall(r"^\S.*? +\d+ +(\d+) +(\d+)-(\d+) ", result.stdout, re.M)
    assert len(rows) == 8, result.stdout
    for rate, low, high in rows:
        assert int(low) <= int(rate) <= int(high), result.stdout
    checks = re.findall(TABLE_ROW.format(re.escape("POST /check-token")), result.stdout, re.M)
    assert len(checks) == 2 and all(float(db) > 0 for _, db in checks), result.stdout
    writes = [tuple(map(int, found)) for found in re.findall(WRITES, result.stdout, re.M)]
    assert len(writes) == 4, result.stdout
    # The service key's cost, and that of 50 backends following the feed, next to plain checks.
    assert re.search(r"^ratio check-token with/without key throughput=\d+\.\d\d server_cpu=", result.stdout, re.M)
    assert re.search(r"^ratio check-token with/without 50 feed followers throughput=\d+\.\d\d ", result.stdout, re.M)
    # One row written per answer saying renewed, none for a token that was fresh; about one
    # request in ten meets a due token, so a run without any renewal means renewal broke.
    assert all(written == answered and fresh == 0 for written, answered, fresh in writes), result.stdout
    assert sum(written for written, _, _ in writes) > 0, result.stdout
    # Asked of the session's server, which must therefore still run.
    assert db_rows(postgres.server_url, "select 1 from pg_database where datname = 'auth_bench'") == []


def test_quick_revocation_bench_times_each_logout_to_its_refusal(postgres):
    result = subprocess.run(
        [sys.executable, "-m", "bench.revocations", "--logouts", "5", "--pgdata", postgres.pgdata],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"with the revocation feed, 5 logouts: p50 (\d+) ms, p99 (\d+) ms, max (\d+) ms$", result.stdout)
    assert found, result.stdout
    # Without the feed a cached read lives up to 60 s; with it, a logout reaches the cache at once.
    assert int(found[3]) < 5000, result.stdout


def test_quick_profile_names_where_the_workers_time_goes(postgres):
    result = subprocess.run(
        [sys.executable, "-m", "bench.profile", "--seconds", "2", "--tokens", "500", "--pgdata", postgres.pgdata],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    head = r"POST /check-token: 16 keep-alive clients, \d+ req/s while sampled; CPU a request: workers \d"
    assert re.match(head, result.stdout), result.stdout
    rows = {name: float(share) for share, name in re.findall(r"^ *(\d+\.\d)%  (.+)$", result.stdout, re.M)}
    # The hot path in front of Flask, and inside it the check and its one statement.
    assert rows["HotPath.__call__ (web/hot_path.py)"] >= rows["check (blueprints/tokens.py)"] > 0, result.stdout
    assert rows["Query.__call__ (db/queries.py)"] > 0, result.stdout


def test_clients_that_start_after_the_deadline_still_let_the_run_end():
    """Clients start one after another; one whose first answer comes after the deadline must
    still let the next start (and stop), or the run would wait for ever."""

    async def slow(conn):
        await asyncio.sleep(0.2)
        return 200, b"{}"

    me = psutil.Process()  # no children: the CPU figures are zero, which this test does not read
    target = check_token.Target("slow", 0, me, slow)
    phase = asyncio.run(asyncio.wait_for(check_token.load(target, me, 0.05, 4, False), timeout=10))
    assert len(phase.latencies) == 1 and phase.failures == {}
