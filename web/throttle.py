"""Brute-force throttling of password checks (login, password change, one's own credentials).

A check is admitted while none of its keys is locked (a plain read, before the slow bcrypt
call) and judged after it (auth.judge_login_attempt, sql/migrations/0003.credentials.sql):
only a judged failure counts, so a database outage in between never does, and an attempt
judged while parallel attempts have locked a key meanwhile gets 429 whatever its password,
so at most the limit of parallel guesses get an answer that depends on the password.

The keys: the client address ("ip:<address>"), and the account: "user:<id>" for an address
new to it, "user:<id>@<address>" for an address that logged into it within
KNOWN_ADDRESS_DAYS (so a guesser elsewhere cannot lock the owner out), or "login:<name>"
for a name that matches no account (so it behaves like one). Counts start over once a
key's last failure is older than its window.
"""

from flask import current_app

import db
import mail
from db import queries as q
from web import audit, credentials
from web.client_ip import client_ip
from web.errors import ApiError, unauthorized


def too_many(seconds):
    """429 with Retry-After."""
    return ApiError(
        429,
        "too_many_attempts",
        f"too many failed password attempts; try again after {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


class Attempt:
    """One password check, keyed by its account (as seen from its address) and its address."""

    def __init__(self, user, login, known_address):
        cfg = current_app.config
        self.user, self.ip = user, client_ip()
        if user is None:
            self.account_key = f"login:{login.casefold()}"
        elif known_address:
            self.account_key = f"user:{user['id']}@{self.ip}"
        else:
            self.account_key = f"user:{user['id']}"
        self.ip_key = f"ip:{self.ip}"
        self.keys = {
            "keys": [self.account_key, self.ip_key],
            "limits": [cfg["LOGIN_ACCOUNT_MAX_FAILURES"], cfg["LOGIN_IP_MAX_FAILURES"]],
            "windows": [cfg["LOGIN_ACCOUNT_WINDOW_SECONDS"], cfg["LOGIN_IP_WINDOW_SECONDS"]],
            "base": cfg["LOGIN_LOCK_BASE_SECONDS"],
            "cap": cfg["LOGIN_LOCK_MAX_SECONDS"],
        }

    def failed(self, event):
        """Judge the check failed, in its own transaction, and audit it; 429 if locked meanwhile."""
        user_id = self.user and self.user["id"]
        with db.transaction() as conn:
            counts = q.judge_login_attempt(conn, **self.keys, failed=True, reset=[])
            if counts and counts[0]["blocked_for"]:
                raise too_many(counts[0]["blocked_for"])
            audit.record(conn, event, user_id=user_id)
            for count in counts:
                if count["locked_for"] is not None:
                    self.locked(conn, count)

    def locked(self, conn, count):
        """Audit a lock this failure set; tell the owner when it is the account-wide one, once a window."""
        scope = "ip" if count["key"] == self.ip_key else "account"
        detail = {"scope": scope, "failures": count["failures"], "locked_for": count["locked_for"]}
        user_id = self.user and self.user["id"]
        audit.record(conn, "authn_login_lock", user_id=user_id, detail=detail)
        first = count["failures"] == current_app.config["LOGIN_ACCOUNT_MAX_FAILURES"]
        if count["key"] == f"user:{user_id}" and first and self.user["email"]:
            mail.account_locked(conn, self.user["email"], self.user["username"], self.ip)

    def succeeded(self, conn, reset=True):
        """Judge the check right, in the caller's transaction: 429 if locked meanwhile, else the
        account's count (as seen from this address) starts over; an address's count stays, or
        one good account would let an address guess at every other. `reset=False` for a right
        password whose second factor is still to come: its count must survive the password."""
        keys = [self.account_key] if reset else []
        counts = q.judge_login_attempt(conn, **self.keys, failed=False, reset=keys)
        if counts and counts[0]["blocked_for"]:
            raise too_many(counts[0]["blocked_for"])


def admit(conn, user, login=None):
    """Admit a password check for `user` (None: `login` matches no account), or 429."""
    known = user is not None and q.is_known_address(
        conn, user_id=user["id"], ip=client_ip(), days=current_app.config["KNOWN_ADDRESS_DAYS"]
    )
    attempt = Attempt(user, login, known)
    wait = q.login_blocked(conn, keys=attempt.keys["keys"])
    if wait:
        raise too_many(wait)
    return attempt


def check_current_password(user, password, fail_event):
    """Verify a signed-in user's current password as a login would be: admitted first (429 while
    locked), and a wrong one counted and answered 401, so a stolen token buys no extra guesses.

    Returns the attempt, to close with `succeeded` in the transaction that acts on it.
    """
    with db.connection() as conn:
        attempt = admit(conn, user)
    if not credentials.verify(user, password):
        attempt.failed(fail_event)
        raise unauthorized("invalid_credentials", "the current password is wrong")
    return attempt
