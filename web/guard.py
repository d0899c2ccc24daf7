"""Who is calling: the token from the request header, checked against service "auth"."""

from functools import wraps

from flask import current_app, g, request

import db
from db import queries as q
from security.tokens import digest
from web import audit
from web.errors import ApiError, unauthorized

AUTH_SERVICE = "auth"  # this service's own name in auth.services


def header_token(environ=None):
    """The token from `token: ...` or `Authorization: Bearer ...`; never from the URL. Read from
    `environ`, or by default from the Flask request's."""
    if environ is None:
        environ = request.environ
    token = environ.get("HTTP_TOKEN")
    if not token:
        scheme, _, credentials = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer":
            token = credentials.strip()
    return token or None


def token_params(token):
    """The parameters every token statement takes: the digest and the lifetimes from config."""
    cfg = current_app.config
    return {
        "token_hash": digest(token),
        "ttl": cfg["TOKEN_TTL_SECONDS"],
        "max_lifetime": cfg["TOKEN_MAX_LIFETIME_SECONDS"],
        "threshold": cfg["TOKEN_RENEW_THRESHOLD_SECONDS"],
    }


def enrol_first():
    """403 for a session good only for enrolling a second factor (MFA_REQUIRED_FOR)."""
    return ApiError(
        403, "mfa_enrolment_required", "enrol a second factor first (POST /auth/mfa/totp), then log in again"
    )


def require_token(environ=None):
    """The header token (kept in `g.token` for the request's log line), or 401 missing_token."""
    token = header_token(environ)
    if token is None:
        raise unauthorized("missing_token", "send the token in the 'token' header")
    g.token = token
    return token


def requires(permission):
    """Decorator: the caller's token must be live and hold `permission` in service "auth".

    The check is the same one statement as /check-token (and renews the token like it);
    the caller's grants land in `g.caller`, and `permission` in `g.permission`, for the
    write to check again on locked rows (web/delegation.py).
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            token = require_token()
            with db.connection() as conn:
                row = q.check_token(
                    conn, **token_params(token), service_id=None, service_name=AUTH_SERVICE, user_id=None, key_hash=None
                )
                if row["user_id"] is None:
                    raise unauthorized("invalid_token", "the token is unknown, expired or revoked")
                if row["scope"] != "full":
                    raise enrol_first()
                allowed = permission in (row["permissions"] or [])
                g.caller, g.renewed, g.permission = row, row["renewed"], permission
                if not allowed:
                    audit.record(conn, "authz_fail", user_id=row["user_id"], detail={"permission": permission})
            if not allowed:
                raise ApiError(403, "forbidden", f"this needs permission {permission} in service {AUTH_SERVICE}")
            return view(*args, **kwargs)

        return wrapper

    return decorator
