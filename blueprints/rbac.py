"""Administration of services, roles, permissions, and the links between them and people."""

import psycopg
from flask import Blueprint, request

import db
from db import queries as q
from web import audit
from web.errors import ApiError, not_found
from web.guard import AUTH_SERVICE, requires
from web.validation import Bool, IdOrName, Int, Str, body, json_body, listing, page, query, service_lookup, validate

bp = Blueprint("rbac", __name__)

READ, WRITE = "auth.rbac.read", "auth.rbac.write"
ADMIN_ROLE = "admin"  # holds every auth.* permission in service "auth" (sql/50_bootstrap.sql)
DESCRIPTION = Str(max_len=1000, required=False, nullable=True)
# Service names start with a letter, so a reference that is all digits is always an id.
SERVICE_NAME = Str(max_len=63, pattern=r"[a-z][a-z0-9_.-]*")
ROLE_OR_PERMISSION_NAME = Str(max_len=100, pattern=r"[A-Za-z0-9][A-Za-z0-9_.:-]*")


def name_taken(kind):
    """409 for a unique violation on a name."""
    return ApiError(409, "conflict", f"that {kind} name is already taken", fields={"name": "is already taken"})


def find_service(conn, ref):
    """A service by ("id", n) or ("name", s), or 404 naming it."""
    service = q.service_by_ref(conn, **service_lookup(ref))
    if service is None:
        raise not_found(f"service {ref[1]}")
    return service


def service_ref(text):
    """A path segment as a service reference; 404 when it can be neither."""
    try:
        return IdOrName().check(text)
    except ValueError:
        raise not_found(f"service {text}") from None


# --- services, roles, permissions: the same five routes each -----------------------------


def crud(path, kind, fields, find, protect=None):
    """Register list/create/get/update/delete of one kind of named resource.

    The SQL is in db/rbac.sql under list_<kind>s, create_<kind>, update_<kind> and
    delete_<kind>; `find(conn, ref)` returns the row or raises 404. `protect(row, change)`
    may refuse a change (409) that would lock administrators out.
    """
    plural = f"{kind}s"

    @bp.get(f"/{path}", endpoint=f"list_{plural}")
    @requires(READ)
    def list_all():
        paging = page()
        with db.transaction() as conn:
            row = getattr(q, f"list_{plural}")(conn, **paging)
        return listing(row, paging)

    @bp.post(f"/{path}", endpoint=f"create_{kind}")
    @requires(WRITE)
    def create():
        data = body(fields)
        try:
            with db.transaction() as conn:
                row = getattr(q, f"create_{kind}")(conn, name=data["name"], description=data.get("description"))
                audit.record(
                    conn, "authz_admin", detail={"action": f"create {kind}", "id": row["id"], "name": row["name"]}
                )
        except psycopg.errors.UniqueViolation:
            raise name_taken(kind) from None
        return row, 201

    @bp.get(f"/{path}/<ref>", endpoint=f"get_{kind}")
    @requires(READ)
    def get_one(ref):
        with db.transaction() as conn:
            return find(conn, ref)

    @bp.put(f"/{path}/<ref>", endpoint=f"update_{kind}")
    @requires(WRITE)
    def update(ref):
        spec = {name: field.optional() for name, field in fields.items()}
        data = body(spec, at_least_one=True)
        try:
            with db.transaction() as conn:
                current = find(conn, ref)
                if protect:
                    protect(current, data)
                params = {key: data.get(key) for key in spec}
                params["description_set"] = "description" in data
                row = getattr(q, f"update_{kind}")(conn, id=current["id"], **params)
                audit.record(
                    conn, "authz_admin", detail={"action": f"update {kind}", "id": row["id"], "changed": sorted(data)}
                )
        except psycopg.errors.UniqueViolation:
            raise name_taken(kind) from None
        return row

    @bp.delete(f"/{path}/<ref>", endpoint=f"delete_{kind}")
    @requires(WRITE)
    def delete(ref):
        with db.transaction() as conn:
            current = find(conn, ref)
            if protect:
                protect(current, None)
            getattr(q, f"delete_{kind}")(conn, id=current["id"])
            audit.record(
                conn, "authz_admin", detail={"action": f"delete {kind}", "id": current["id"], "name": current["name"]}
            )
        return "", 204


def by_id(kind):
    """A finder for roles and permissions, whose path reference is a numeric id."""

    def find(conn, ref):
        try:
            ident = Int(strings=True).check(ref)
        except ValueError:
            raise not_found(f"{kind} {ref}") from None
        row = getattr(q, f"{kind}_by_id")(conn, id=ident)
        if row is None:
            raise not_found(f"{kind} {ref}")
        return row

    return find


