"""The one decision core behind the Flask extension and the WSGI middleware.

A backend asks POST /check-token before it serves a request. The contract lets
it reuse a `valid` answer for reads for at most 60 seconds and makes every
write ask again, so a revoked token loses write access at once and read access
within the cache window. Concurrent identical checks share one upstream call.

With a service key, the guard also follows the revocation feed (GET /revocations)
from a background thread and forgets at once what each event names: a logged-out
token, a user whose grants or status changed, a service whose roles changed. So
reads stay cached for the whole window and still lose access within about a
second of a logout. A feed that is lost, or that answers 410, empties the cache;
until it is back, the window alone bounds what is served from it.
"""

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .client import AuthClient
from .errors import AuthError, BadRequest, CursorExpired, Forbidden, InvalidToken
from .models import Revocation, TokenPayload

MAX_CACHE_SECONDS = 60  # the contract's limit on reusing a check-token answer
FEED_WAIT_SECONDS = 25  # the longest the service holds a feed request open
FEED_RETRY_SECONDS = 1.0  # pause after a failed feed request
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

log = logging.getLogger("eqeqo_auth_client")

_Key = tuple[str, str, str | None]


def token_from_headers(token_header: str | None, authorization: str | None) -> str | None:
    """Take the token from the `token` header, else from `Authorization: Bearer`."""
    if token_header and token_header.strip():
        return token_header.strip()
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


@dataclass(frozen=True)
class Denial:
    """An HTTP answer refusing a request, ready for Flask or raw WSGI."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def denial_for(error: AuthError) -> Denial:
    """Turn a failed check into 401, 403 or, failing closed, 503."""
    # A token the service will not even parse (say, over-long) is as dead as an unknown one.
    if isinstance(error, InvalidToken) or (isinstance(error, BadRequest) and "token" in error.fields):
        message = (
            "a token is required" if error.code == "missing_token" else "the token is invalid or expired: log in again"
        )
        return _denial(401, "Unauthorized", "invalid_token", message)
    if isinstance(error, (Forbidden, BadRequest)):
        return _denial(403, "Forbidden", "forbidden", error.message)
    log.warning("auth service unavailable, refusing the request: %s", error.message)
    return _denial(503, "Service Unavailable", "auth_unavailable", "the auth service cannot be reached")


def _denial(status: int, reason: str, code: str, message: str) -> Denial:
    """Build a JSON error answer in the contract's shape."""
    headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
    if status == 401:
        headers.append(("WWW-Authenticate", f'Bearer error="{code}"'))
    body = json.dumps({"error": code, "message": message}).encode() + b"\n"
    return Denial(status, reason, tuple(headers), body)


