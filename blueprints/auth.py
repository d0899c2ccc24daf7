"""Login, logout and the caller's own profile."""

import time

from flask import Blueprint, current_app, g, request
from psycopg.types.json import Jsonb

import db
from db import queries as q
from security.tokens import digest, new_token
from web import audit, credentials, throttle
from web.errors import unauthorized
from web.guard import header_token, require_token, token_params
from web.validation import PASSWORD, Str, json_body, validate

bp = Blueprint("auth", __name__)


def expiry(expires_at):
    """expires_at (Unix seconds, as the original service answered) and expires_in."""
    at = int(expires_at.timestamp())
    return {"expires_at": at, "expires_in": max(at - int(time.time()), 0)}


@bp.post("/auth/login")
def login():
    """Exchange a username (or email) and password for a token."""
    data = json_body()
    # The seed's clients send {"user", "pass"}; both spellings are accepted.
    aliased = {"username": data.get("username", data.get("user")), "password": data.get("password", data.get("pass"))}
    creds = validate(
        {k: v for k, v in aliased.items() if v is not None},
        {"username": Str(max_len=254), "password": PASSWORD},
    )
    cfg = current_app.config
    with db.connection() as conn:
        user = q.user_for_login(conn, login=creds["username"])
        attempt = throttle.admit(conn, user, creds["username"])
    # An unknown user costs the same bcrypt check as a known one, so timing tells nothing.
    if not (credentials.verify(user, creds["password"]) and user["active"]):
        attempt.failed("authn_login_fail")
        raise unauthorized("invalid_credentials", "wrong username or password")
    rehashed = credentials.fresh_hash(user, creds["password"])

    with db.transaction() as conn:
        two_step = q.mfa_enrolled(conn, user_id=user["id"])
        # Rows are locked in one order by every login (throttle keys, then the user), so
        # concurrent logins of one user wait for each other instead of deadlocking. With a
        # second factor to come, the password alone proves nothing yet: the count of failures
        # stays until the code.
        attempt.succeeded(conn, reset=not two_step)
        if two_step:
            mfa_token = new_token(cfg["TOKEN_SECRET"])
            q.create_mfa_challenge(
                conn,
                token_hash=digest(mfa_token),
                user_id=user["id"],
                credential_version=user["credential_version"],
                ttl=cfg["MFA_TOKEN_TTL_SECONDS"],
            )
            answer = {"mfa_required": True, "mfa_token": mfa_token, "expires_in": cfg["MFA_TOKEN_TTL_SECONDS"]}
        else:
            enrol = cfg["MFA_REQUIRED_FOR"] == "admins" and q.holds_admin_permission(conn, user_id=user["id"])
            answer = session_answer(conn, user, attempt.ip, "mfa_enrolment" if enrol else "full")
            detail = {"sessions_capped": answer.pop("capped")}
            audit.record(conn, "authn_login_success", user_id=user["id"], detail=detail)
            if enrol:
                answer["mfa_enrolment_required"] = True
        if rehashed:
            q.rehash_password(conn, user_id=user["id"], credential_version=user["credential_version"], **rehashed)
    return answer


def session_answer(conn, user, ip, scope):
    """Issue a session of `user` (whose credentials were just proved), in the caller's
    transaction: the login answer, with `capped` (sessions the cap revoked) for the audit."""
    cfg = current_app.config
    token = new_token(cfg["TOKEN_SECRET"])
    payload = {"user_id": user["id"], "username": user["username"], "name": user["name"]}
    row = q.create_token(
        conn,
        payload=Jsonb(payload),
        user_id=user["id"],
        credential_version=user["credential_version"],
        max_sessions=cfg["MAX_SESSIONS_PER_USER"],
        scope=scope,
        **token_params(token),
    )
    if row is None:
        # The password changed, or the user was disabled or deleted, while it was checked.
        raise unauthorized("invalid_credentials", "wrong username or password")
    q.remember_address(conn, user_id=user["id"], ip=ip)
    # Each login clears a batch of dead sessions, so the table stays bounded by traffic.
    q.purge_dead_tokens(conn, batch=cfg["TOKEN_PURGE_BATCH"])
    g.token = token
    return {"token": token, **expiry(row["expires_at"]), "payload": payload, "capped": row["capped"]}


@bp.post("/auth/logout")
def logout():
    """Revoke the token; revoking an unknown or expired one is fine too (RFC 7009)."""
    token = header_token() or json_body(optional=True).get("token")
    if not isinstance(token, str) or not token:
        raise unauthorized("missing_token", "send the token in the 'token' header")
    g.token = token
    with db.transaction() as conn:
        user_id = q.revoke_token(conn, token_hash=token_params(token)["token_hash"])
        if user_id:
            audit.record(conn, "authn_token_revoked", user_id=user_id, detail={"scope": "this token"})
    return {"status": "logged_out"}


@bp.post("/auth/logout-all")
def logout_all():
    """Revoke every token of the caller."""
    token = require_token()
    params = token_params(token)
    with db.transaction() as conn:
        row = q.revoke_all_of_token_owner(conn, token_hash=params["token_hash"])
        revoked = row["revoked"]
        if revoked:
            audit.record(
                conn, "authn_token_revoked", user_id=row["user_id"], detail={"scope": "all", "revoked": revoked}
            )
    if not revoked:
        raise unauthorized("invalid_token", "the token is unknown, expired or revoked")
    return {"revoked": revoked}


def profile_of(environ):
    """The answer to a profile request (`environ`): its token validated and renewed, who the caller
    is and what they hold where. Served by web/hot_path.py, and by the view below for the
    requests that path leaves to Flask."""
    token = require_token(environ)
    with db.connection() as conn:
        row = q.profile(conn, **token_params(token))
    g.renewed = bool(row and row["renewed"])
    if row is None:
        raise unauthorized("invalid_token", "the token is unknown, expired or revoked")
    payload = {key: row[key] for key in ("user_id", "username", "name", "email", "services")}
    answer = {"payload": payload, "renewed": row["renewed"], **expiry(row["expires_at"])}
    return {**answer, "mfa_enrolment_required": True} if row["scope"] != "full" else answer


@bp.get("/auth/profile")
def profile():
    """GET /auth/profile through Flask (see `profile_of`)."""
    return profile_of(request.environ)
