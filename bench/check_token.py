"""`make bench`: /check-token and /auth/profile next to a trivial endpoint on the same gunicorn.

Builds a throwaway database (auth_bench) on an embedded PostgreSQL of its own (var/pgbench),
fills it with live tokens of many users, serves it with gunicorn.conf.py on a spare port,
and loads each endpoint in turn for a fixed time from one asyncio process with keep-alive
connections. Prints requests/s, p50, p99 and the server's CPU time a request per endpoint,
their ratios to GET /healthz (which touches no database), the renewals written, the
workers' memory and the size of tokens_cache. Any answer other than 200 fails the run,
so it never times error pages.

    python -m bench.check_token                               # 100k tokens, 12 s an endpoint
    python -m bench.check_token --seconds 3 --tokens 5000     # a quick look
"""

import argparse
import asyncio
import json
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import psycopg
from psycopg.types.json import Jsonb

import config
from devtools import embedded, local_gunicorn
from security.tokens import digest, new_token

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "auth_bench"
USERS = 1000
# Tokens whose digest starts with a byte below this (about one in ten) are made due for renewal.
DUE_BELOW = 26
SERVICE = "stock"  # every bench user is a clerk here (and a seller in "sales")
# Seeded, so every run spreads tokens over users and picks the tokens to send alike.
SAMPLE = random.Random(7878)  # noqa: S311 (picks load, not secrets)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.check_token", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=12,
        help="measured time per endpoint (default 12; keep it under TOKEN_RENEW_THRESHOLD_SECONDS)",
    )
    parser.add_argument("--tokens", type=int, default=100_000, help="live tokens in the table (default 100000)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive clients (default 16)")
    parser.add_argument(
        "--pgdata",
        type=Path,
        default=ROOT / "var" / "pgbench",
        help="embedded PostgreSQL to use (default var/pgbench); stopped at the end only if this run started it",
    )
    return parser.parse_args(argv)


def create_database(server_url):
    """A fresh auth_bench with the schema and the demo data, applied as `make db` does."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {DATABASE} with (force)")
        conn.execute(f"create database {DATABASE}")
    url = server_url.replace("/postgres?", f"/{DATABASE}?")
    local_gunicorn.load_demo(url)
    return url


def drop_database(server_url):
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {DATABASE} with (force)")


def seed_sessions(url, token_count):
    """Users with grants, and `token_count` live tokens spread over them; returns (token, user_id) pairs."""
    with psycopg.connect(url) as conn:
        user_ids = [
            row[0]
            for row in conn.execute(
                "insert into auth.users (username, name, password_hash)"
                " select 'bench' || i, 'Bench user ' || i, '!' from generate_series(1, %s) i returning id",
                (USERS,),
            )
        ]
        # Inserted directly: the grants a clerk in stock and a seller in sales would hold.
        conn.execute(
            """
            insert into auth.person_service_roles (user_id, service_id, role_id)
            select u.id, s.id, r.id
            from auth.users u
            cross join (values ('stock', 'clerk'), ('sales', 'seller')) as v(service, role)
            join auth.services s on s.name = v.service
            join auth.roles r on r.name = v.role
            where u.id = any(%s)
            """,
            (user_ids,),
        )
        sessions = [(new_token(config.TOKEN_SECRET), SAMPLE.choice(user_ids)) for _ in range(token_count)]
        # The deadlines are set by reset_ages before each phase.
        copy_sql = "copy auth.tokens_cache (token_hash, user_id, payload, expires_at) from stdin"
        with conn.cursor().copy(copy_sql) as copy:
            for token, user_id in sessions:
                payload = Jsonb({"user_id": user_id, "username": f"bench{user_id}"})
                copy.write_row((digest(token), user_id, payload, "infinity"))
    return sessions


def reset_ages(url):
    """Make every token fresh but about one in ten, which is made due for renewal (and stays live).

    Run before each phase, so each starts alike: a fresh token must then write nothing, a due one
    be written once. Returns the database time the phase starts from.
    """
    ttl, threshold = config.TOKEN_TTL_SECONDS, config.TOKEN_RENEW_THRESHOLD_SECONDS
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            with aged as (
                select token_hash, case
                    when get_byte(token_hash, 0) < %(due_below)s
                    then now() - make_interval(secs => %(threshold)s + 1 + random() * (%(ttl)s - %(threshold)s) / 2)
                    else now() end as modified_at
                from auth.tokens_cache
            )
            update auth.tokens_cache t
            set modified_at = aged.modified_at, expires_at = aged.modified_at + make_interval(secs => %(ttl)s)
            from aged
            where t.token_hash = aged.token_hash
            """,
            {"due_below": DUE_BELOW, "threshold": threshold, "ttl": ttl},
        )
        conn.execute("vacuum analyze auth.tokens_cache")
        return conn.execute("select clock_timestamp()").fetchone()[0]


