"""`make bench`: /check-token and /auth/profile next to a trivial Flask endpoint, in one run.

Builds a throwaway database (auth_bench) on an embedded PostgreSQL of its own (var/pgbench),
fills it with live tokens of many users, serves it with gunicorn.conf.py on a spare port,
and serves bench/trivial.py (a Flask JSON POST with nothing else) with the same worker
class, workers, threads and keep-alive. Then loads each target in turn for a fixed time, in
interleaved rounds, from one asyncio process, with keep-alive connections (or a new one per
request), and once more with a single client for the latency of one request alone. Prints requests/s, p50,
p99, and the CPU time a request costs the server's workers and PostgreSQL, per target; the
renewals written; the workers' memory; and last the line

    ratio check-token/trivial throughput=<x> server_cpu=<y>

Any answer other than 200 fails the run, so it never times error pages.

    python -m bench.check_token                               # 100k tokens, 10 s a target
    python -m bench.check_token --seconds 3 --tokens 5000     # a quick look
    python -m bench.check_token --gunicorn-args="--worker-class sync --workers 4 --threads 1"
"""

import argparse
import asyncio
import contextlib
import datetime
import json
import random
import re
import shlex
import shutil
import socket
import subprocess
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
SERVICE_KEY = "eqsk_demo_stock_key_not_secret"  # the demo data's key of service stock
FOLLOWERS = 50  # backends following the revocation feed with long polls, in the last target
# Seeded, so every run spreads tokens over users and picks the tokens to send alike.
SAMPLE = random.Random(7878)  # noqa: S311 (picks load, not secrets)


def positive(text):
    """An argparse type: a whole number of at least 1."""
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.check_token", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=10,
        help="measured time per target (default 10; keep it under TOKEN_RENEW_THRESHOLD_SECONDS)",
    )
    parser.add_argument(
        "--rounds",
        type=positive,
        default=5,
        help="interleaved rounds the time of each target is split over (default 5)",
    )
    parser.add_argument("--tokens", type=int, default=100_000, help="live tokens in the table (default 100000)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument(
        "--fresh-connections",
        action="store_true",
        help="open a new connection for every request, as a backend without keep-alive does",
    )
    parser.add_argument(
        "--gunicorn-args",
        default="",
        help="gunicorn options for both servers on top of gunicorn.conf.py, e.g. '--worker-class sync'",
    )
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


@contextlib.contextmanager
def bench_database(pgdata):
    """A fresh auth_bench on the embedded PostgreSQL of `pgdata` (started unless it runs), and a
    folder for logs; yields (its URL, the folder). Afterwards the database is dropped, the
    folder removed, and the server stopped if this started it."""
    started_server = not server_running(pgdata)
    server_url = embedded.start(pgdata)
    log_dir = Path(tempfile.mkdtemp(prefix="auth-bench-"))
    try:
        yield create_database(server_url), log_dir
    finally:
        drop_database(server_url)
        if started_server:
            embedded.stop(pgdata)
        shutil.rmtree(log_dir, ignore_errors=True)


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
        # Live for the whole run; reset_ages sets the deadlines again before each phase.
        copy_sql = "copy auth.tokens_cache (token_hash, user_id, payload, expires_at) from stdin"
        until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        with conn.cursor().copy(copy_sql) as copy:
            for token, user_id in sessions:
                payload = Jsonb({"user_id": user_id, "username": f"bench{user_id}"})
                copy.write_row((digest(token), user_id, payload, until))
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
        # Written out now, not by the checkpointer and the background writer during the phase.
        conn.execute("checkpoint")
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
    """One HTTP/1.1 connection, with just enough of the protocol for these endpoints; kept alive,
    or closed after each answer (`fresh`).

    Not httpx: its AsyncClient spent about 1-2 ms of CPU a request here, so on two cores the
    load generator, not the service, set the pace. This costs about 50 us a request.
    """

    def __init__(self, port, fresh=False):
        self.port, self.fresh, self.reader, self.writer = port, fresh, None, None

    async def request(self, method, path, body=None, headers=()):
        """Send one request and return (status, body bytes); reconnects when the server closed."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", *headers]
        if self.fresh:
            lines.append("Connection: close")
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
        if self.fresh or "\r\nconnection: close" in head:
            self.close()
        return int(head[9:12]), content

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader, self.writer = None, None


@dataclass
class Target:
    """One endpoint to load: its name, its server's port and master process, and its request."""

    name: str
    port: int
    server: psutil.Process  # gunicorn's master; its children are the workers
    send: object  # coroutine function (connection) -> (status, body)
    renews: bool = False  # whether its answers say "renewed"
    followers: int = 0  # backends following the revocation feed meanwhile


