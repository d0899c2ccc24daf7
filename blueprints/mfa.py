"""Two-step login: enrolling a TOTP authenticator app, the second step of a login, removal,
and an administrator's reset of another user's second factor.

Enrolment is the caller's own (token required; a session good only for enrolment will do):
POST /auth/mfa/totp answers a secret and its otpauth:// URI, POST /auth/mfa/totp/confirm
activates it with one valid code and answers ten recovery codes, once. A login of such a
user answers an mfa_token instead of a session, and POST /auth/login/mfa trades it, with a
code, for the session. Wrong codes count in the account's brute-force throttle like wrong
passwords; a code works once; a recovery code is spent.
"""

from flask import Blueprint, current_app, g

import db
import mail
from blueprints.auth import session_answer
from db import queries as q
from security import mfa
from security.tokens import digest
from web import audit, throttle
from web.delegation import Refused, admin_write
from web.errors import ApiError, not_found, unauthorized
from web.guard import require_token, requires, token_params
from web.validation import PASSWORD, Str, body

bp = Blueprint("mfa", __name__)

CODE = Str(max_len=32)


def caller(conn):
    """The caller's live session (full, or good only for enrolment) and account; 401 otherwise."""
    params = token_params(require_token())
    me = q.profile(conn, **params)
    if me is None:
        raise unauthorized("invalid_token", "the token is unknown, expired or revoked")
    g.renewed = me["renewed"]
    return me, params["token_hash"]


def wrong_code(status=401):
    """A code that opens nothing: 401 at login and removal, 400 when confirming an enrolment."""
    return ApiError(status, "invalid_mfa_code", "the code is wrong, expired or used", fields={"code": "is not valid"})


def judge(conn, user_id, code):
    """Accept `code` for `user_id` (TOTP of this step or the one before, once; or an unused
    recovery code), in the caller's transaction, on the locked TOTP row: how it was accepted,
    or None."""
    row = q.totp_of(conn, user_id=user_id)
    if row is None or not row["confirmed"]:
        return None
    secret = mfa.decrypt(current_app.config["MFA_ENCRYPTION_KEYS"], row["secret_encrypted"])
    step = mfa.matching_step(secret, code) if secret is not None else None
    if step is not None:
        return "totp" if q.use_totp_step(conn, user_id=user_id, step=step) else None
    if q.use_recovery_code(conn, user_id=user_id, code_hash=mfa.recovery_digest(code)):
        return "recovery_code"
    return None


@bp.post("/auth/mfa/totp")
def start_enrolment():
    """A new TOTP secret for the caller, pending until confirmed with a code."""
    secret = mfa.new_secret()
    with db.transaction() as conn:
        me, _ = caller(conn)
        stored = mfa.encrypt(current_app.config["MFA_ENCRYPTION_KEYS"], secret)
        if q.start_mfa_enrolment(conn, user_id=me["user_id"], secret_encrypted=stored) is None:
            raise ApiError(409, "conflict", "a second factor is active; remove it first (DELETE /auth/mfa/totp)")
    return {"secret": secret, "otpauth_uri": mfa.provisioning_uri(secret, me["username"])}, 201


@bp.post("/auth/mfa/totp/confirm")
def confirm_enrolment():
    """Activate the pending secret with one valid code; answers the recovery codes, once."""
    data = body({"code": CODE})
    codes = mfa.new_recovery_codes()
    with db.transaction() as conn:
        me, token_hash = caller(conn)
        row = q.totp_of(conn, user_id=me["user_id"])
        if row is None or row["confirmed"]:
            raise ApiError(409, "conflict", "no enrolment is pending; start one with POST /auth/mfa/totp")
        secret = mfa.decrypt(current_app.config["MFA_ENCRYPTION_KEYS"], row["secret_encrypted"])
        step = mfa.matching_step(secret, data["code"]) if secret is not None else None
        if step is None:
            raise wrong_code(400)
        q.confirm_mfa(conn, user_id=me["user_id"], step=step)
        q.replace_recovery_codes(conn, user_id=me["user_id"], code_hashes=[mfa.recovery_digest(c) for c in codes])
        # The session that enrolled proved the password and now a code: it is a full one.
        q.widen_token_scope(conn, token_hash=token_hash, user_id=me["user_id"])
        audit.record(conn, "authn_mfa_enrolled", user_id=me["user_id"], detail={"method": "totp"})
        if me["email"]:
            mail.second_factor_added(conn, me["email"], me["username"])
    return {"status": "enrolled", "recovery_codes": codes}


