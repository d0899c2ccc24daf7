"""The second factor: TOTP secrets (RFC 6238: SHA-1, 6 digits, 30 s, as every authenticator
app expects), kept encrypted with keys from the environment, and single-use recovery codes.

A code is accepted for the current 30 s step or the one before (a phone's clock, a slow
typist), never from two steps back or from the future beyond one step; which step matched is
returned, so the caller can refuse a step already used (no replay).
"""

import hmac
import secrets
import time

import pyotp

from security.tokens import digest

ISSUER = "Eqeqo Auth"
STEP_SECONDS = 30
DIGITS = 6
RECOVERY_CODES = 10
# 10 characters of an alphabet without look-alikes (no 0/o, 1/l/i): about 50 bits each.
RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
RECOVERY_LENGTH = 10


def cipher(keys):
    """The encryption of `keys` (MFA_ENCRYPTION_KEYS): the first encrypts, all decrypt."""
    # Imported here: cryptography adds 8 MiB to a worker, and most never serve a second factor.
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(key) for key in keys])


def new_secret():
    """A fresh TOTP secret: 160 random bits, base32, as RFC 4226 recommends."""
    return pyotp.random_base32(32)


def provisioning_uri(secret, account):
    """The otpauth:// URI an authenticator app reads (usually from a QR code)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=account, issuer_name=ISSUER)


def encrypt(keys, secret):
    return cipher(keys).encrypt(secret.encode()).decode()


def decrypt(keys, stored):
    """The secret, or None when no configured key opens it (a key removed too early)."""
    return _opened(cipher(keys).decrypt, stored)


def rotate(keys, stored):
    """`stored` encrypted again with the first key, or None when no configured key opens it."""
    return _opened(cipher(keys).rotate, stored)


def _opened(operation, stored):
    """`operation` (decrypt or rotate) of `stored`, or None when no configured key opens it."""
    from cryptography.fernet import InvalidToken

    try:
        return operation(stored.encode()).decode()
    except InvalidToken:
        return None


def matching_step(secret, code, now=None):
    """The time step whose code is `code` (this step or the one before), else None; compared in
    constant time."""
    if not (isinstance(code, str) and len(code) == DIGITS and code.isdigit() and code.isascii()):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    step = int((time.time() if now is None else now) // STEP_SECONDS)
    found = None
    for candidate in (step - 1, step):
        if hmac.compare_digest(totp.at(candidate * STEP_SECONDS), code):
            found = candidate
    return found


def new_recovery_codes():
    """Ten recovery codes, shown once, as `xxxxx-xxxxx`."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def recovery_digest(code):
    """What is stored of a recovery code: the digest of its characters, without case or dashes."""
    return digest(code.replace("-", "").replace(" ", "").lower())
