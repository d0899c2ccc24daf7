"""Administration of services, roles and permissions (the links between them: blueprints/links.py).

Every write runs in `admin_write()` (web/delegation.py), which holds it to the delegation
rules; the routes here refuse (409) what would take administration away from everyone:
deleting, renaming or disabling service auth, role admin, or a built-in permission.
"""

import psycopg
from flask import Blueprint

import db
from db import queries as q
from web import audit
from web.delegation import admin_write
from web.errors import ApiError, not_found
from web.guard import AUTH_SERVICE, requires
from web.validation import Bool, IdOrName, Int, Str, body, listing, page, service_lookup

bp = Blueprint("rbac", __name__)

READ, WRITE = "auth.rbac.read", "auth.rbac.write"
ADMIN_ROLE = "admin"  # holds every built-in auth.* permission in service "auth" (sql/50_bootstrap.sql)
DESCRIPTION = Str(max_len=1000, required=False, nullable=True)
# Service names start with a letter, so a reference that is all digits is always an id.
SERVICE_NAME = Str(max_len=63, pattern=r"[a-z][a-z0-9_.-]*")
ROLE_OR_PERMISSION_NAME = Str(max_len=100, pattern=r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
SERVICE_FIELDS = {"name": SERVICE_NAME, "description": DESCRIPTION, "active": Bool(required=False)}
NAMED_FIELDS = {"name": ROLE_OR_PERMISSION_NAME, "description": DESCRIPTION}


def name_taken(kind):
    """409 for a unique violation on a name."""
    return ApiError(409, "conflict", f"that {kind} name is already taken", fields={"name": "is already taken"})


def changes(fields):
    """The body of a PUT: any of `fields`, at least one."""
    return body({name: field.optional() for name, field in fields.items()}, at_least_one=True)


def find_service(conn, ref):
    """A service by a checked IdOrName reference, or 404 naming it."""
    service = q.service_by_ref(conn, **service_lookup(ref))
    if service is None:
        raise not_found(f"service {ref[1]}")
    return service


def service_at(conn, text):
    """The service a path segment names (id or name), or 404."""
    try:
        ref = IdOrName().check(text)
    except ValueError:
        raise not_found(f"service {text}") from None
    return find_service(conn, ref)


def path_id(kind, text):
    """A numeric path segment as an id; 404 when it cannot be one."""
    try:
        return Int(strings=True).check(text)
    except ValueError:
        raise not_found(f"{kind} {text}") from None


def role_at(conn, text):
    """The role a path segment names, with its permission names, or 404."""
    role = q.role_by_id(conn, id=path_id("role", text))
    if role is None:
        raise not_found(f"role {text}")
    return role


def permission_at(conn, text):
    """The permission a path segment names, or 404."""
    permission = q.permission_by_id(conn, id=path_id("permission", text))
    if permission is None:
        raise not_found(f"permission {text}")
    return permission


# --- services -------------------------------------------------------------------------------


@bp.get("/services")
@requires(READ)
def list_services():
    """All services, a page at a time."""
    paging = page()
    with db.connection() as conn:
        return listing(q.list_services(conn, **paging), paging)


@bp.post("/services")
@requires(WRITE)
def create_service():
    """A new service; 409 on a taken name."""
    data = body(SERVICE_FIELDS)
    try:
        with admin_write() as write:
            service = q.create_service(write.conn, name=data["name"], description=data.get("description"))
            audit.record(
                write.conn,
                "authz_admin",
                detail={"action": "create service", "id": service["id"], "name": service["name"]},
            )
    except psycopg.errors.UniqueViolation:
        raise name_taken("service") from None
    return service, 201


@bp.get("/services/<ref>")
@requires(READ)
def get_service(ref):
    """One service, by id or name."""
    with db.connection() as conn:
        return service_at(conn, ref)


@bp.put("/services/<ref>")
@requires(WRITE)
def update_service(ref):
    """Change a service's name, description or active flag."""
    data = changes(SERVICE_FIELDS)
    try:
        with admin_write() as write:
            service = service_at(write.conn, ref)
            if service["name"] == AUTH_SERVICE and (
                data.get("name", AUTH_SERVICE) != AUTH_SERVICE or not data.get("active", True)
            ):
                raise ApiError(409, "conflict", "service auth is this service itself; it cannot be renamed or disabled")
            service = q.update_service(
                write.conn,
                id=service["id"],
                name=data.get("name"),
                description=data.get("description"),
                description_set="description" in data,
                active=data.get("active"),
            )
            audit.record(
                write.conn,
                "authz_admin",
                detail={"action": "update service", "id": service["id"], "changed": sorted(data)},
            )
    except psycopg.errors.UniqueViolation:
        raise name_taken("service") from None
    return service


@bp.delete("/services/<ref>")
@requires(WRITE)
def delete_service(ref):
    """Delete a service; its role links, and people's roles there, go with it."""
    with admin_write() as write:
        service = service_at(write.conn, ref)
        if service["name"] == AUTH_SERVICE:
            raise ApiError(409, "conflict", "service auth is this service itself; it cannot be deleted")
        q.delete_service(write.conn, id=service["id"])
        audit.record(
            write.conn, "authz_admin", detail={"action": "delete service", "id": service["id"], "name": service["name"]}
        )
    return "", 204


# --- roles ----------------------------------------------------------------------------------


@bp.get("/roles")
@requires(READ)
def list_roles():
    """All roles, a page at a time."""
    paging = page()
    with db.connection() as conn:
        return listing(q.list_roles(conn, **paging), paging)


@bp.post("/roles")
@requires(WRITE)
def create_role():
    """A new role; 409 on a taken name."""
    data = body(NAMED_FIELDS)
    try:
        with admin_write() as write:
            role = q.create_role(write.conn, name=data["name"], description=data.get("description"))
            audit.record(
                write.conn, "authz_admin", detail={"action": "create role", "id": role["id"], "name": role["name"]}
            )
    except psycopg.errors.UniqueViolation:
        raise name_taken("role") from None
    return role, 201


@bp.get("/roles/<ref>")
@requires(READ)
def get_role(ref):
    """One role, with the names of its permissions."""
    with db.connection() as conn:
        return role_at(conn, ref)


@bp.put("/roles/<ref>")
@requires(WRITE)
def update_role(ref):
    """Change a role's name or description; role admin keeps its name."""
    data = changes(NAMED_FIELDS)
    try:
        with admin_write() as write:
            role = role_at(write.conn, ref)
            if role["name"] == ADMIN_ROLE and data.get("name", ADMIN_ROLE) != ADMIN_ROLE:
                raise ApiError(
                    409, "conflict", "role admin carries the auth service's own rights; it cannot be renamed"
                )
            role = q.update_role(
                write.conn,
                id=role["id"],
                name=data.get("name"),
                description=data.get("description"),
                description_set="description" in data,
            )
            audit.record(
                write.conn, "authz_admin", detail={"action": "update role", "id": role["id"], "changed": sorted(data)}
            )
    except psycopg.errors.UniqueViolation:
        raise name_taken("role") from None
    return role


@bp.delete("/roles/<ref>")
@requires(WRITE)
def delete_role(ref):
    """Delete a role; its links to permissions, services and people go with it."""
    with admin_write() as write:
        role = role_at(write.conn, ref)
        if role["name"] == ADMIN_ROLE:
            raise ApiError(409, "conflict", "role admin carries the auth service's own rights; it cannot be deleted")
        q.delete_role(write.conn, id=role["id"])
        audit.record(
            write.conn, "authz_admin", detail={"action": "delete role", "id": role["id"], "name": role["name"]}
        )
    return "", 204


# --- permissions ----------------------------------------------------------------------------


@bp.get("/permissions")
@requires(READ)
def list_permissions():
    """All permissions, a page at a time."""
    paging = page()
    with db.connection() as conn:
        return listing(q.list_permissions(conn, **paging), paging)


@bp.post("/permissions")
@requires(WRITE)
def create_permission():
    """A new permission; 409 on a taken name. An auth.* name is the admin plane's (auth.admin)."""
    data = body(NAMED_FIELDS)
    try:
        with admin_write() as write:
            permission = q.create_permission(write.conn, name=data["name"], description=data.get("description"))
            audit.record(
                write.conn,
                "authz_admin",
                detail={"action": "create permission", "id": permission["id"], "name": permission["name"]},
            )
    except psycopg.errors.UniqueViolation:
        raise name_taken("permission") from None
    return permission, 201


@bp.get("/permissions/<ref>")
@requires(READ)
def get_permission(ref):
    """One permission."""
    with db.connection() as conn:
        return permission_at(conn, ref)


@bp.put("/permissions/<ref>")
@requires(WRITE)
def update_permission(ref):
    """Change a permission's name or description; a built-in one keeps its name."""
    data = changes(NAMED_FIELDS)
    try:
        with admin_write() as write:
            permission = permission_at(write.conn, ref)
            if permission["builtin"] and data.get("name", permission["name"]) != permission["name"]:
                raise ApiError(409, "conflict", f"{permission['name']} is built in; it cannot be renamed")
            permission = q.update_permission(
                write.conn,
                id=permission["id"],
                name=data.get("name"),
                description=data.get("description"),
                description_set="description" in data,
            )
            audit.record(
                write.conn,
                "authz_admin",
                detail={"action": "update permission", "id": permission["id"], "changed": sorted(data)},
            )
    except psycopg.errors.UniqueViolation:
        raise name_taken("permission") from None
    return permission


@bp.delete("/permissions/<ref>")
@requires(WRITE)
def delete_permission(ref):
    """Delete a permission; roles lose it. A built-in one stays."""
    with admin_write() as write:
        permission = permission_at(write.conn, ref)
        if permission["builtin"]:
            raise ApiError(409, "conflict", f"{permission['name']} is built in; it cannot be deleted")
        q.delete_permission(write.conn, id=permission["id"])
        audit.record(
            write.conn,
            "authz_admin",
            detail={"action": "delete permission", "id": permission["id"], "name": permission["name"]},
        )
    return "", 204
