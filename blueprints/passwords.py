"""Password recovery by mail, password reset, and password change."""

from flask import Blueprint, current_app, g
from psycopg.types.json import Jsonb

import db
import mail
from db import queries as q
from security.tokens import digest
from web import audit, credentials, throttle
from web.client_ip import client_ip
from web.errors import ApiError, unauthorized
from web.guard import enrol_first, require_token, token_params
from web.validation import PASSWORD, Str, body

bp = Blueprint("passwords", __name__)

FORGOT_ANSWER = {"message": "if the account exists and has an email, a reset code is on its way"}


@bp.post("/auth/password/forgot")
def forgot():
    """Queue a recovery request; the same answer, and the same work, whether or not the account exists.

    Counted per client address and per login as typed, never by whether an account matches,
    so a 429 tells nothing either. The background worker (jobs.py) resolves the login, makes
    the code and mails it.
    """
    login = body({"username": Str(max_len=254)})["username"]
    cfg = current_app.config
    ip = client_ip()
    with db.connection() as conn:
        wait = q.count_request(
            conn,
            keys=[f"forgot-ip:{ip}", f"forgot-login:{login.casefold()}"],
            limits=[cfg["FORGOT_IP_MAX_REQUESTS"], cfg["FORGOT_LOGIN_MAX_REQUESTS"]],
            window=cfg["FORGOT_WINDOW_SECONDS"],
        )
        if wait:
            raise ApiError(
                429,
                "too_many_attempts",
                f"too many recovery requests; try again after {wait} s",
                headers={"Retry-After": str(wait)},
            )
        q.enqueue_job(conn, kind="reset_request", payload=Jsonb({"login": login, "ip": ip}))
    return FORGOT_ANSWER, 202


@bp.post("/auth/password/reset")
def reset():
    """Set a new password with a mailed code; the code is spent and every token revoked."""
    data = body({"code": Str(max_len=256), "password": PASSWORD})
    with db.transaction() as conn:
        user = q.spend_reset_code(conn, code_hash=digest(data["code"]))
        if user is None:
            raise ApiError(400, "invalid_reset_code", "the reset code is unknown, used or expired")
        # A refused password rolls back the whole block, so the code stays usable.
        password_hash, pepper_id = credentials.new_hash(
            data["password"], user["username"], (user["email"], user["name"])
        )
        changed = q.set_password(
            conn,
            user_id=user["user_id"],
            password_hash=password_hash,
            pepper_id=pepper_id,
            expected_version=user["credential_version"],
            keep_token_hash=None,
        )
        q.forget_account_failures(conn, user_id=user["user_id"])
        audit.record(conn, "authn_password_reset", user_id=user["user_id"], detail={"revoked": changed["revoked"]})
        mail.password_changed(conn, user["email"], user["username"], "with a reset code")
    return {"status": "password_reset"}


@bp.put("/auth/password")
def change():
    """Change the caller's password; needs the current one; revokes the caller's other tokens.

    In this order: the new password against the policy (no hash yet), admission by the
    throttle, the current password, and only then the new hash, so a locked account or a
    wrong current password costs no second bcrypt.
    """
    token = require_token()
    data = body({"current_password": PASSWORD, "new_password": PASSWORD})
    params = token_params(token)
    with db.connection() as conn:
        me = q.profile(conn, **params)
        g.renewed = bool(me and me["renewed"])
        if me is None:
            raise unauthorized("invalid_token", "the token is unknown, expired or revoked")
        if me["scope"] != "full":
            raise enrol_first()
        user = q.user_account(conn, user_id=me["user_id"])
    credentials.check_policy(data["new_password"], user["username"], (user["email"], user["name"]), "new_password")
    attempt = throttle.check_current_password(user, data["current_password"], "authn_password_change_fail")
    password_hash, pepper_id = credentials.make_hash(data["new_password"])
    with db.transaction() as conn:
        attempt.succeeded(conn)
        changed = q.set_password(
            conn,
            user_id=user["id"],
            password_hash=password_hash,
            pepper_id=pepper_id,
            expected_version=user["credential_version"],
            keep_token_hash=params["token_hash"],
        )
        if changed is None:
            raise unauthorized("invalid_credentials", "the password was changed meanwhile")
        audit.record(conn, "authn_password_change", user_id=user["id"], detail={"revoked": changed["revoked"]})
        if user["email"]:
            mail.password_changed(conn, user["email"], user["username"], "by you")
    return {"status": "password_changed", "revoked": changed["revoked"]}