@bp.delete("/auth/mfa/totp")
def remove():
    """Remove the caller's second factor: needs the current password and a code."""
    data = body({"password": PASSWORD, "code": CODE})
    with db.connection() as conn:
        me, _ = caller(conn)
        user = q.user_account(conn, user_id=me["user_id"])
        if not q.mfa_enrolled(conn, user_id=user["id"]):
            raise ApiError(409, "conflict", "no second factor is active")
    attempt = throttle.check_current_password(user, data["password"], "authn_mfa_fail")
    with db.transaction() as conn:
        how = judge(conn, user["id"], data["code"])
        if how is not None:
            attempt.succeeded(conn)
            q.remove_mfa(conn, user_id=user["id"])
            audit.record(conn, "authn_mfa_removed", user_id=user["id"], detail={"with": how})
            if user["email"]:
                mail.second_factor_removed(conn, user["email"], user["username"], "by you")
            return {"status": "removed"}
    attempt.failed("authn_mfa_fail")
    raise wrong_code()


@bp.post("/auth/login/mfa")
def second_step():
    """Trade the first step's mfa_token and a code for a session."""
    data = body({"mfa_token": Str(max_len=512), "code": CODE})
    challenge = digest(data["mfa_token"])
    with db.connection() as conn:
        user = q.mfa_challenge(conn, token_hash=challenge)
        if user is None:
            raise unauthorized("invalid_mfa_token", "the mfa_token is unknown, expired or used; log in again")
        attempt = throttle.admit(conn, user)
    with db.transaction() as conn:
        # Locked: two requests with one mfa_token are judged one after the other.
        if q.mfa_challenge(conn, token_hash=challenge) is None:
            raise unauthorized("invalid_mfa_token", "the mfa_token is unknown, expired or used; log in again")
        how = judge(conn, user["id"], data["code"])
        if how is not None:
            attempt.succeeded(conn)
            q.end_mfa_challenge(conn, token_hash=challenge)
            session = session_answer(conn, user, attempt.ip, "full")
            audit.record(conn, "authn_mfa_success", user_id=user["id"], detail={"with": how})
            if how == "recovery_code":
                left = q.recovery_codes_left(conn, user_id=user["id"])
                audit.record(conn, "authn_mfa_recovery_code_used", user_id=user["id"], detail={"left": left})
            detail = {"mfa": how, "sessions_capped": session.pop("capped")}
            audit.record(conn, "authn_login_success", user_id=user["id"], detail=detail)
            return session
    attempt.failed("authn_mfa_fail")
    raise wrong_code()


@bp.delete("/users/<int:user_id>/mfa")
@requires("auth.users.write")
def reset(user_id):
    """An administrator removes another user's second factor (a lost phone); audited and mailed."""
    with admin_write() as write:
        user = q.user_account(write.conn, user_id=user_id)
        if user is None:
            raise not_found(f"user {user_id}")
        if user_id == write.caller_id:
            raise Refused(
                "own credentials need the current password",
                "remove your own second factor with DELETE /auth/mfa/totp",
                user_id,
            )
        write.require_below(user_id)
        if not q.mfa_enrolled(write.conn, user_id=user_id) and not q.totp_of(write.conn, user_id=user_id):
            raise not_found(f"a second factor of user {user_id}")
        q.remove_mfa(write.conn, user_id=user_id)
        audit.record(write.conn, "authn_mfa_reset", user_id=user_id)
        if user["email"]:
            mail.second_factor_removed(write.conn, user["email"], user["username"], "by an administrator")
    return "", 204