def renewals_written(url, since):
    """Tokens written since `since`: all of them, and those that were fresh then (should be none)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select count(*), count(*) filter (where get_byte(token_hash, 0) >= %s)"
            " from auth.tokens_cache where modified_at >= %s",
            (DUE_BELOW, since),
        ).fetchone()


def table_size(url):
    """Rows of tokens_cache, and the bytes of its heap and of its indexes."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select count(*), pg_relation_size('auth.tokens_cache'), pg_indexes_size('auth.tokens_cache')"
            " from auth.tokens_cache"
        ).fetchone()


def postmaster_pid(pgdata):
    """The process id in `pgdata`'s postmaster.pid, or None without one."""
    pid_file = pgdata / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def server_running(pgdata):
    """Whether an embedded PostgreSQL already runs on `pgdata`."""
    pid = postmaster_pid(pgdata)
    return pid is not None and psutil.pid_exists(pid)


def cpu_seconds(parent):
    """CPU seconds the children of `parent` (gunicorn workers, PostgreSQL backends) have used so far."""
    total = 0.0
    for child in parent.children():
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


class Connection:
    """One keep-alive HTTP/1.1 connection, with just enough of the protocol for these endpoints.

    Not httpx: its AsyncClient spent about 1-2 ms of CPU a request here, so on two cores the
    load generator, not the service, set the pace. This costs about 50 us a request.
    """

    def __init__(self, port):
        self.port, self.reader, self.writer = port, None, None

    async def request(self, method, path, body=None, headers=()):
        """Send one request and return (status, body bytes); reconnects when the server closed."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", *headers]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write("\r\n".join([*lines, "", ""]).encode() + (body or b""))
        try:
            head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            length = re.search(r"\r\ncontent-length: *(\d+)", head)
            if length is None:
                raise ConnectionError("answer without Content-Length")
            content = await self.reader.readexactly(int(length.group(1)))
        except (ConnectionError, asyncio.IncompleteReadError):
            self.close()
            raise
        if "\r\nconnection: close" in head:
            self.close()
        return int(head[9:12]), content

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader, self.writer = None, None


@dataclass
class Phase:
    """What one endpoint's run measured."""

    name: str
    latencies: list = field(default_factory=list)  # seconds, one per 200 answer
    failures: dict = field(default_factory=dict)  # status (or error name) -> count
    renewed: int = 0  # answers saying "renewed": true
    written: int = 0  # tokens the database shows renewed during the run
    fresh_written: int = 0  # of those, tokens that were fresh when it started
    elapsed: float = 0.0
    client_cpu: float = 0.0  # this process's CPU seconds over the run
    app_cpu: float = 0.0  # the gunicorn workers' CPU seconds over the run
    db_cpu: float = 0.0  # PostgreSQL's CPU seconds over the run

    def cpu_ms(self, seconds):
        """CPU milliseconds a request: unlike throughput, barely moved by other load on the machine."""
        return seconds * 1000 / len(self.latencies)

    @property
    def rate(self):
        return len(self.latencies) / self.elapsed

    def percentile(self, share):
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def requests_for(sessions):
    """The three requests measured: name -> coroutine function(connection) -> (status, body)."""

    async def healthz(conn):
        return await conn.request("GET", "/healthz")

    async def check_token(conn):
        token, user_id = SAMPLE.choice(sessions)
        body = json.dumps({"token": token, "service_id": SERVICE, "user_id": user_id}).encode()
        return await conn.request("POST", "/check-token", body)

    async def profile(conn):
        token, _ = SAMPLE.choice(sessions)
        return await conn.request("GET", "/auth/profile", headers=[f"token: {token}"])

    return {"GET /healthz": healthz, "POST /check-token": check_token, "GET /auth/profile": profile}


async def load(servers, port, name, send, seconds, clients):
    """`clients` connections send `send` back to back for `seconds`; each times its own requests."""
    phase = Phase(name)
    app, db = servers
    started, cpu, app_cpu, db_cpu = time.perf_counter(), time.process_time(), cpu_seconds(app), cpu_seconds(db)
    deadline = started + seconds

    async def one_client():
        conn = Connection(port)
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                status, content = await send(conn)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                status = type(error).__name__
            took = time.perf_counter() - sent
            if status != 200:
                phase.failures[status] = phase.failures.get(status, 0) + 1
                continue
            phase.latencies.append(took)
            if name != "GET /healthz":
                phase.renewed += json.loads(content)["renewed"]
        conn.close()

    await asyncio.gather(*(one_client() for _ in range(clients)))
    phase.elapsed = time.perf_counter() - started
    phase.client_cpu = time.process_time() - cpu
    phase.app_cpu, phase.db_cpu = cpu_seconds(app) - app_cpu, cpu_seconds(db) - db_cpu
    return phase


