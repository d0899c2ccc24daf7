"""Session tokens and reset codes: generated from the OS CSPRNG, stored only as digests."""

import hashlib
import secrets
import time

RANDOM_BYTES = 32  # 256 bits of randomness in every token and reset code


def new_token(secret):
    """hash(secret + random + timestamp), as the contract asks: 64 hex characters, 256 bits."""
    material = secret.encode() + secrets.token_bytes(RANDOM_BYTES) + str(time.time_ns()).encode()
    return hashlib.sha256(material).hexdigest()


def new_reset_code():
    """A single-use reset code, URL-safe so it travels in a link."""
    return secrets.token_urlsafe(RANDOM_BYTES)


def digest(secret_text):
    """What the database stores and looks up instead of the secret itself."""
    return hashlib.sha256(secret_text.encode("utf-8", "surrogatepass")).digest()


def fingerprint(secret_text):
    """A short digest prefix for logs: tells requests apart, reveals nothing usable."""
    if not secret_text:
        return "-"
    return digest(secret_text).hex()[:12]
