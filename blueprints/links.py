"""The links of administration: permissions to roles, roles to services, people to roles in services.

Each link table has a list, an add and a remove route. A DELETE takes its fields from the
JSON body or, for clients that drop DELETE bodies, from the query string. Writes run in
`admin_write()` (web/delegation.py); those that touch service auth say which rule they
need up front, and the comparison of the admin plane before and after catches the rest.
"""

import psycopg
from flask import Blueprint, request

import db
from blueprints.rbac import READ, WRITE, find_service
from db import queries as q
from web import audit
from web.delegation import admin_write, is_admin_permission
from web.errors import ApiError, not_found
from web.guard import AUTH_SERVICE, requires
from web.validation import IdOrName, Int, body, json_body, listing, page, query, validate

bp = Blueprint("links", __name__)

ID = Int(strings=True)
ROLE_PERMISSION = {"role_id": ID, "permission_id": ID}
SERVICE_ROLE = {"service_id": IdOrName(), "role_id": ID}
PERSON_SERVICE_ROLE = {"user_id": ID, "service_id": IdOrName(), "role_id": ID}


def delete_fields(spec):
    """The fields of a link DELETE, from the JSON body or else the query string."""
    return validate(json_body(optional=True) or request.args.to_dict(), spec)


def optional(spec):
    """The same fields as query-string filters, none required."""
    return query({name: field.optional() for name, field in spec.items()})


def require_user(conn, user_id):
    """404 naming the user unless it exists."""
    if not q.exists_user(conn, id=user_id):
        raise not_found(f"user {user_id}")


def require_role(conn, role_id):
    """404 naming the role unless it exists."""
    if not q.exists_role(conn, id=role_id):
        raise not_found(f"role {role_id}")


def permission(conn, permission_id):
    """The permission, or 404 naming it."""
    row = q.permission_by_id(conn, id=permission_id)
    if row is None:
        raise not_found(f"permission {permission_id}")
    return row


def record(write, action, link):
    """Audit a link that changed."""
    audit.record(write.conn, "authz_change", user_id=link.get("user_id"), detail={"action": action, **link})


# --- role-permissions -----------------------------------------------------------------------


@bp.get("/role-permissions")
@requires(READ)
def list_role_permissions():
    """Role-permission links, optionally of one role (?role_id=)."""
    role_id = optional({"role_id": ID}).get("role_id")
    paging = page()
    with db.connection() as conn:
        if role_id is not None:
            require_role(conn, role_id)
        return listing(q.list_role_permissions(conn, role_id=role_id, **paging), paging)


@bp.post("/role-permissions")
@requires(WRITE)
def add_role_permission():
    """Give a role a permission; an auth.* one needs auth.admin and must be the caller's own."""
    data = body(ROLE_PERMISSION)
    with admin_write() as write:
        require_role(write.conn, data["role_id"])
        name = permission(write.conn, data["permission_id"])["name"]
        if is_admin_permission(name):
            write.require_admin_plane(f"giving a role permission {name}")
            write.require_held([name])
        created = q.add_role_permission(write.conn, **data)
        if created:
            record(write, "add role_permission", data)
    return data, 201 if created else 200


@bp.delete("/role-permissions")
@requires(WRITE)
def remove_role_permission():
    """Take a permission from a role; role admin keeps the built-in ones."""
    data = delete_fields(ROLE_PERMISSION)
    with admin_write() as write:
        require_role(write.conn, data["role_id"])
        permission(write.conn, data["permission_id"])
        if q.is_builtin_admin_right(write.conn, **data):
            raise ApiError(409, "conflict", "role admin keeps every built-in auth.* permission")
        if q.remove_role_permission(write.conn, **data):
            record(write, "remove role_permission", data)
    return "", 204


# --- service-roles --------------------------------------------------------------------------


@bp.get("/service-roles")
@requires(READ)
def list_service_roles():
    """Service-role links, optionally of one service (?service_id=, id or name)."""
    ref = optional({"service_id": IdOrName()}).get("service_id")
    paging = page()
    with db.connection() as conn:
        service_id = find_service(conn, ref)["id"] if ref else None
        return listing(q.list_service_roles(conn, service_id=service_id, **paging), paging)


