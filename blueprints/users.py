"""Administration of people: /users.

Writes run in `admin_write()` (web/delegation.py). Changing someone's credentials (password,
email, username), active flag or lock, or deleting them, is for those who hold every auth.*
permission that person holds; changing one's own password or email takes the current one.
"""

import psycopg
from flask import Blueprint, g

import db
import mail
from db import queries as q
from security.tokens import digest
from web import audit, credentials, throttle
from web.delegation import admin_write
from web.errors import ApiError, not_found
from web.guard import header_token, requires
from web.validation import EMAIL, NAME, PASSWORD, USERNAME, Bool, Str, body, listing, page, query

bp = Blueprint("users", __name__)

# What a user logs in or recovers with, or whether they can: only for those below the caller.
CREDENTIALS = {"username", "email", "password", "active"}


def taken(error):
    """409 for a unique violation on username or email."""
    field = "email" if "email" in (error.diag.constraint_name or "") else "username"
    return conflict(field)


def conflict(field):
    return ApiError(409, "conflict", f"that {field} is already taken", fields={field: "is already taken"})


def account(conn, user_id):
    """The user's login names, state and hash, or 404 naming the id."""
    user = q.user_account(conn, user_id=user_id)
    if user is None:
        raise not_found(f"user {user_id}")
    return user


@bp.get("/users")
@requires("auth.users.read")
def list_users():
    """List users; ?q= filters by a substring of username/email/name, ?active= by state."""
    args = query({"q": Str(max_len=200, required=False), "active": Bool(required=False)})
    paging = page()
    with db.connection() as conn:
        row = q.list_users(conn, q=args.get("q"), active=args.get("active"), **paging)
    return listing(row, paging)


@bp.get("/users/<int:user_id>")
@requires("auth.users.read")
def get_user(user_id):
    """One user, with the roles and permissions it holds in every service."""
    with db.connection() as conn:
        user = q.user_by_id(conn, user_id=user_id)
    if not user:
        raise not_found(f"user {user_id}")
    return user


@bp.post("/users")
@requires("auth.users.write")
def create_user():
    """Create a user; 409 when the username or email is taken."""
    data = body({"username": USERNAME, "password": PASSWORD, "name": NAME, "email": EMAIL})
    password_hash, pepper_id = credentials.new_hash(
        data["password"], data["username"], (data.get("email"), data.get("name"))
    )
    try:
        with admin_write() as write:
            if data.get("email") and q.email_is_a_username(write.conn, email=data["email"], user_id=None):
                raise conflict("email")
            user = q.create_user(
                write.conn,
                username=data["username"],
                name=data.get("name"),
                email=data.get("email"),
                password_hash=password_hash,
                pepper_id=pepper_id,
            )
            audit.record(write.conn, "user_created", user_id=user["id"], detail={"username": user["username"]})
    except psycopg.errors.UniqueViolation as error:
        raise taken(error) from None
    return user, 201


@bp.put("/users/<int:user_id>")
@requires("auth.users.write")
def update_user(user_id):
    """Change any of name, email, username, password, active; a new password or
    active: false revokes the user's tokens. One's own password or email needs
    `current_password`."""
    spec = {
        "username": USERNAME.optional(),
        "name": NAME,
        "email": EMAIL,
        "password": PASSWORD.optional(),
        "active": Bool(required=False),
    }
    data = body({**spec, "current_password": PASSWORD.optional()})
    if not data.keys() & spec.keys():
        raise ApiError(400, "validation_error", f"give at least one of: {', '.join(spec)}")
    with db.connection() as conn:
        before = account(conn, user_id)
    if "password" in data:
        after = {key: data.get(key, before[key]) for key in ("username", "email", "name")}
        credentials.check_policy(data["password"], after["username"], (after["email"], after["name"]))
    attempt = None
    if user_id == g.caller["user_id"] and data.keys() & {"password", "email"}:
        if "current_password" not in data:
            raise ApiError(
                400,
                "validation_error",
                "changing your own password or email needs your current password",
                fields={"current_password": "is required to change your own password or email"},
            )
        attempt = throttle.check_current_password(before, data["current_password"], "authn_password_change_fail")
    new_password = credentials.make_hash(data["password"]) if "password" in data else None
    try:
        with admin_write() as write:
            if data.keys() & CREDENTIALS:
                write.require_below(user_id)
            if data.get("email") and q.email_is_a_username(write.conn, email=data["email"], user_id=user_id):
                raise conflict("email")
            user = q.update_user(
                write.conn,
                user_id=user_id,
                username=data.get("username"),
                name=data.get("name"),
                name_set="name" in data,
                email=data.get("email"),
                email_set="email" in data,
                active=data.get("active"),
            )
            if user is None:
                raise not_found(f"user {user_id}")
            revoked = 0
            if new_password:
                # Changing one's own password keeps the session it is done from, as PUT /auth/password does.
                keep = digest(header_token()) if user_id == g.caller["user_id"] else None
                password_hash, pepper_id = new_password
                revoked = q.set_password(
                    write.conn,
                    user_id=user_id,
                    password_hash=password_hash,
                    pepper_id=pepper_id,
                    expected_version=None,
                    keep_token_hash=keep if user["active"] else None,
                )["revoked"]
            if data.get("active") is False:
                revoked += q.revoke_user_tokens(write.conn, user_id=user_id, keep_token_hash=None)
            if (before["email"] or "").lower() != (user["email"] or "").lower():
                q.void_reset_codes(write.conn, user_id=user_id)
            if attempt:
                attempt.succeeded(write.conn)
            changed = sorted(data.keys() & spec.keys())
            audit.record(write.conn, "user_updated", user_id=user_id, detail={"changed": changed, "revoked": revoked})
            tell_the_owner(write.conn, before, user, password_changed=bool(new_password))
    except psycopg.errors.UniqueViolation as error:
        raise taken(error) from None
    return user


def tell_the_owner(conn, before, after, password_changed):
    """Mail the address the account had about a new email or password, so a takeover is noticed."""
    how = "by you" if before["id"] == g.caller["user_id"] else "by an administrator"
    if before["email"] and before["email"].lower() != (after["email"] or "").lower():
        mail.email_changed(conn, before["email"], after["username"], how)
    if password_changed and (before["email"] or after["email"]):
        mail.password_changed(conn, before["email"] or after["email"], after["username"], how)


@bp.delete("/users/<int:user_id>")
@requires("auth.users.write")
def delete_user(user_id):
    """Disable a user (kept for audit) and revoke its tokens; ?hard=true deletes it for good."""
    hard = query({"hard": Bool(required=False)}).get("hard", False)
    with admin_write() as write:
        account(write.conn, user_id)
        write.require_below(user_id)
        if hard:
            q.delete_user(write.conn, user_id=user_id)
            audit.record(write.conn, "user_deleted", user_id=user_id)
        else:
            q.disable_user(write.conn, user_id=user_id)
            revoked = q.revoke_user_tokens(write.conn, user_id=user_id, keep_token_hash=None)
            audit.record(write.conn, "user_archived", user_id=user_id, detail={"revoked": revoked})
    return "", 204


@bp.delete("/users/<int:user_id>/lock")
@requires("auth.users.write")
def unlock_user(user_id):
    """Clear the brute-force lock (and failure count) of an account."""
    with admin_write() as write:
        account(write.conn, user_id)
        write.require_below(user_id)
        q.forget_account_failures(write.conn, user_id=user_id)
        audit.record(write.conn, "user_unlocked", user_id=user_id)
    return "", 204
