"""Service keys: how a backend says who it is, to /check-token and /revocations.

A key is sent in a `service-token` header, or as the password of HTTP Basic (the user name
is the service's name, as RFC 7662 clients send their client id; the secret alone decides).
Only its SHA-256 digest is looked up: the secret is 256 random bits, so a slow hash would
buy nothing and cost every check.
"""

import base64
import binascii
import secrets
import threading
import time

from security.tokens import RANDOM_BYTES, digest, fingerprint
from web import audit
from web.client_ip import client_ip
from web.errors import ApiError

# Secret scanners find leaked keys by this start (README, Backends).
KEY_PREFIX = "eqsk_"
SHOWN_PREFIX = len(KEY_PREFIX) + 8  # what lists show of a key, to tell keys apart
MAX_KEY_LENGTH = 512
CHALLENGE = {"WWW-Authenticate": 'Basic realm="eqeqo-auth service key"'}
# Refusals of unknown keys are written to the audit log at most this often per worker and
# minute: each is a write that anybody may cause.
UNKNOWN_KEY_AUDITS_PER_MINUTE = 30


def new_key():
    """A new secret: the prefix and 256 bits from the OS CSPRNG, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(RANDOM_BYTES)


def invalid_key(message, **extra):
    """401 for a missing, malformed, unknown or expired key."""
    return ApiError(401, "invalid_service_key", message, headers=CHALLENGE, **extra)


def presented(environ, **extra):
    """The key the request carries, or None; 401 (with `extra` in its body) for a malformed one."""
    key = environ.get("HTTP_SERVICE_TOKEN")
    if key is None:
        scheme, _, credentials = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            key = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            raise invalid_key("the Basic credentials are not base64 of service:key", **extra) from None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise invalid_key("the service key is empty or too long", **extra)
    return key


def key_hash(key):
    """What auth.service_keys stores of `key`; None for no key."""
    return None if key is None else digest(key)


class _Budget:
    """At most `per_minute` events a minute in this process."""

    def __init__(self, per_minute):
        self.per_minute, self.minute, self.used = per_minute, 0, 0
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            minute = int(time.monotonic() // 60)
            if minute != self.minute:
                self.minute, self.used = minute, 0
            self.used += 1
            return self.used <= self.per_minute


_unknown_key_audits = _Budget(UNKNOWN_KEY_AUDITS_PER_MINUTE)


def refuse_unknown(conn, environ, key, endpoint, **extra):
    """Audit (within the budget, naming the key by a digest prefix) and raise the 401 for a key
    no service holds."""
    if _unknown_key_audits.take():
        detail = {"reason": "unknown service key", "key": fingerprint(key), "endpoint": endpoint}
        audit.record(conn, "authz_fail", detail=detail, ip=client_ip(environ))
    raise invalid_key("the service key is unknown, revoked or expired", **extra)


def refuse_outside(conn, environ, key_row, service, endpoint):
    """Audit, naming the key, and raise the 403 for a key asking about another service."""
    audit.record(
        conn,
        "authz_fail",
        ip=client_ip(environ),
        detail={
            "reason": "service key outside its service",
            "key_id": key_row["key_id"],
            "key": key_row["key_prefix"],
            "service": service,
            "endpoint": endpoint,
        },
    )
    raise ApiError(403, "forbidden", f"this key may ask only about its own service, not {service}", valid=False)
