"""GET /audit-events: the audit trail, newest first."""

import datetime

from flask import Blueprint

import db
from db import queries as q
from web.errors import ApiError
from web.guard import requires
from web.validation import Int, Str, listing, page, query

bp = Blueprint("audit", __name__)


def parse_since(text):
    """An ISO 8601 time; without a zone it is taken as UTC."""
    try:
        at = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(
            400, "validation_error", "since must be an ISO 8601 time", fields={"since": "must be an ISO 8601 time"}
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=datetime.UTC)


@bp.get("/audit-events")
@requires("auth.audit.read")
def list_audit_events():
    """Audit events, filtered by ?user_id=, ?event=, ?since=."""
    args = query(
        {
            "user_id": Int(required=False),
            "event": Str(max_len=100, required=False),
            "since": Str(max_len=64, required=False),
        }
    )
    since = parse_since(args["since"]) if "since" in args else None
    paging = page()
    with db.transaction() as conn:
        row = q.list_audit_events(conn, user_id=args.get("user_id"), event=args.get("event"), since=since, **paging)
    return listing(row, paging)