async def run_phases(servers, port, url, sessions, args):
    """Warm every endpoint up, then measure each after resetting the token ages."""
    requests = requests_for(sessions)
    for name, send in requests.items():
        await load(servers, port, name, send, min(2.0, args.seconds / 2), args.clients)
    phases = []
    for name, send in requests.items():
        since = reset_ages(url)
        phase = await load(servers, port, name, send, args.seconds, args.clients)
        phase.written, phase.fresh_written = renewals_written(url, since)
        phases.append(phase)
    return phases


def ms(seconds):
    return f"{seconds * 1000:9.2f}"


def mib(size):
    return f"{size / 2**20:.1f} MiB"


def report(phases, rss, sizes, args):
    print(f"{args.tokens} live tokens of {USERS} users; {args.clients} keep-alive clients; {args.seconds:g} s each")
    print(
        f"gunicorn.conf.py: {config.WEB_CONCURRENCY} workers x {config.GUNICORN_THREADS} threads"
        f" on {psutil.cpu_count()} cores, shared with PostgreSQL and this client"
    )
    print("CPU ms a request: the gunicorn workers' (app) and PostgreSQL's (db); client CPU: the load generator's share")
    print(
        f"{'endpoint':<20}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}{'app':>7}{'db':>7}{'client CPU':>12}"
    )
    for p in phases:
        print(
            f"{p.name:<20}{p.rate:8.0f}{ms(p.percentile(0.5))}{ms(p.percentile(0.99))}{len(p.latencies):>10}"
            f"{p.cpu_ms(p.app_cpu):7.2f}{p.cpu_ms(p.db_cpu):7.2f}{p.client_cpu / p.elapsed:>12.0%}"
        )
    base = phases[0]
    for p in phases[1:]:
        throughput = p.rate / base.rate
        p50, p99 = (p.percentile(share) / base.percentile(share) for share in (0.5, 0.99))
        cpu = p.cpu_ms(p.app_cpu + p.db_cpu) / base.cpu_ms(base.app_cpu + base.db_cpu)
        name = p.name.rsplit("/", 1)[1]
        print(f"ratio {name}/healthz: throughput {throughput:.2f}, p50 {p50:.2f}, p99 {p99:.2f}, server CPU {cpu:.2f}")
    for p in phases[1:]:
        print(
            f"renewals during {p.name}: {p.written} rows written, {p.renewed} answers renewed"
            f" ({p.renewed / len(p.latencies):.1%} of requests), {p.fresh_written} fresh tokens written"
        )
    print(f"gunicorn workers RSS: {', '.join(mib(r) for r in rss)} (total {mib(sum(rss))})")
    (rows, heap, indexes), (_, heap_after, indexes_after) = sizes
    print(
        f"tokens_cache: {rows} rows; table {mib(heap)} + indexes {mib(indexes)} as loaded,"
        f" {mib(heap_after)} + {mib(indexes_after)} after the run's age resets"
    )


def main(argv=None):
    args = parse_args(argv)
    started_server = not server_running(args.pgdata)
    server_url = embedded.start(args.pgdata)
    log_dir = Path(tempfile.mkdtemp(prefix="auth-bench-"))
    server = None
    try:
        url = create_database(server_url)
        sessions = seed_sessions(url, args.tokens)
        loaded = table_size(url)
        server = local_gunicorn.start({"DATABASE_URL": url}, log_dir / "gunicorn.log")
        port = urlsplit(server.url).port
        servers = psutil.Process(server.process.pid), psutil.Process(postmaster_pid(args.pgdata))
        phases = asyncio.run(run_phases(servers, port, url, sessions, args))
        failed = {p.name: p.failures for p in phases if p.failures}
        if failed:
            log_tail = (log_dir / "gunicorn.log").read_text(errors="replace")[-4000:]
            sys.exit(f"requests failed (status or error: count): {failed}\ngunicorn's log ends:\n{log_tail}")
        rss = [worker.memory_info().rss for worker in servers[0].children()]
        report(phases, rss, (loaded, table_size(url)), args)
    finally:
        if server is not None:
            server.stop()
        drop_database(server_url)
        if started_server:
            embedded.stop(args.pgdata)
        shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
