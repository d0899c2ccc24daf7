"""Administration of people: /users."""

import psycopg
from flask import Blueprint

import db
from blueprints.passwords import hash_new_password
from db import queries as q
from web import audit
from web.errors import ApiError, not_found
from web.guard import requires
from web.validation import PASSWORD, Bool, Str, body, listing, page, query

bp = Blueprint("users", __name__)

USERNAME = Str(max_len=64, pattern=r"[A-Za-z0-9._@-]+")
NAME = Str(max_len=200, required=False, nullable=True)
EMAIL = Str(max_len=254, pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+", required=False, nullable=True)


def taken(error):
    """409 for a unique violation on username or email."""
    field = "email" if "email" in (error.diag.constraint_name or "") else "username"
    return ApiError(409, "conflict", f"that {field} is already taken", fields={field: "is already taken"})


@bp.get("/users")
@requires("auth.users.read")
def list_users():
    """List users; ?q= filters by a substring of username/email/name, ?active= by state."""
    args = query({"q": Str(max_len=200, required=False), "active": Bool(required=False)})
    paging = page()
    with db.transaction() as conn:
        row = q.list_users(conn, q=args.get("q"), active=args.get("active"), **paging)
    return listing(row, paging)


@bp.get("/users/<int:user_id>")
@requires("auth.users.read")
def get_user(user_id):
    """One user, with the roles and permissions it holds in every service."""
    with db.transaction() as conn:
        user = q.user_by_id(conn, user_id=user_id)
    if not user:
        raise not_found(f"user {user_id}")
    return user


@bp.post("/users")
@requires("auth.users.write")
def create_user():
    """Create a user; 409 when the username or email is taken."""
    data = body({"username": USERNAME, "password": PASSWORD, "name": NAME, "email": EMAIL})
    password_hash = hash_new_password(data["password"], data["username"])
    try:
        with db.transaction() as conn:
            user = q.create_user(
                conn,
                username=data["username"],
                name=data.get("name"),
                email=data.get("email"),
                password_hash=password_hash,
            )
            audit.record(conn, "user_created", user_id=user["id"], detail={"username": user["username"]})
    except psycopg.errors.UniqueViolation as error:
        raise taken(error) from None
    return user, 201


@bp.put("/users/<int:user_id>")
@requires("auth.users.write")
def update_user(user_id):
    """Change any of name, email, username, password, active; a new password or
    active: false revokes the user's tokens."""
    spec = {
        "username": USERNAME.optional(),
        "name": NAME,
        "email": EMAIL,
        "password": PASSWORD.optional(),
        "active": Bool(required=False),
    }
    data = body(spec, at_least_one=True)
    try:
        with db.transaction() as conn:
            current = q.username_of(conn, user_id=user_id)
            if not current:
                raise not_found(f"user {user_id}")
            password_hash = None
            if "password" in data:
                password_hash = hash_new_password(data["password"], data.get("username", current))
            user = q.update_user(
                conn,
                user_id=user_id,
                username=data.get("username"),
                name=data.get("name"),
                name_set="name" in data,
                email=data.get("email"),
                email_set="email" in data,
                password_hash=password_hash,
                active=data.get("active"),
            )
            revoked = 0
            if password_hash or data.get("active") is False:
                revoked = q.revoke_user_tokens(conn, user_id=user_id, keep_token_hash=None)
            changed = sorted(key for key in data if key != "password") + (["password"] if password_hash else [])
            audit.record(conn, "user_updated", user_id=user_id, detail={"changed": changed, "revoked": revoked})
    except psycopg.errors.UniqueViolation as error:
        raise taken(error) from None
    return user


@bp.delete("/users/<int:user_id>")
@requires("auth.users.write")
def delete_user(user_id):
    """Disable a user (kept for audit) and revoke its tokens; ?hard=true deletes it for good."""
    hard = query({"hard": Bool(required=False)}).get("hard", False)
    with db.transaction() as conn:
        if not q.username_of(conn, user_id=user_id):
            raise not_found(f"user {user_id}")
        if hard:
            q.delete_user(conn, user_id=user_id)
            audit.record(conn, "user_deleted", user_id=user_id)
        else:
            q.disable_user(conn, user_id=user_id)
            revoked = q.revoke_user_tokens(conn, user_id=user_id, keep_token_hash=None)
            audit.record(conn, "user_archived", user_id=user_id, detail={"revoked": revoked})
    return "", 204


@bp.delete("/users/<int:user_id>/lock")
@requires("auth.users.write")
def unlock_user(user_id):
    """Clear the brute-force lock (and failure count) of an account."""
    with db.transaction() as conn:
        if not q.username_of(conn, user_id=user_id):
            raise not_found(f"user {user_id}")
        q.forget_account_failures(conn, key=f"user:{user_id}")
        audit.record(conn, "user_unlocked", user_id=user_id)
    return "", 204
