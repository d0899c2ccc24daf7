"""Delegated administration that cannot escalate: what an administrator may do to whom.

Every administrative write runs inside `admin_write()`: one transaction that first locks
service auth's row, so that decisions about who administers this service are taken one at
a time and on data that nothing else changes meanwhile. It reads the admin plane (service
auth, the roles linked to it, the auth.* permissions, who holds what there; db/rbac.sql
`admin_plane`) before the write and again after it, and rolls the write back when the
difference breaks a rule. Comparing the state, not the request, makes the rules hold for
every route and whichever spelling of ids or names a request uses:

1. the admin plane takes its own permission: a write that changes it needs auth.admin;
2. grant only what you hold: nobody gains an auth.* permission the caller lacks, and the
   caller's own auth.* permissions never change by the caller's hand;
3. manage only those below you: a user who loses an auth.* permission, or whose
   credentials are changed (`require_below`), holds none that the caller lacks;
5. nobody can lock the house: while one active user holds every built-in auth.*
   permission, a write may not leave none (409).

Rule 4 (own credentials need the current password) is the users routes' business, and the
rows rule 5 protects by name (service auth, role admin, the built-in permissions and their
links) are refused by the routes that would change them.
"""

from contextlib import contextmanager

from flask import g, request

import db
from db import queries as q
from web import audit
from web.errors import ApiError

ADMIN_PLANE = "auth.admin"


def is_admin_permission(name):
    """Whether a permission name is in the admin plane's namespace, as db/rbac.sql reads it."""
    return name.lower().startswith("auth.")


class Refused(Exception):
    """A write that breaks a delegation rule; rendered as 403 after the rollback."""

    def __init__(self, rule, message, user_id=None):
        super().__init__(message)
        self.rule, self.message, self.user_id = rule, message, user_id


class Plane:
    """One reading of the admin plane: its digest, each holder's auth.* permissions, the built-ins."""

    def __init__(self, row):
        self.digest = row["digest"]
        self.active = {int(user): holder["active"] for user, holder in row["holders"].items()}
        self.held = {int(user): frozenset(holder["permissions"]) for user, holder in row["holders"].items()}
        self.builtin = frozenset(row["builtin"])

    def permissions(self, user_id):
        """The auth.* permissions `user_id` holds in service auth (none when not a holder)."""
        return self.held.get(user_id, frozenset())

    def administrators(self):
        """The active users holding every built-in auth.* permission."""
        return {user for user, held in self.held.items() if self.active[user] and self.builtin <= held}


class AdminWrite:
    """An administrative write in progress: its connection, the caller, and the plane before it."""

    def __init__(self, conn, caller_id, permission):
        self.conn, self.caller_id = conn, caller_id
        q.lock_admin_plane(conn)
        self.before = Plane(q.admin_plane(conn))
        # A caller disabled since the route's check holds nothing any more.
        self.held = self.before.permissions(caller_id) if self.before.active.get(caller_id) else frozenset()
        # Checked again here, on locked data: another write may have taken it since the route's check.
        if permission not in self.held:
            raise Refused("permission", f"this needs permission {permission} in service auth")

    def require_admin_plane(self, what):
        """Rule 1, said up front for a change that is plainly to the admin plane."""
        if ADMIN_PLANE not in self.held:
            raise Refused("admin plane", f"{what} needs permission {ADMIN_PLANE}")

    def require_held(self, permissions):
        """Rule 2, said up front: the caller holds each of these auth.* permissions."""
        missing = set(permissions) - self.held
        if missing:
            raise Refused("grant only what you hold", f"you do not hold {', '.join(sorted(missing))} yourself")

    def require_not_self(self, user_id):
        """Rule 2, said up front: the caller's own grants in auth are someone else's to change."""
        if user_id == self.caller_id:
            raise Refused("grant only what you hold", "you may not change your own grants in service auth", user_id)

    def require_below(self, user_id):
        """Rule 3: `user_id` holds no auth.* permission that the caller lacks."""
        above = self.before.permissions(user_id) - self.held
        if above:
            raise Refused(
                "manage only those below you",
                f"user {user_id} holds {', '.join(sorted(above))}, which you do not",
                user_id=user_id,
            )

    def check(self):
        """Compare the plane after the write with the plane before it; raise on a broken rule."""
        after = Plane(q.admin_plane(self.conn))
        if after.digest != self.before.digest and ADMIN_PLANE not in self.held:
            raise Refused("admin plane", f"changes to service auth's roles and permissions need {ADMIN_PLANE}")
        # Deleting oneself ends one's grants too; that is leaving, not changing them.
        if after.permissions(self.caller_id) != self.held and q.exists_user(self.conn, id=self.caller_id):
            raise Refused("grant only what you hold", "you may not change your own grants in service auth")
        for user_id in self.before.held.keys() | after.held.keys():
            gained = after.permissions(user_id) - self.before.permissions(user_id)
            lost = self.before.permissions(user_id) - after.permissions(user_id)
            if gained - self.held:
                raise Refused(
                    "grant only what you hold",
                    f"user {user_id} would gain {', '.join(sorted(gained - self.held))}, which you do not hold",
                    user_id=user_id,
                )
            if lost:
                self.require_below(user_id)
        if self.before.administrators() and not after.administrators():
            raise ApiError(
                409,
                "conflict",
                "at least one active user must keep every built-in auth.* permission; this would leave none",
            )


@contextmanager
def admin_write():
    """A transaction for one administrative write by the caller, checked against the rules.

    The route's permission comes from `requires` (web/guard.py). A refusal rolls the whole
    write back, is audited as authz_fail in a transaction of its own, and answers 403.
    """
    try:
        with db.transaction() as conn:
            write = AdminWrite(conn, g.caller["user_id"], g.permission)
            yield write
            write.check()
    except Refused as refusal:
        with db.transaction() as conn:
            detail = {"rule": refusal.rule, "endpoint": request.endpoint}
            audit.record(conn, "authz_fail", user_id=refusal.user_id, detail=detail)
        raise ApiError(403, "forbidden", f"refused by the rule '{refusal.rule}': {refusal.message}") from None
