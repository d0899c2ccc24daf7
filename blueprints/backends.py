"""What backends use besides /check-token: their service keys, and the revocation feed.

Keys are managed by administrators (auth.rbac.read to list, auth.rbac.write to create and
revoke; keys of service auth need auth.admin, by the delegation rules). The feed is read
with a key.
"""

import datetime
import re
import time

from flask import Blueprint, current_app, g, request

import db
from blueprints.rbac import READ, WRITE, path_id, service_at
from db import queries as q
from web import audit, feed, service_keys
from web.delegation import admin_write
from web.errors import ApiError, not_found
from web.guard import AUTH_SERVICE, requires
from web.validation import Int, Str, json_body, query, validate

bp = Blueprint("backends", __name__)

KEY_FIELDS = {
    "name": Str(max_len=100, required=False, nullable=True),
    # seconds from now; none: until revoked
    "expires_in": Int(minimum=60, maximum=10 * 365 * 86400, required=False, nullable=True),
}
CURSOR = re.compile(r"([0-9]{1,20})\.([0-9]{1,19})")
MAX_WAIT_SECONDS = 25
FEED_PAGE = 1000


# --- service keys ---------------------------------------------------------------------------


@bp.post("/services/<ref>/keys")
@requires(WRITE)
def create_key(ref):
    """A new key of a service; its secret is in this answer and nowhere else, ever."""
    data = validate(json_body(optional=True), KEY_FIELDS)
    secret = service_keys.new_key()
    expires_in = data.get("expires_in")
    with admin_write() as write:
        service = service_at(write.conn, ref)
        if service["name"] == AUTH_SERVICE:
            write.require_admin_plane("a key of service auth")
        key = q.create_service_key(
            write.conn,
            service_id=service["id"],
            key_hash=service_keys.key_hash(secret),
            prefix=secret[: service_keys.SHOWN_PREFIX],
            name=data.get("name"),
            created_by=g.caller["user_id"],
            expires_at=None
            if expires_in is None
            else datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expires_in),
        )
        detail = {"kind": "service key", "service": service["name"], "key_id": key["id"], "key": key["prefix"]}
        audit.record(write.conn, "authn_token_created", detail=detail)
    return {**key, "key": secret}, 201


@bp.get("/services/<ref>/keys")
@requires(READ)
def list_keys(ref):
    """A service's keys: id, prefix, name, created, last used, expiry; never a secret."""
    with db.connection() as conn:
        service = service_at(conn, ref)
        return {"items": q.list_service_keys(conn, service_id=service["id"])}


@bp.delete("/services/<ref>/keys/<key_id>")
@requires(WRITE)
def revoke_key(ref, key_id):
    """Revoke a key: the next request with it is refused."""
    with admin_write() as write:
        service = service_at(write.conn, ref)
        if service["name"] == AUTH_SERVICE:
            write.require_admin_plane("a key of service auth")
        key = q.delete_service_key(write.conn, id=path_id("key", key_id), service_id=service["id"])
        if key is None:
            raise not_found(f"key {key_id} of service {service['name']}")
        detail = {"kind": "service key", "service": service["name"], "key_id": key["id"], "key": key["prefix"]}
        audit.record(write.conn, "authn_token_delete", detail=detail)
    return "", 204


# --- the revocation feed --------------------------------------------------------------------


def parse_cursor(text):
    """A cursor as (txid, id), the txid as text (xid8 has no integer cast); 400 for anything else."""
    found = CURSOR.fullmatch(text)
    if found is None or int(found[1]) >= 2**64 or int(found[2]) >= 2**63:
        message = "after must be a cursor from an earlier answer"
        raise ApiError(400, "validation_error", message, fields={"after": "is not a cursor"})
    return str(int(found[1])), int(found[2])


def event(row):
    """One feed event as the contract shows it."""
    answer = {"cursor": f"{row['txid']}.{row['id']}", "at": row["at"], "kind": row["kind"]}
    if row["kind"] == "token":
        answer["token_hash"] = row["token_hash"].hex()
    else:
        answer["user_id"], answer["service_id"] = row["user_id"], row["service_id"]
    return answer


@bp.get("/revocations")
def revocations():
    """What a backend's cache must forget since `after`, oldest first; waits up to `wait` seconds
    for the first event. Without `after`: no events, and the cursor to start from."""
    key = service_keys.presented(request.environ)
    if key is None:
        raise service_keys.invalid_key("send this backend's service key in the 'service-token' header")
    args = query(
        {
            "after": Str(max_len=41, required=False),
            "wait": Int(minimum=0, maximum=MAX_WAIT_SECONDS, required=False),
            "limit": Int(minimum=1, maximum=FEED_PAGE, required=False),
        }
    )
    if "after" not in args:
        with db.connection() as conn:
            caller(conn, key)
            head = q.revocations_head(conn)
        return {"events": [], "cursor": f"{head['txid']}.{head['id']}", "more": False}
    txid, last_id = parse_cursor(args["after"])
    limit = args.get("limit", FEED_PAGE)
    rows, retry_after = _wait_for_events(key, {"txid": txid, "id": last_id, "limit": limit}, args.get("wait", 0))
    events = [event(row) for row in rows]
    answer = {"events": events, "cursor": events[-1]["cursor"] if events else args["after"], "more": len(rows) == limit}
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return answer, 200, headers


def caller(conn, key):
    """The live key row of `key`, or the audited 401."""
    found = q.service_key_caller(conn, key_hash=service_keys.key_hash(key))
    if found is None:
        service_keys.refuse_unknown(conn, request.environ, key, "revocations")
    return found


def _wait_for_events(key, params, wait):
    """The events after the cursor in `params`, waiting up to `wait` seconds for the first one
    when a waiting slot is free; and the seconds to wait before asking again when none was. The
    key is checked at each look, so a key revoked meanwhile stops its follower within a second."""
    signal = current_app.extensions["revocation_signal"]
    deadline = time.monotonic() + wait
    holding = wait > 0 and signal.slots.acquire(blocking=False)
    try:
        while True:
            seen = signal.generation  # before the query, so a change during it is not slept through
            with db.connection() as conn:
                rows = q.revocations_after(conn, **params, service_id=caller(conn, key)["service_id"])
                # After the events, in a later snapshot: a purge that took some of them shows here.
                if q.revocations_expired(conn, txid=params["txid"], id=params["id"]):
                    raise ApiError(
                        410,
                        "cursor_expired",
                        "events after this cursor were purged: drop every cached answer, then follow the feed"
                        " again from a request without 'after'",
                    )
            remaining = deadline - time.monotonic()
            if rows or not holding or remaining <= 0:
                return rows, 1 if wait > 0 and not holding else 0
            signal.wait(seen, min(remaining, feed.RECHECK_SECONDS))
    finally:
        if holding:
            signal.slots.release()