@bp.post("/service-roles")
@requires(WRITE)
def add_service_role():
    """Make a role assignable in a service; linking to service auth needs auth.admin."""
    data = body(SERVICE_ROLE)
    with admin_write() as write:
        service = find_service(write.conn, data["service_id"])
        require_role(write.conn, data["role_id"])
        if service["name"] == AUTH_SERVICE:
            write.require_admin_plane("linking a role to service auth")
            write.require_held(q.role_auth_permissions(write.conn, role_id=data["role_id"]))
        link = {"service_id": service["id"], "role_id": data["role_id"]}
        created = q.add_service_role(write.conn, **link)
        if created:
            record(write, "add service_role", link)
    return link, 201 if created else 200


@bp.delete("/service-roles")
@requires(WRITE)
def remove_service_role():
    """Make a role unassignable in a service; people lose it there. Role admin stays in auth."""
    data = delete_fields(SERVICE_ROLE)
    with admin_write() as write:
        service = find_service(write.conn, data["service_id"])
        require_role(write.conn, data["role_id"])
        link = {"service_id": service["id"], "role_id": data["role_id"]}
        if q.is_admin_access(write.conn, **link):
            raise ApiError(409, "conflict", "role admin cannot be taken out of service auth")
        if q.remove_service_role(write.conn, **link):
            record(write, "remove service_role", link)
    return "", 204


# --- person-service-roles -------------------------------------------------------------------


@bp.get("/person-service-roles")
@requires(READ)
def list_person_service_roles():
    """Who holds which role where, optionally of one user and/or one service."""
    args = optional(PERSON_SERVICE_ROLE)
    paging = page()
    with db.connection() as conn:
        if "user_id" in args:
            require_user(conn, args["user_id"])
        service_id = find_service(conn, args["service_id"])["id"] if "service_id" in args else None
        row = q.list_person_service_roles(conn, user_id=args.get("user_id"), service_id=service_id, **paging)
    return listing(row, paging)


@bp.post("/person-service-roles")
@requires(WRITE)
def add_person_service_role():
    """Give a person a role in a service; 409 unless the role is assigned to that service.

    In service auth: needs auth.admin, never for oneself, and only a role whose auth.*
    permissions the caller holds.
    """
    data = body(PERSON_SERVICE_ROLE)
    try:
        with admin_write() as write:
            require_user(write.conn, data["user_id"])
            service = find_service(write.conn, data["service_id"])
            require_role(write.conn, data["role_id"])
            if service["name"] == AUTH_SERVICE:
                write.require_admin_plane("giving a role in service auth")
                write.require_not_self(data["user_id"])
                write.require_held(q.role_auth_permissions(write.conn, role_id=data["role_id"]))
            link = {"user_id": data["user_id"], "service_id": service["id"], "role_id": data["role_id"]}
            created = q.add_person_service_role(write.conn, **link)
            if created:
                record(write, "add person_service_role", link)
    except psycopg.errors.ForeignKeyViolation:
        raise ApiError(
            409, "conflict", "the role is not assigned to that service; add it with POST /service-roles first"
        ) from None
    return link, 201 if created else 200


@bp.delete("/person-service-roles")
@requires(WRITE)
def remove_person_service_role():
    """Take a role in a service from a person; in service auth, only from someone below the caller."""
    data = delete_fields(PERSON_SERVICE_ROLE)
    with admin_write() as write:
        require_user(write.conn, data["user_id"])
        service = find_service(write.conn, data["service_id"])
        require_role(write.conn, data["role_id"])
        if service["name"] == AUTH_SERVICE:
            write.require_admin_plane("taking a role in service auth")
            write.require_not_self(data["user_id"])
            write.require_below(data["user_id"])
        link = {"user_id": data["user_id"], "service_id": service["id"], "role_id": data["role_id"]}
        if q.remove_person_service_role(write.conn, **link):
            record(write, "remove person_service_role", link)
    return "", 204
