"""Password recovery by mail, password reset, and password change."""

from flask import Blueprint, current_app, g

import db
import mail
from db import queries as q
from security import passwords
from security.tokens import digest, new_reset_code
from web import audit, throttle
from web.errors import ApiError, unauthorized
from web.guard import require_token, token_params
from web.validation import PASSWORD, Str, body

bp = Blueprint("passwords", __name__)

FORGOT_ANSWER = {"message": "if the account exists and has an email, a reset code is on its way"}


def hash_new_password(password, username, field="password"):
    """The hash of a password someone wants to set, or 400 naming `field` and saying why not."""
    cfg = current_app.config
    problem = passwords.policy_problem(password, username, cfg["PASSWORD_MIN_LENGTH"], cfg["PASSWORD_MAX_LENGTH"])
    if problem:
        raise ApiError(400, "validation_error", f"{field} {problem}", fields={field: problem})
    return passwords.hash_password(password, cfg["PASSWORD_PEPPER"], cfg["BCRYPT_ROUNDS"])


@bp.post("/auth/password/forgot")
def forgot():
    """Mail a single-use reset code; the same answer whether or not the account exists."""
    data = body({"username": Str(max_len=254)})
    cfg = current_app.config
    with db.transaction() as conn:
        user = q.user_for_login(conn, login=data["username"])
        if not (user and user["active"] and user["email"]):
            return FORGOT_ANSWER, 202
        code = new_reset_code()
        stored = q.create_reset_code(
            conn,
            code_hash=digest(code),
            user_id=user["id"],
            ttl=cfg["RESET_TOKEN_TTL_SECONDS"],
            per_hour=cfg["RESET_MAILS_PER_HOUR"],
        )
        q.purge_old_reset_codes(conn)
        audit.record(conn, "authn_password_reset_request", user_id=user["id"], detail={"mailed": bool(stored)})
    if stored:
        minutes = cfg["RESET_TOKEN_TTL_SECONDS"] // 60
        link = cfg["PASSWORD_RESET_URL"].replace("{code}", code)
        mail.send(
            user["email"],
            "Reset your Eqeqo password",
            f"Someone asked to reset the password of the Eqeqo account {user['username']}.\n\n"
            f"To choose a new password, open this link within {minutes} minutes:\n{link}\n\n"
            f"Or use this code: {code}\n\nIf it was not you, ignore this mail; your password stays as it is.\n",
        )
    return FORGOT_ANSWER, 202


@bp.post("/auth/password/reset")
def reset():
    """Set a new password with a mailed code; the code is spent and every token revoked."""
    data = body({"code": Str(max_len=256), "password": PASSWORD})
    with db.transaction() as conn:
        user = q.spend_reset_code(conn, code_hash=digest(data["code"]))
        if user is None:
            raise ApiError(400, "invalid_reset_code", "the reset code is unknown, used or expired")
        user_id, username, email = user["user_id"], user["username"], user["email"]
        # A refused password rolls back the whole block, so the code stays usable.
        password_hash = hash_new_password(data["password"], username)
        q.set_password(conn, user_id=user_id, password_hash=password_hash)
        q.revoke_user_tokens(conn, user_id=user_id, keep_token_hash=None)
        q.forget_account_failures(conn, key=f"user:{user_id}")
        audit.record(conn, "authn_password_reset", user_id=user_id)
    if email:  # an administrator may have removed it since the code was mailed
        mail.password_changed(email, username, "with a reset code")
    return {"status": "password_reset"}


@bp.put("/auth/password")
def change():
    """Change the caller's password; needs the current one; revokes the caller's other tokens."""
    token = require_token()
    data = body({"current_password": PASSWORD, "new_password": PASSWORD})
    params = token_params(token)
    with db.transaction() as conn:
        me = q.profile(conn, **params)
        g.renewed = bool(me and me["renewed"])
        if me is None:
            raise unauthorized("invalid_token", "the token is unknown, expired or revoked")
        user = q.user_account(conn, user_id=me["user_id"])
    # Refused before any attempt is counted, so a bad new password writes nothing.
    password_hash = hash_new_password(data["new_password"], user["username"], field="new_password")
    attempt = throttle.check_current_password(user, data["current_password"], "authn_password_change_fail")
    with db.transaction() as conn:
        attempt.succeeded(conn)
        q.set_password(conn, user_id=user["id"], password_hash=password_hash)
        revoked = q.revoke_user_tokens(conn, user_id=user["id"], keep_token_hash=params["token_hash"])
        audit.record(conn, "authn_password_change", user_id=user["id"], detail={"revoked": revoked})
    if user["email"]:
        mail.password_changed(user["email"], user["username"], "by you")
    return {"status": "password_changed", "revoked": revoked}
