"""`make bench`, second part: how long a backend that caches reads still serves a token after
its logout, with the revocation feed (the SDK's guard holding a service key) and without it.

Serves a bench database (as bench/check_token.py builds it) with gunicorn.conf.py. For each of
`--logouts` sessions, a thread reads through one shared TokenGuard (so the answer is cached),
logs the token out at the service, then reads again every 10 ms until the guard refuses it:
the time from the logout's answer to that refusal is the figure. With the feed the logouts are
spread over a few seconds; without it (`--without-feed`, about two minutes) each read is
cached at a random moment of the 60 s window and every token is logged out at its end, so the
figure is what the window leaves of each cached answer.

    python -m bench.revocations                  # 200 logouts, with the feed
    python -m bench.revocations --without-feed   # the same, the guard without a service key
"""

import argparse
import random
import statistics
import threading
import time
from pathlib import Path

import httpx
from eqeqo_auth_client import AuthClient, InvalidToken, TokenGuard
from eqeqo_auth_client.guard import MAX_CACHE_SECONDS

from bench.check_token import SERVICE, SERVICE_KEY, bench_database, seed_sessions
from devtools import local_gunicorn

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.01
PICK = random.Random(7879)  # noqa: S311 (spreads load, not secrets)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.revocations", description=__doc__.split("\n\n")[0])
    parser.add_argument("--logouts", type=int, default=200, help="sessions logged out (default 200)")
    parser.add_argument("--without-feed", action="store_true", help="a guard without a service key (about 2 min)")
    parser.add_argument("--pgdata", type=Path, default=ROOT / "var" / "pgbench")
    return parser.parse_args(argv)


def one_session(guard, base_url, token, read_at, logout_at, latencies):
    """Cache a read at `read_at`, log out at `logout_at` (perf_counter times), and time the refusal."""
    time.sleep(max(0, read_at - time.perf_counter()))
    guard.authorize(token, SERVICE, method="GET")
    time.sleep(max(0, logout_at - time.perf_counter()))
    httpx.post(f"{base_url}/auth/logout", headers={"token": token}, timeout=10).raise_for_status()
    logged_out = time.perf_counter()
    while True:
        try:
            guard.authorize(token, SERVICE, method="GET")
        except InvalidToken:
            latencies.append(time.perf_counter() - logged_out)
            return
        time.sleep(POLL_SECONDS)


def measure(base_url, sessions, with_feed):
    """Latencies (seconds) from each logout to the guard's first refusal."""
    with AuthClient(base_url, service_key=SERVICE_KEY if with_feed else None) as client:
        guard = TokenGuard(client)
        if with_feed:
            while not guard.feed.healthy:
                time.sleep(0.01)
        start, latencies = time.perf_counter() + 0.5, []
        if with_feed:
            times = [(start + i * 0.05, start + i * 0.05 + 0.02) for i in range(len(sessions))]
        else:
            end = start + MAX_CACHE_SECONDS
            times = [(start + PICK.uniform(0, MAX_CACHE_SECONDS - 1), end) for _ in sessions]
        threads = [
            threading.Thread(target=one_session, args=(guard, base_url, token, read_at, logout_at, latencies))
            for (token, _), (read_at, logout_at) in zip(sessions, times, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        guard.close()
    return sorted(latencies)


def main(argv=None):
    args = parse_args(argv)
    with bench_database(args.pgdata) as (url, log_dir):
        sessions = seed_sessions(url, args.logouts)
        server = local_gunicorn.start({"DATABASE_URL": url}, log_dir / "gunicorn.log")
        try:
            latencies = measure(server.url, sessions, not args.without_feed)
        finally:
            server.stop()
    how = "without the feed (cache window 60 s)" if args.without_feed else "with the revocation feed"
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(
        f"revocation to refusal at a caching backend, {how}, {len(latencies)} logouts:"
        f" p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms,"
        f" max {latencies[-1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
