"""Password hashing and policy (OWASP Password Storage Cheat Sheet).

bcrypt reads only 72 bytes, so the NFKC-normalized password is first pre-hashed with
HMAC-SHA-256 keyed by a server-side pepper and base64-encoded (44 bytes), then bcrypt'd.
"""

import base64
import hashlib
import hmac
import secrets
import unicodedata
from functools import lru_cache

import bcrypt
from zxcvbn.frequency_lists import FREQUENCY_LISTS


def normalize(password):
    """NFKC, so the same password typed on different keyboards is the same password."""
    return unicodedata.normalize("NFKC", password)


def _prehash(password, pepper):
    mac = hmac.new(pepper.encode(), normalize(password).encode("utf-8", "surrogatepass"), hashlib.sha256)
    return base64.b64encode(mac.digest())


def hash_password(password, pepper, rounds):
    """The string stored in users.password_hash."""
    return bcrypt.hashpw(_prehash(password, pepper), bcrypt.gensalt(rounds)).decode()


def verify_password(password, stored_hash, pepper):
    """Constant-time check of a password against its stored hash; any length is just a mismatch."""
    return bcrypt.checkpw(_prehash(password, pepper), stored_hash.encode())


@lru_cache(maxsize=4)
def dummy_hash(pepper, rounds):
    """A hash of a random password, checked for unknown users so their timing matches real ones."""
    return hash_password(secrets.token_urlsafe(16), pepper, rounds)


@lru_cache(maxsize=1)
def _common_passwords():
    # zxcvbn's list of the 30,000 most common passwords (from leaked password sets).
    return frozenset(FREQUENCY_LISTS["passwords"])


def policy_problem(password, username, min_len, max_len):
    """Why this password may not be set, or None: length, common passwords, the username.

    No composition rules (NIST SP 800-63B): length and a blocklist protect better.
    """
    normalized = normalize(password)
    if not min_len <= len(normalized) <= max_len:
        return f"must be {min_len} to {max_len} characters long"
    folded = normalized.casefold()
    if folded in _common_passwords():
        return "is too common; choose another"
    if username and username.casefold() in folded:
        return "must not contain the username"
    return None
