"""Brute-force throttling of password checks (login, password change).

A check is admitted before the slow bcrypt call (committed, so parallel guesses see each
other) and judged after it: only a judged failure counts, so a database outage in between
never does. The rules are the contract's: per account and per client IP, doubling locks
with Retry-After. The SQL is auth.begin_login_attempt and auth.count_login_failure
(sql/40_security.sql).
"""

from flask import current_app

import db
from db import queries as q
from security import passwords
from web import audit
from web.client_ip import client_ip
from web.errors import ApiError, unauthorized

# Consecutive failures lock an account whenever they happened; this window is "forever".
NO_WINDOW = 2**31 - 1


class Attempt:
    """One admitted password check, keyed by its account and its client IP."""

    def __init__(self, account_key):
        cfg = current_app.config
        self.account_key, self.ip_key = account_key, f"ip:{client_ip()}"
        self.keys = {
            "keys": [self.account_key, self.ip_key],
            "limits": [cfg["LOGIN_ACCOUNT_MAX_FAILURES"], cfg["LOGIN_IP_MAX_FAILURES"]],
            "windows": [NO_WINDOW, cfg["LOGIN_IP_WINDOW_SECONDS"]],
        }

    def failed(self, event, user_id):
        """Count the failure (its own transaction) and audit it, and any lock it sets."""
        cfg = current_app.config
        with db.transaction() as conn:
            counts = q.count_login_failure(
                conn, **self.keys, base=cfg["LOGIN_LOCK_BASE_SECONDS"], cap=cfg["LOGIN_LOCK_MAX_SECONDS"]
            )
            audit.record(conn, event, user_id=user_id)
            for count in counts:
                if count["locked_for"] is not None:
                    scope = "ip" if count["key"] == self.ip_key else "account"
                    detail = {"scope": scope, "failures": count["failures"], "locked_for": count["locked_for"]}
                    audit.record(conn, "authn_login_lock", user_id=user_id, detail=detail)

    def succeeded(self, conn):
        """Close the attempt in the caller's transaction; the account's count starts over."""
        q.count_login_success(conn, account_key=self.account_key, ip_key=self.ip_key)


def account_key(user, login=None):
    """The account's throttle key: its id, or the name tried when it matches no account."""
    return f"user:{user['id']}" if user else f"login:{login.casefold()}"


def admit(conn, key):
    """Admit a password check against `key` and the client IP, or answer 429 with Retry-After.

    Commit `conn` before checking the password, so that parallel checks see this one.
    """
    attempt = Attempt(key)
    verdict = q.begin_login_attempt(conn, **attempt.keys)
    if verdict["blocked"]:
        seconds = verdict["retry_after"]
        raise ApiError(
            429,
            "too_many_attempts",
            f"too many failed password attempts; try again after {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
    return attempt


def check_current_password(user, password, fail_event):
    """Verify a signed-in user's current password as a login would be: admitted first (429 while
    locked), and a wrong one counted and answered 401, so a stolen token buys no extra guesses.

    Returns the attempt, to close with `succeeded` in the transaction that acts on it.
    """
    with db.transaction() as conn:
        attempt = admit(conn, account_key(user))
    if not passwords.verify_password(password, user["password_hash"], current_app.config["PASSWORD_PEPPER"]):
        attempt.failed(fail_event, user["id"])
        raise unauthorized("invalid_credentials", "the current password is wrong")
    return attempt
