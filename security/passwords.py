"""Password hashing and policy (OWASP Password Storage Cheat Sheet).

bcrypt reads only 72 bytes, so the NFKC-normalized password is first pre-hashed with
HMAC-SHA-256 keyed by a server-side pepper and base64-encoded (44 bytes), then bcrypt'd.

Peppers rotate: the configuration lists them newest first, each stored hash records the id
of the pepper it was made with (`pepper_id`, a digest that reveals nothing of the pepper),
and a successful login rehashes with the newest pepper and the configured cost.
"""

import base64
import hashlib
import hmac
import secrets
import unicodedata
from functools import lru_cache

import bcrypt

MIN_SCORE = 3  # zxcvbn's "safely unguessable: moderate protection from offline slow-hash attacks"


def normalize(password):
    """NFKC, so the same password typed on different keyboards is the same password."""
    return unicodedata.normalize("NFKC", password)


def pepper_id(pepper):
    """The id a hash records for its pepper: a short digest, so the database tells nothing of it."""
    return hashlib.sha256(b"eqeqo-pepper-id:" + pepper.encode()).hexdigest()[:12]


class Peppers:
    """The configured peppers, newest first; the oldest also serves hashes that record none."""

    def __init__(self, newest, older=()):
        self.all = [newest, *older]
        self.newest, self.newest_id = newest, pepper_id(newest)
        self.by_id = {pepper_id(pepper): pepper for pepper in self.all}

    def of(self, stored_pepper_id):
        """The pepper a hash was made with, or None when it is not configured (any more)."""
        if stored_pepper_id is None:
            return self.all[-1]
        return self.by_id.get(stored_pepper_id)


def _prehash(password, pepper):
    mac = hmac.new(pepper.encode(), normalize(password).encode("utf-8", "surrogatepass"), hashlib.sha256)
    return base64.b64encode(mac.digest())


def hash_password(password, pepper, rounds):
    """The string stored in users.password_hash; users.pepper_id records the pepper."""
    return bcrypt.hashpw(_prehash(password, pepper), bcrypt.gensalt(rounds)).decode()


def verify_password(password, stored_hash, pepper):
    """Constant-time check of a password against its stored hash; any length is just a mismatch."""
    return bcrypt.checkpw(_prehash(password, pepper), stored_hash.encode())


def cost(stored_hash):
    """The bcrypt cost a stored hash was made with."""
    return int(stored_hash.split("$")[2])


def needs_rehash(stored_hash, stored_pepper_id, peppers, rounds):
    """Whether a hash that just verified should be made again: another cost, or an older pepper."""
    return cost(stored_hash) != rounds or stored_pepper_id != peppers.newest_id


@lru_cache(maxsize=8)
def dummy_hash(pepper, rounds):
    """A hash of a random password, checked for unknown users so their timing matches real ones."""
    return hash_password(secrets.token_urlsafe(16), pepper, rounds)


# zxcvbn is imported where a password is judged: its lists add 12 MiB to a worker, and most
# workers only ever check tokens.


@lru_cache(maxsize=1)
def _common_passwords():
    # zxcvbn's list of the 30,000 most common passwords (from leaked password sets).
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def policy_problem(password, username, min_len, max_len, user_inputs=()):
    """Why this password may not be set, or None: length, common passwords, the username,
    and a guessability score below MIN_SCORE (zxcvbn, told the user's own names and email).

    No composition rules (NIST SP 800-63B): length, a blocklist and the estimate protect better.
    """
    normalized = normalize(password)
    if not min_len <= len(normalized) <= max_len:
        return f"must be {min_len} to {max_len} characters long"
    folded = normalized.casefold()
    if folded in _common_passwords():
        return "is too common; choose another"
    if username and username.casefold() in folded:
        return "must not contain the username"
    from zxcvbn import zxcvbn

    inputs = [value for value in (username, *user_inputs) if value]
    estimate = zxcvbn(normalized, user_inputs=inputs, max_length=max_len)
    if estimate["score"] < MIN_SCORE:
        feedback = estimate["feedback"]
        advice = " ".join(filter(None, [feedback["warning"], *feedback["suggestions"]]))
        return f"is too easy to guess; {advice or 'add more words'}".rstrip()
    return None