class _Flight:
    """One upstream check that identical concurrent reads wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.payload: TokenPayload | None = None
        self.error: BaseException | None = None


class TokenGuard:
    """Decides whether a request's token may do what the request asks."""

    def __init__(
        self,
        client: AuthClient,
        *,
        cache_seconds: float = MAX_CACHE_SECONDS,
        clock: Callable[[], float] = time.time,
        max_entries: int = 10_000,
        follow_revocations: bool | None = None,
    ) -> None:
        if not 0 <= cache_seconds <= MAX_CACHE_SECONDS:
            raise ValueError(f"cache_seconds must be between 0 and {MAX_CACHE_SECONDS}")
        self.client = client
        self.cache_seconds = cache_seconds
        self.clock = clock
        self.max_entries = max_entries
        self._cache: OrderedDict[_Key, tuple[TokenPayload, float]] = OrderedDict()
        self._flights: dict[_Key, _Flight] = {}
        self._lock = threading.Lock()
        # Moves on with every eviction: an answer fetched before one is not cached after it.
        self._epoch = 0
        self.feed: RevocationFollower | None = None
        if follow_revocations if follow_revocations is not None else client.has_service_key:
            self.feed = RevocationFollower(self)
            self.feed.start()

    def close(self) -> None:
        """Stop following the feed."""
        if self.feed is not None:
            self.feed.stop()

    def clear(self) -> None:
        """Forget every cached answer."""
        with self._lock:
            self._cache.clear()
            self._epoch += 1

    def forget(self, events: tuple[Revocation, ...]) -> int:
        """Forget the cached answers the feed's events name; returns how many went."""
        if not events:
            return 0
        tokens = {e.token_hash for e in events if e.kind == "token"}
        users = {(e.user_id, e.service_id) for e in events if e.kind == "user"}
        services = {e.service_id for e in events if e.kind == "service"}

        def stale(key: _Key, payload: TokenPayload) -> bool:
            return (
                key[0] in tokens
                or (payload.user_id, None) in users
                or (payload.user_id, payload.service_id) in users
                or payload.service_id in services
            )

        with self._lock:
            self._epoch += 1
            gone = [key for key, (payload, _) in self._cache.items() if stale(key, payload)]
            for key in gone:
                del self._cache[key]
        return len(gone)

    def authorize(
        self,
        token: str | None,
        service: int | str,
        *,
        method: str,
        user_id: int | str | None = None,
        permission: str | None = None,
        role: str | None = None,
    ) -> TokenPayload:
        """Return the payload, or raise InvalidToken, Forbidden or AuthUnavailable."""
        if not token:
            raise InvalidToken("no token", code="missing_token")
        # The raw token never becomes a key: a dump of the cache hands out no session.
        digest = hashlib.sha256(token.encode()).hexdigest()
        key = (digest, str(service), None if user_id is None else str(user_id))
        if method.upper() in SAFE_METHODS:
            payload = self._read(key, token, service, user_id)
        else:
            payload = self._ask(key, token, service, user_id)
        if permission is not None and permission not in payload.permissions:
            raise Forbidden(f"permission {permission} is required in service {service}")
        if role is not None and role not in payload.roles:
            raise Forbidden(f"role {role} is required in service {service}")
        return payload

    def _read(self, key: _Key, token: str, service: int | str, user_id: int | str | None) -> TokenPayload:
        """Answer from the cache, else join or lead the one upstream check."""
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and self.clock() < cached[1]:
                return cached[0]
            flight = self._flights.get(key)
            leading = flight is None
            if leading:
                flight = self._flights[key] = _Flight()
        if not leading:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.payload
        try:
            flight.payload = self._ask(key, token, service, user_id)
            return flight.payload
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _ask(self, key: _Key, token: str, service: int | str, user_id: int | str | None) -> TokenPayload:
        """Ask the auth service; cache a valid answer for reads, drop a refused one."""
        with self._lock:
            epoch = self._epoch
        try:
            check = self.client.check_token(token, service, user_id)
        except (InvalidToken, Forbidden, BadRequest):
            with self._lock:
                self._cache.pop(key, None)
            raise
        now = self.clock()
        # Never past the token's end, whether judged by our clock (expires_in)
        # or by the service's (expires_at), so clock skew cannot stretch it.
        fresh_for = min(self.cache_seconds, check.expires_in, check.expires_at - now)
        with self._lock:
            if fresh_for > 0 and epoch == self._epoch:
                self._cache[key] = (check.payload, now + fresh_for)
                self._cache.move_to_end(key)
                while len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
            else:
                self._cache.pop(key, None)
        return check.payload


class RevocationFollower:
    """Follows GET /revocations in a daemon thread, and makes the guard forget what each event names."""

    def __init__(self, guard: TokenGuard, wait: int = FEED_WAIT_SECONDS) -> None:
        self.guard, self.wait = guard, wait
        self.healthy = False  # following, with nothing missed since the cache was last emptied
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eqeqo-auth-revocations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the request at hand (at most `wait` seconds)."""
        self._stop.set()

    def _run(self) -> None:
        cursor: str | None = None
        while not self._stop.is_set():
            try:
                if cursor is None:
                    cursor = self.guard.client.revocations().cursor
                    # What is cached now was never checked against the events before this cursor.
                    self.guard.clear()
                    self.healthy = True
                page = self.guard.client.revocations(cursor, wait=self.wait)
                self.guard.forget(page.events)
                cursor = page.cursor
                if page.retry_after and not page.events:
                    self._stop.wait(page.retry_after)
            except CursorExpired:
                log.warning("revocation feed: events were missed (410); the cache is emptied")
                cursor = None
                self._lose()
            except AuthError as error:
                if self._stop.is_set():
                    return  # the client was closed under the request at hand
                log.warning("revocation feed lost, the cache is emptied: %s", error.message)
                self._lose()
                self._stop.wait(FEED_RETRY_SECONDS)

    def _lose(self) -> None:
        self.healthy = False
        self.guard.clear()