@dataclass
class Phase:
    """What one run of a target measured."""

    target: Target
    clients: int
    latencies: list = field(default_factory=list)  # seconds, one per 200 answer
    failures: dict = field(default_factory=dict)  # status (or error name) -> count
    renewed: int = 0  # answers saying "renewed": true
    written: int = 0  # tokens the database shows renewed during the run
    fresh_written: int = 0  # of those, tokens that were fresh when it started
    elapsed: float = 0.0
    client_cpu: float = 0.0  # this process's CPU seconds over the run
    app_cpu: float = 0.0  # the target server's workers' CPU seconds over the run
    db_cpu: float = 0.0  # PostgreSQL's CPU seconds over the run
    round_rates: list = field(default_factory=list)  # requests/s of each round

    def add(self, other):
        """Take in the figures of another round of the same target."""
        self.round_rates.append(other.rate)
        self.latencies += other.latencies
        for status, count in other.failures.items():
            self.failures[status] = self.failures.get(status, 0) + count
        for name in ("renewed", "written", "fresh_written", "elapsed", "client_cpu", "app_cpu", "db_cpu"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def cpu_ms(self, seconds):
        """CPU milliseconds a request: unlike throughput, barely moved by other load on the machine."""
        return seconds * 1000 / len(self.latencies)

    @property
    def rate(self):
        return len(self.latencies) / self.elapsed

    def percentile(self, share):
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def targets(trivial, service, sessions):
    """The four targets: the trivial anchor, /healthz, /check-token and /auth/profile."""
    trivial_port, trivial_server = trivial
    port, server = service

    async def anchor(conn):
        token, user_id = SAMPLE.choice(sessions)
        body = json.dumps({"token": token, "service_id": SERVICE, "user_id": user_id}).encode()
        return await conn.request("POST", "/check-token", body)

    async def keyed(conn):
        token, user_id = SAMPLE.choice(sessions)
        body = json.dumps({"token": token, "service_id": SERVICE, "user_id": user_id}).encode()
        return await conn.request("POST", "/check-token", body, headers=[f"service-token: {SERVICE_KEY}"])

    async def healthz(conn):
        return await conn.request("GET", "/healthz")

    async def profile(conn):
        token, _ = SAMPLE.choice(sessions)
        return await conn.request("GET", "/auth/profile", headers=[f"token: {token}"])

    return [
        Target("trivial Flask POST", trivial_port, trivial_server, anchor),
        Target("GET /healthz", port, server, healthz),
        Target("POST /check-token", port, server, anchor, renews=True),
        Target("GET /auth/profile", port, server, profile, renews=True),
        Target("check-token +key", port, server, keyed, renews=True),
        Target("+key, 50 followers", port, server, keyed, renews=True, followers=FOLLOWERS),
    ]


async def follow_feed(port, deadline):
    """One backend following GET /revocations with long polls until `deadline`, as the SDK does."""
    conn, key = Connection(port), [f"service-token: {SERVICE_KEY}"]
    _, content = await conn.request("GET", "/revocations", headers=key)
    cursor = json.loads(content)["cursor"]
    while (wait := min(25, int(deadline - time.perf_counter()))) >= 1:
        status, content = await conn.request("GET", f"/revocations?after={cursor}&wait={wait}", headers=key)
        page = json.loads(content)
        cursor = page["cursor"]
        if not page["events"] and status == 200:
            await asyncio.sleep(min(1, max(0, deadline - time.perf_counter())))  # Retry-After, or the wait ran out
    # Less than a second left: a follower asks for a wait of whole seconds, and one of none
    # would be a loop of requests.
    await asyncio.sleep(max(0, deadline - time.perf_counter()))
    conn.close()


async def load(target, postgres, seconds, clients, fresh):
    """`clients` connections send the target's request back to back for `seconds`; each times its own.

    The clients come one after another, each once the one before has its first answer, as
    backends reconnect over time rather than all in the same instant: gthread workers share
    one listening socket, and a burst of connections to idle workers may all go to the first
    to wake, while a connection made under load goes to the worker free to accept it."""
    phase = Phase(target, clients)
    started, cpu = time.perf_counter(), time.process_time()
    app_cpu, db_cpu = cpu_seconds(target.server), cpu_seconds(postgres)
    deadline = started + seconds
    answered = [asyncio.Event() for _ in range(clients + 1)]  # client i starts on event i
    answered[0].set()

    async def one_client(number):
        conn = Connection(target.port, fresh)
        await answered[number].wait()
        try:
            await requests(conn, number)
        finally:  # the next client starts even when this one met the deadline before an answer
            answered[number + 1].set()
            conn.close()

    async def requests(conn, number):
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                status, content = await target.send(conn)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                status = type(error).__name__
            took = time.perf_counter() - sent
            answered[number + 1].set()
            if status != 200:
                phase.failures[status] = phase.failures.get(status, 0) + 1
                continue
            phase.latencies.append(took)
            if target.renews:
                # Not json.loads: the anchor's answers are not parsed either, so both cost the
                # load generator alike. The service's JSON is compact (orjson).
                phase.renewed += b'"renewed":true' in content

    followers = [follow_feed(target.port, deadline) for _ in range(target.followers if clients > 1 else 0)]
    await asyncio.gather(*(one_client(number) for number in range(clients)), *followers)
    phase.elapsed = time.perf_counter() - started
    phase.client_cpu = time.process_time() - cpu
    phase.app_cpu, phase.db_cpu = cpu_seconds(target.server) - app_cpu, cpu_seconds(postgres) - db_cpu
    return phase


async def run_phases(all_targets, postgres, url, args):
    """Warm every target up, then measure each with all clients, and the anchor and check-token
    with one, resetting the token ages before each that renews. The time of each is split over
    `args.rounds` interleaved rounds, each on new connections, whose figures are added up: a
    round whose keep-alive connections happened to land on one worker (gthread workers share
    one listening socket, and a burst of connections may all go to the first to wake) weighs
    in once, not for the whole run, and the report shows the spread of the rounds."""
    for target in all_targets:
        await load(target, postgres, min(2.0, args.seconds / 2), args.clients, args.fresh_connections)
    runs = [(target, args.clients) for target in all_targets] + [(all_targets[0], 1), (all_targets[2], 1)]
    phases = [Phase(target, clients) for target, clients in runs]
    for _ in range(args.rounds):
        for total, (target, clients) in zip(phases, runs, strict=True):
            since = reset_ages(url) if target.renews else None
            phase = await load(target, postgres, args.seconds / args.rounds, clients, args.fresh_connections)
            if since is not None:
                phase.written, phase.fresh_written = renewals_written(url, since)
            total.add(phase)
    return phases


def ms(seconds):
    return f"{seconds * 1000:9.2f}"


def mib(size):
    return f"{size / 2**20:.1f} MiB"


def report(phases, rss, sizes, settings, args):
    connections = "a new connection per request" if args.fresh_connections else "keep-alive connections"
    print(
        f"{args.tokens} live tokens of {USERS} users; {args.clients} clients on {connections};"
        f" {args.seconds:g} s each, in {args.rounds} interleaved rounds"
    )
    print(f"gunicorn: {settings}, on {psutil.cpu_count()} cores shared with PostgreSQL and this client")
    print(
        "CPU ms a request: the target's gunicorn workers (app) and PostgreSQL (db); client: the load generator;"
        " rounds: the lowest and highest req/s of a round"
    )
    print(
        f"{'target':<20}{'clients':>8}{'req/s':>8}{'rounds':>12}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}"
        f"{'app':>7}{'db':>7}{'client CPU':>12}"
    )
    for p in phases:
        spread = f"{min(p.round_rates):.0f}-{max(p.round_rates):.0f}"
        print(
            f"{p.target.name:<20}{p.clients:>8}{p.rate:8.0f}{spread:>12}{ms(p.percentile(0.5))}"
            f"{ms(p.percentile(0.99))}{len(p.latencies):>10}{p.cpu_ms(p.app_cpu):7.2f}{p.cpu_ms(p.db_cpu):7.2f}"
            f"{p.client_cpu / p.elapsed:>12.0%}"
        )
    loaded = [p for p in phases if p.clients == args.clients]
    alone = {p.target.name: p for p in phases if p.clients == 1}
    for p in loaded:
        if p.target.renews:
            print(
                f"renewals during {p.target.name}: {p.written} rows written, {p.renewed} answers renewed"
                f" ({p.renewed / len(p.latencies):.1%} of requests), {p.fresh_written} fresh tokens written"
            )
    print(f"service workers RSS: {', '.join(mib(r) for r in rss)} (total {mib(sum(rss))})")
    (rows, heap, indexes), (_, heap_after, indexes_after) = sizes
    print(
        f"tokens_cache: {rows} rows; table {mib(heap)} + indexes {mib(indexes)} as loaded,"
        f" {mib(heap_after)} + {mib(indexes_after)} after the run's age resets"
    )
    check, anchor = alone["POST /check-token"], alone["trivial Flask POST"]
    print(
        f"single client p50: check-token {ms(check.percentile(0.5)).strip()} ms, trivial"
        f" {ms(anchor.percentile(0.5)).strip()} ms, ratio {check.percentile(0.5) / anchor.percentile(0.5):.2f}"
    )
    trivial = loaded[0]
    for p in loaded[1:4]:
        name = p.target.name.rsplit("/", 1)[1]
        print(
            f"ratio {name}/trivial throughput={p.rate / trivial.rate:.2f}"
            f" server_cpu={p.cpu_ms(p.app_cpu) / trivial.cpu_ms(trivial.app_cpu):.2f}"
            f" p99/p50={p.percentile(0.99) / p.percentile(0.5):.2f}"
        )
    check, keyed, followed = loaded[2], loaded[4], loaded[5]
    print(
        f"ratio check-token with/without key throughput={keyed.rate / check.rate:.2f}"
        f" server_cpu={keyed.cpu_ms(keyed.app_cpu) / check.cpu_ms(check.app_cpu):.2f}"
    )
    print(
        f"ratio check-token with/without {FOLLOWERS} feed followers throughput={followed.rate / keyed.rate:.2f}"
        f" server_cpu={followed.cpu_ms(followed.app_cpu) / keyed.cpu_ms(keyed.app_cpu):.2f}"
    )
    print(
        f"ratio check-token/trivial throughput={check.rate / trivial.rate:.2f}"
        f" server_cpu={check.cpu_ms(check.app_cpu) / trivial.cpu_ms(trivial.app_cpu):.2f}"
    )


def gunicorn_settings():
    """Worker class, workers, threads and keep-alive of the service (config.py), as gunicorn options."""
    return [
        f"--worker-class={config.GUNICORN_WORKER_CLASS}",
        f"--workers={config.WEB_CONCURRENCY}",
        f"--threads={config.GUNICORN_THREADS}",
        f"--keep-alive={config.GUNICORN_KEEPALIVE_SECONDS}",
    ]


def worker_in_use(log):
    """The worker class gunicorn says it started: with threads above 1 it runs gthread even when
    asked for sync."""
    found = re.search(r"Using worker: (\w+)", log)
    return found[1] if found else "unknown"


def start_trivial(args, log_path):
    """bench/trivial.py under the same settings on a spare port; (port, process)."""
    port = local_gunicorn.free_port()
    command = [sys.executable, "-m", "gunicorn", *gunicorn_settings(), *shlex.split(args.gunicorn_args)]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, f"--bind=127.0.0.1:{port}", "trivial:app"],
            cwd=ROOT / "bench",  # where no gunicorn.conf.py is read by default
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return port, process
        time.sleep(0.2)
    process.kill()
    sys.exit(f"the trivial server did not start:\n{log_path.read_text()[-2000:]}")


