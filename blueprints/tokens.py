"""POST /check-token: the question every backend asks on every request."""

from flask import Blueprint, current_app, g, request

import db
from blueprints.auth import expiry
from db import queries as q
from web import service_keys
from web.errors import ApiError
from web.guard import header_token, token_params
from web.validation import IdOrName, Int, Str, read_json, service_lookup, validate

bp = Blueprint("tokens", __name__)


def refuse(status, code, message):
    """A check-token refusal: the error shape plus the original service's `valid: false`."""
    return ApiError(status, code, message, valid=False)


# What a check names: the token (in the body, or else the header), the service, and optionally
# the user the backend believes it is serving.
CHECK = {
    "token": Str(max_len=512),
    "service_id": IdOrName(),
    "user_id": Int(strings=True, required=False, nullable=True),
}


def check(environ):
    """The answer to a check-token request (`environ`): whether the token is valid for the user in
    the service, and with what rights. Served by web/hot_path.py, and by the view below for the
    requests that path leaves to Flask."""
    key = service_keys.presented(environ, valid=False)
    if key is None and current_app.config["CHECK_TOKEN_REQUIRES_KEY"]:
        raise service_keys.invalid_key(
            "send this backend's service key in the 'service-token' header (or as HTTP Basic)", valid=False
        )
    data = read_json(environ, optional=True)
    token = header_token(environ)
    if "token" not in data and token:
        data = {**data, "token": token}
    body = validate(data, CHECK)
    g.token = body["token"]
    service = body["service_id"][1]
    with db.connection() as conn:
        row = q.check_token(
            conn,
            **token_params(body["token"]),
            **service_lookup(body["service_id"]),
            user_id=body.get("user_id"),
            key_hash=service_keys.key_hash(key),
        )
        if key is not None and row["key_id"] is None:
            service_keys.refuse_unknown(conn, environ, key, "check-token", valid=False)
        if key is not None and row["key_service_id"] != row["service_id"]:
            service_keys.refuse_outside(conn, environ, row, service, "check-token")
    g.renewed = row["renewed"]
    if row["user_id"] is None:
        raise refuse(401, "invalid_token", "the token is unknown, expired or revoked; log in again")
    if row["scope"] != "full":
        raise ApiError(403, "mfa_enrolment_required", "the user must enrol a second factor first", valid=False)
    if not row["user_matches"]:
        raise refuse(403, "forbidden", "the token belongs to another user")
    if row["service_id"] is None:
        raise refuse(403, "forbidden", f"service {service} does not exist or is inactive")
    if row["roles"] is None:
        raise refuse(403, "forbidden", f"the user holds no role in service {row['service']}")
    payload = {
        name: row[name] for name in ("user_id", "username", "name", "service_id", "service", "roles", "permissions")
    }
    return {"valid": True, "payload": payload, "renewed": row["renewed"], **expiry(row["expires_at"])}


@bp.post("/check-token")
def check_token():
    """POST /check-token through Flask (see `check`)."""
    return check(request.environ)