def protect_auth_service(service, change):
    """Service "auth" may not be deleted, renamed or disabled: admin access lives there."""
    if service["name"] != AUTH_SERVICE:
        return
    if change is None or change.get("name", AUTH_SERVICE) != AUTH_SERVICE or change.get("active") is False:
        raise ApiError(
            409, "conflict", "service auth is this service itself; it cannot be deleted, renamed or disabled"
        )


crud(
    "services",
    "service",
    {"name": SERVICE_NAME, "description": DESCRIPTION, "active": Bool(required=False)},
    lambda conn, ref: find_service(conn, service_ref(ref)),
    protect_auth_service,
)


def protect_admin_role(role, change):
    """Role "admin" may not be deleted or renamed: it is how administrators hold their rights."""
    if role["name"] == ADMIN_ROLE and (change is None or change.get("name", ADMIN_ROLE) != ADMIN_ROLE):
        raise ApiError(
            409, "conflict", "role admin carries the auth service's own rights; it cannot be deleted or renamed"
        )


crud(
    "roles",
    "role",
    {"name": ROLE_OR_PERMISSION_NAME, "description": DESCRIPTION},
    by_id("role"),
    protect_admin_role,
)
crud("permissions", "permission", {"name": ROLE_OR_PERMISSION_NAME, "description": DESCRIPTION}, by_id("permission"))


# --- links: role-permissions, service-roles, person-service-roles -----------------------

ID = Int(strings=True)


def resolve(conn, data):
    """Check that every referred id exists (404 naming it); service names become ids."""
    ids = {}
    for field, value in data.items():
        if field == "service_id":
            ids[field] = find_service(conn, value)["id"]
        else:
            kind = {"user_id": "user", "role_id": "role", "permission_id": "permission"}[field]
            if not getattr(q, f"exists_{kind}")(conn, id=value):
                raise not_found(f"{kind} {value}")
            ids[field] = value
    return ids


def link(path, kind, fields, filters, not_assignable=None):
    """Register list/add/remove of one link table (queries list_<kind>s, add_<kind>, remove_<kind>).

    The DELETE takes its fields from the JSON body or, for clients that drop DELETE bodies,
    from the query string.
    """
    spec = {name: (IdOrName() if name == "service_id" else ID) for name in fields}

    @bp.get(f"/{path}", endpoint=f"list_{kind}s")
    @requires(READ)
    def list_links():
        args = query({name: spec[name].optional() for name in filters})
        paging = page()
        with db.transaction() as conn:
            ids = resolve(conn, args)
            row = getattr(q, f"list_{kind}s")(conn, **{name: ids.get(name) for name in filters}, **paging)
        return listing(row, paging)

    @bp.post(f"/{path}", endpoint=f"add_{kind}")
    @requires(WRITE)
    def add():
        data = body(spec)
        try:
            with db.transaction() as conn:
                ids = resolve(conn, data)
                created = getattr(q, f"add_{kind}")(conn, **ids)
                if created:
                    audit.record(
                        conn, "authz_change", user_id=ids.get("user_id"), detail={"action": f"add {kind}", **ids}
                    )
        except psycopg.errors.ForeignKeyViolation:
            raise ApiError(409, "conflict", not_assignable) from None
        return ids, 201 if created else 200

    @bp.delete(f"/{path}", endpoint=f"remove_{kind}")
    @requires(WRITE)
    def remove():
        data = validate(json_body(optional=True) or request.args.to_dict(), spec)
        with db.transaction() as conn:
            ids = resolve(conn, data)
            if kind == "service_role" and q.is_admin_access(conn, **ids):
                raise ApiError(409, "conflict", "role admin cannot be taken out of service auth")
            if getattr(q, f"remove_{kind}")(conn, **ids):
                audit.record(
                    conn, "authz_change", user_id=ids.get("user_id"), detail={"action": f"remove {kind}", **ids}
                )
        return "", 204


link("role-permissions", "role_permission", ["role_id", "permission_id"], ["role_id"])
link("service-roles", "service_role", ["service_id", "role_id"], ["service_id"])
link(
    "person-service-roles",
    "person_service_role",
    ["user_id", "service_id", "role_id"],
    ["user_id", "service_id"],
    not_assignable="the role is not assigned to that service; add it with POST /service-roles first",
)