def main(argv=None):
    args = parse_args(argv)
    with bench_database(args.pgdata) as (url, log_dir):
        sessions = seed_sessions(url, args.tokens)
        loaded = table_size(url)
        env = {"DATABASE_URL": url, "GUNICORN_CMD_ARGS": args.gunicorn_args}
        server = trivial = None
        try:
            server = local_gunicorn.start(env, log_dir / "gunicorn.log")
            trivial = start_trivial(args, log_dir / "trivial.log")
            postgres = psutil.Process(postmaster_pid(args.pgdata))
            service = (urlsplit(server.url).port, psutil.Process(server.process.pid))
            all_targets = targets((trivial[0], psutil.Process(trivial[1].pid)), service, sessions)
            phases = asyncio.run(run_phases(all_targets, postgres, url, args))
            failed = {p.target.name: p.failures for p in phases if p.failures}
            if failed:
                log_tail = (log_dir / "gunicorn.log").read_text(errors="replace")[-4000:]
                sys.exit(f"requests failed (status or error: count): {failed}\ngunicorn's log ends:\n{log_tail}")
            rss = [worker.memory_info().rss for worker in service[1].children()]
            settings = " ".join([*gunicorn_settings(), args.gunicorn_args]).strip()
            settings += f" (worker in use: {worker_in_use(server.log())})"
            report(phases, rss, (loaded, table_size(url)), settings, args)
        finally:
            if trivial is not None:
                trivial[1].terminate()
                trivial[1].wait(15)
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
