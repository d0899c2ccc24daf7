"""The audit trail: one row per security event, written in the caller's transaction,
and one log line named with the OWASP logging vocabulary (authn_*, authz_*, user_*)."""

import logging

from flask import g, has_request_context
from psycopg.types.json import Jsonb

from db import queries as q
from web.client_ip import client_ip

log = logging.getLogger("auth.audit")


def record(conn, event, user_id=None, detail=None, ip=None):
    """Append `event` about `user_id`, by the authenticated caller if any, from the client IP
    (outside a request, such as in the background worker: from `ip`)."""
    actor_id = None
    if has_request_context():
        caller = g.get("caller")
        actor_id = caller["user_id"] if caller else None
        ip = client_ip()
    q.record_audit_event(conn, event=event, user_id=user_id, actor_id=actor_id, ip=ip, detail=Jsonb(detail or {}))
    log.info(event, extra={"event": event, "user_id": user_id, "actor_id": actor_id, "ip": ip, "detail": detail or {}})
