"""Wakes the long polls of GET /revocations as soon as PostgreSQL says the feed has grown.

The triggers of auth.revocations send NOTIFY auth_revocations when their transaction commits.
One LISTEN connection per worker, opened by the first long poll, is read by a thread that
wakes every waiting poll at once; so a thousand waiting polls cost one connection, not one
each. A waiting poll still holds one of the worker's threads, so at most
FEED_WAITERS_PER_WORKER wait at a time and the rest answer at once (README, Backends).
A notification can be lost with its connection, so a waiting poll also looks again every
RECHECK_SECONDS.
"""

import logging
import threading

import psycopg

CHANNEL = "auth_revocations"
RECHECK_SECONDS = 1.0

log = logging.getLogger(__name__)


class ChangeSignal:
    """A worker's view of NOTIFY auth_revocations: a counter that moves on each, and slots for waiters."""

    def __init__(self, app):
        cfg = app.config
        self.pool = app.extensions["db_pool"]
        self.conninfo = cfg["DATABASE_URL"]
        self.connect_timeout = cfg["DB_CONNECT_TIMEOUT_SECONDS"]
        self.slots = threading.BoundedSemaphore(cfg["FEED_WAITERS_PER_WORKER"])
        self.changed = threading.Condition()
        self.generation = 0
        self._listener = None
        self._start = threading.Lock()

    def wait(self, seen, timeout):
        """Block until the counter moves past `seen`, or `timeout` seconds pass."""
        self._listen()
        with self.changed:
            self.changed.wait_for(lambda: self.generation != seen, timeout)

    def _listen(self):
        with self._start:
            if self._listener is None or not self._listener.is_alive():
                self._listener = threading.Thread(target=self._run, name="revocations-listener", daemon=True)
                self._listener.start()

    def _wake(self):
        with self.changed:
            self.generation += 1
            self.changed.notify_all()

    def _run(self):
        """LISTEN until the app's pool closes (the worker is ending); reconnect after a failure."""
        while not self.pool.closed:
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=self.connect_timeout) as conn:
                    conn.execute(f"listen {CHANNEL}")
                    self._wake()  # whatever was published while nobody listened
                    while not self.pool.closed:
                        for _ in conn.notifies(timeout=RECHECK_SECONDS, stop_after=1):
                            self._wake()
            except psycopg.Error as error:
                log.warning("revocation listener lost its connection: %s", type(error).__name__)
                with self.changed:
                    self.changed.wait(RECHECK_SECONDS)
