"""`make profile`: where a gunicorn worker's time goes while it answers one target under load.

Builds the bench database (as bench/check_token.py does), serves it with gunicorn.conf.py,
loads one target with keep-alive clients, and meanwhile samples both workers with py-spy
(`--gil`: only the thread holding the GIL, so the shares are of the Python time that competes
for the worker). Prints requests/s, the CPU a request costs the workers and PostgreSQL, and
the functions that took the largest shares of the samples, each counted once per sample in
which it is on the stack (so a caller includes its callees). py-spy must be allowed to read
the workers' memory: as root, or with ptrace allowed for the user.

    python -m bench.profile                          # check-token, 10 s, top 40 frames
    python -m bench.profile --target profile --top 60
"""

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from bench.check_token import ROOT, bench_database, load, postmaster_pid, reset_ages, seed_sessions, targets
from devtools import local_gunicorn

TARGETS = {"healthz": 1, "check-token": 2, "profile": 3}  # their places in bench.check_token.targets
RATE = 250  # samples a second per worker


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="check-token", help="what to load")
    parser.add_argument("--seconds", type=float, default=10, help="sampled time (default 10)")
    parser.add_argument("--tokens", type=int, default=20_000, help="live tokens in the table (default 20000)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--top", type=int, default=40, help="functions to list (default 40)")
    parser.add_argument("--pgdata", type=Path, default=ROOT / "var" / "pgbench", help="embedded PostgreSQL to use")
    return parser.parse_args(argv)


def py_spy():
    """The py-spy command, from this virtualenv or the PATH."""
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        sys.exit("py-spy is not installed: make install (requirements-dev.txt) brings it")
    return found


def function(frame):
    """'name (path/of/file.py)' of a py-spy raw frame 'name (path/of/file.py:line)'."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def shares(raw_files):
    """(samples in all, {function: samples with it on the stack}) from py-spy's raw output."""
    total, counts = 0, collections.Counter()
    for path in raw_files:
        for line in path.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            total += int(samples)
            for name in {function(frame) for frame in stack.split(";")}:
                counts[name] += int(samples)
    return total, counts


def record(spy, workers, directory, seconds):
    """Start one py-spy a worker, sampling for `seconds`; returns [(process, its output file)]."""
    runs = []
    for worker in workers:
        output = directory / f"worker-{worker.pid}.txt"
        command = [spy, "record", "--pid", str(worker.pid), "--gil", "--nonblocking", "--rate", str(RATE)]
        command += ["--duration", str(max(1, round(seconds))), "--format", "raw", "--output", str(output)]
        runs.append((subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), output))
    return runs


def main(argv=None):
    args = parse_args(argv)
    spy = py_spy()
    with bench_database(args.pgdata) as (url, log_dir):
        sessions = seed_sessions(url, args.tokens)
        server = local_gunicorn.start({"DATABASE_URL": url}, log_dir / "gunicorn.log")
        try:
            postgres = psutil.Process(postmaster_pid(args.pgdata))
            service = (urlsplit(server.url).port, psutil.Process(server.process.pid))
            target = targets((0, None), service, sessions)[TARGETS[args.target]]
            asyncio.run(load(target, postgres, 2, args.clients, False))  # warm up
            reset_ages(url)
            runs = record(spy, service[1].children(), log_dir, args.seconds)
            time.sleep(0.5)  # py-spy attached before the load starts
            phase = asyncio.run(load(target, postgres, max(0.5, args.seconds - 1), args.clients, False))
            for process, _ in runs:
                _, errors = process.communicate(timeout=args.seconds + 30)
                if process.returncode != 0:
                    sys.exit(f"py-spy failed: {errors.strip()}")
            total, counts = shares(output for _, output in runs)
        finally:
            server.stop()
    if phase.failures:
        sys.exit(f"requests failed (status or error: count): {phase.failures}")
    print(
        f"{target.name}: {args.clients} keep-alive clients, {phase.rate:.0f} req/s while sampled;"
        f" CPU a request: workers {phase.cpu_ms(phase.app_cpu):.3f} ms, PostgreSQL {phase.cpu_ms(phase.db_cpu):.3f} ms"
    )
    print(f"{total} samples of the workers' GIL holder; share of samples with the function on the stack:")
    for name, count in counts.most_common(args.top):
        print(f"{count / total:7.1%}  {name}")


if __name__ == "__main__":
    main()
