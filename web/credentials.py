"""Passwords as the service handles them: the policy and hash of a new one, the check of a given
one against a user (or, for an unknown user, against a hash of the same cost), and the
rehash of a verified one whose cost or pepper is out of date (security/passwords.py does
the cryptography)."""

import logging
import time

from flask import current_app

import db
from db import queries as q
from security import passwords
from web.errors import ApiError

log = logging.getLogger("auth.credentials")

COST_CACHE_SECONDS = 600  # how long a worker reuses the cost of the stored hashes


def peppers():
    """The configured peppers, newest first."""
    cfg = current_app.config
    return passwords.Peppers(cfg["PASSWORD_PEPPER"], cfg["PASSWORD_OLD_PEPPERS"])


def new_hash(password, username, user_inputs=(), field="password"):
    """(hash, pepper id) of a password someone wants to set, or 400 naming `field` and saying why not."""
    check_policy(password, username, user_inputs, field)
    return make_hash(password)


def make_hash(password):
    """(hash, pepper id) of a password, with the newest pepper and the configured cost."""
    cfg = current_app.config
    return passwords.hash_password(password, cfg["PASSWORD_PEPPER"], cfg["BCRYPT_ROUNDS"]), peppers().newest_id


def check_policy(password, username, user_inputs=(), field="password"):
    """400 naming `field` unless the policy accepts the password (cheap: no hash is made)."""
    cfg = current_app.config
    problem = passwords.policy_problem(
        password, username, cfg["PASSWORD_MIN_LENGTH"], cfg["PASSWORD_MAX_LENGTH"], user_inputs
    )
    if problem:
        raise ApiError(400, "validation_error", f"{field} {problem}", fields={field: problem})


def verify(user, password):
    """Whether `password` is the user's; for no user, the same work against a made-up hash."""
    if user is None:
        pepper = peppers().newest
        passwords.verify_password(password, passwords.dummy_hash(pepper, stored_cost()), pepper)
        return False
    pepper = peppers().of(user["pepper_id"])
    if pepper is None:
        # Still the cost of a check, so this answer takes the time of any other.
        log.error("user %s has a hash made with pepper %s, which is not configured", user["id"], user["pepper_id"])
        verify(None, password)
        return False
    return passwords.verify_password(password, user["password_hash"], pepper)


def stored_cost():
    """The bcrypt cost of most stored hashes (the configured one while there are none), read
    at most every COST_CACHE_SECONDS: an unknown user's check must cost what a real one does."""
    cached = current_app.extensions.setdefault("stored_hash_cost", {"value": None, "read_at": float("-inf")})
    now = time.monotonic()
    if now - cached["read_at"] > COST_CACHE_SECONDS:
        with db.connection() as conn:
            cached["value"] = q.stored_hash_cost(conn)
        cached["read_at"] = now
    return cached["value"] or current_app.config["BCRYPT_ROUNDS"]


def fresh_hash(user, password):
    """After a successful check: the password hashed with the newest pepper and the configured
    cost, as rehash_password's parameters, when the stored hash has another; else None."""
    cfg = current_app.config
    if not passwords.needs_rehash(user["password_hash"], user["pepper_id"], peppers(), cfg["BCRYPT_ROUNDS"]):
        return None
    password_hash, pepper_id = make_hash(password)
    return {"password_hash": password_hash, "pepper_id": pepper_id}
