"""POST /check-token: the question every backend asks on every request."""

from flask import Blueprint, g

import db
from blueprints.auth import expiry
from db import queries as q
from web.errors import ApiError
from web.guard import header_token, token_params
from web.validation import IdOrName, Int, Str, json_body, service_lookup, validate

bp = Blueprint("tokens", __name__)


def refuse(status, code, message):
    """A check-token refusal: the error shape plus the original service's `valid: false`."""
    return ApiError(status, code, message, valid=False)


@bp.post("/check-token")
def check_token():
    """Tell a backend whether a token is valid for a user in a service, and with what rights."""
    data = json_body(optional=True)
    token = header_token()
    if "token" not in data and token:
        data = {**data, "token": token}
    body = validate(
        data,
        {
            "token": Str(max_len=512),
            "service_id": IdOrName(),
            "user_id": Int(strings=True, required=False, nullable=True),
        },
    )
    g.token = body["token"]
    with db.connection() as conn:
        row = q.check_token(
            conn, **token_params(body["token"]), **service_lookup(body["service_id"]), user_id=body.get("user_id")
        )
    g.renewed = bool(row and row["renewed"])
    if row is None:
        raise refuse(401, "invalid_token", "the token is unknown, expired or revoked; log in again")
    if not row["user_matches"]:
        raise refuse(403, "forbidden", "the token belongs to another user")
    if row["service_id"] is None:
        raise refuse(403, "forbidden", f"service {body['service_id'][1]} does not exist or is inactive")
    if row["roles"] is None:
        raise refuse(403, "forbidden", f"the user holds no role in service {row['service']}")
    payload = {
        key: row[key] for key in ("user_id", "username", "name", "service_id", "service", "roles", "permissions")
    }
    return {"valid": True, "payload": payload, "renewed": row["renewed"], **expiry(row["expires_at"])}
