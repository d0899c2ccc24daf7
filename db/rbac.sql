-- Services, roles, permissions and their links (sql/20_rbac.sql).
-- Names are unique: inserting or renaming onto a taken one raises a unique violation (409).

-- name: list_services^
-- All services, by id; total and one page.
select (select count(*) from auth.services) as total,
       coalesce((select json_agg(p order by p.id)
                 from (select id, name, description, active from auth.services
                       order by id limit %(limit)s offset %(offset)s) p), '[]') as items;

-- name: service_by_ref^
-- One service by id or by name (the other parameter is null).
select id, name, description, active
from auth.services
where id = %(service_id)s or name = %(service_name)s;

-- name: create_service^
-- A new service.
insert into auth.services (name, description)
values (%(name)s, %(description)s)
returning id, name, description, active;

-- name: update_service^
-- Change the given fields of a service.
update auth.services
set name        = coalesce(%(name)s, name),
    description = case when %(description_set)s then %(description)s else description end,
    active      = coalesce(%(active)s, active)
where id = %(id)s
returning id, name, description, active;

-- name: delete_service!
-- Delete a service; its role links and people's roles there go with it.
delete from auth.services where id = %(id)s;

-- name: list_roles^
-- All roles, by id; total and one page.
select (select count(*) from auth.roles) as total,
       coalesce((select json_agg(p order by p.id)
                 from (select id, name, description from auth.roles
                       order by id limit %(limit)s offset %(offset)s) p), '[]') as items;

-- name: role_by_id^
-- One role with the names of its permissions.
select r.id, r.name, r.description,
       coalesce(array_agg(p.name order by p.name) filter (where p.name is not null), '{}') as permissions
from auth.roles r
left join auth.role_permissions rp on rp.role_id = r.id
left join auth.permissions p on p.id = rp.permission_id
where r.id = %(id)s
group by r.id;

-- name: create_role^
-- A new role.
insert into auth.roles (name, description)
values (%(name)s, %(description)s)
returning id, name, description;

-- name: update_role^
-- Change the given fields of a role.
update auth.roles
set name        = coalesce(%(name)s, name),
    description = case when %(description_set)s then %(description)s else description end
where id = %(id)s
returning id, name, description;

-- name: delete_role!
-- Delete a role; its links to permissions, services and people go with it.
delete from auth.roles where id = %(id)s;

-- name: list_permissions^
-- All permissions, by id; total and one page.
select (select count(*) from auth.permissions) as total,
       coalesce((select json_agg(p order by p.id)
                 from (select id, name, description, builtin from auth.permissions
                       order by id limit %(limit)s offset %(offset)s) p), '[]') as items;

-- name: permission_by_id^
-- One permission.
select id, name, description, builtin from auth.permissions where id = %(id)s;

-- name: create_permission^
-- A new permission.
insert into auth.permissions (name, description)
values (%(name)s, %(description)s)
returning id, name, description, builtin;

-- name: update_permission^
-- Change the given fields of a permission.
update auth.permissions
set name        = coalesce(%(name)s, name),
    description = case when %(description_set)s then %(description)s else description end
where id = %(id)s
returning id, name, description, builtin;

-- name: delete_permission!
-- Delete a permission; roles lose it.
delete from auth.permissions where id = %(id)s;

-- name: list_role_permissions^
-- Role-permission links, optionally of one role.
with filtered as (
    select role_id, permission_id from auth.role_permissions
    where %(role_id)s::bigint is null or role_id = %(role_id)s
)
select (select count(*) from filtered) as total,
       coalesce((select json_agg(p order by p.role_id, p.permission_id)
                 from (select * from filtered order by role_id, permission_id
                       limit %(limit)s offset %(offset)s) p), '[]') as items;

-- name: add_role_permission$
-- Link a permission to a role; true when the link is new.
insert into auth.role_permissions (role_id, permission_id)
values (%(role_id)s, %(permission_id)s)
on conflict do nothing
returning true;

-- name: remove_role_permission!
-- Unlink a permission from a role.
delete from auth.role_permissions where role_id = %(role_id)s and permission_id = %(permission_id)s;

-- name: list_service_roles^
-- Service-role links, optionally of one service.
with filtered as (
    select service_id, role_id from auth.service_roles
    where %(service_id)s::bigint is null or service_id = %(service_id)s
)
select (select count(*) from filtered) as total,
       coalesce((select json_agg(p order by p.service_id, p.role_id)
                 from (select * from filtered order by service_id, role_id
                       limit %(limit)s offset %(offset)s) p), '[]') as items;

-- name: add_service_role$
-- Make a role assignable in a service; true when the link is new.
insert into auth.service_roles (service_id, role_id)
values (%(service_id)s, %(role_id)s)
on conflict do nothing
returning true;

-- name: remove_service_role!
-- Make a role unassignable in a service; people holding it there lose it (cascade).
delete from auth.service_roles where service_id = %(service_id)s and role_id = %(role_id)s;

-- name: is_admin_access$
-- Whether a service-role link is role "admin" in service "auth", which may not be removed.
select exists (
    select 1 from auth.services s, auth.roles r
    where s.id = %(service_id)s and r.id = %(role_id)s and s.name = 'auth' and r.name = 'admin'
);

-- name: is_builtin_admin_right$
-- Whether a role-permission link is a built-in auth.* permission of role "admin", which may
-- not be removed.
select exists (
    select 1 from auth.roles r, auth.permissions p
    where r.id = %(role_id)s and p.id = %(permission_id)s and r.name = 'admin' and p.builtin
);

-- name: list_person_service_roles^
-- Who holds which role where, optionally of one user and/or one service.
with filtered as (
    select user_id, service_id, role_id from auth.person_service_roles
    where (%(user_id)s::bigint is null or user_id = %(user_id)s)
      and (%(service_id)s::bigint is null or service_id = %(service_id)s)
)
select (select count(*) from filtered) as total,
       coalesce((select json_agg(p order by p.user_id, p.service_id, p.role_id)
                 from (select * from filtered order by user_id, service_id, role_id
                       limit %(limit)s offset %(offset)s) p), '[]') as items;

-- name: add_person_service_role$
-- Give a person a role in a service; true when new. The role must be assigned to the
-- service first, else the composite foreign key raises (409).
insert into auth.person_service_roles (user_id, service_id, role_id)
values (%(user_id)s, %(service_id)s, %(role_id)s)
on conflict do nothing
returning true;

-- name: remove_person_service_role!
-- Take a role in a service from a person.
delete from auth.person_service_roles
where user_id = %(user_id)s and service_id = %(service_id)s and role_id = %(role_id)s;

-- name: exists_user$
-- Whether a user id exists.
select exists (select 1 from auth.users where id = %(id)s);

-- name: exists_role$
-- Whether a role id exists.
select exists (select 1 from auth.roles where id = %(id)s);

-- name: role_auth_permissions$
-- The auth.* permissions a role carries, by name.
select coalesce(array_agg(p.name order by p.name), '{}')
from auth.role_permissions rp
join auth.permissions p on p.id = rp.permission_id
where rp.role_id = %(role_id)s and lower(p.name) like 'auth.%%';

-- name: lock_admin_plane$
-- Lock service auth's row for the rest of the transaction. Every administrative write takes
-- this lock first, so decisions about who administers the service are taken one at a time,
-- on data no other write can change meanwhile. No key update: readers and foreign-key checks
-- are not blocked.
select id from auth.services where name = 'auth' for no key update;

-- name: admin_plane^
-- What decides who administers this service, as the delegation rules (web/delegation.py)
-- compare it before and after a write: a digest of service auth, the roles linked to it,
-- the auth.* permissions and their links, and who holds which role there; each such user's
-- auth.* permissions and whether the user is active; and the built-in permissions.
with auth_service as (
    select id from auth.services where name = 'auth'
),
auth_permissions as (
    select id, name, description, builtin from auth.permissions where lower(name) like 'auth.%%'
),
holders as (
    select psr.user_id, bool_and(u.active) as active,
           coalesce(array_agg(distinct p.name) filter (where p.name is not null), '{}') as permissions
    from auth.person_service_roles psr
    join auth_service s on s.id = psr.service_id
    join auth.users u on u.id = psr.user_id
    left join auth.role_permissions rp on rp.role_id = psr.role_id
    left join auth_permissions p on p.id = rp.permission_id
    group by psr.user_id
)
select md5(concat_ws(
           '/',
           (select row(s.*)::text from auth.services s join auth_service using (id)),
           (select string_agg(row(r.id, r.name)::text, ',' order by r.id)
            from auth.service_roles sr
            join auth_service s on s.id = sr.service_id
            join auth.roles r on r.id = sr.role_id),
           (select string_agg(row(p.*)::text, ',' order by p.id) from auth_permissions p),
           (select string_agg(row(rp.*)::text, ',' order by rp.role_id, rp.permission_id)
            from auth.role_permissions rp
            join auth_permissions p on p.id = rp.permission_id),
           (select string_agg(row(psr.user_id, psr.role_id)::text, ',' order by psr.user_id, psr.role_id)
            from auth.person_service_roles psr
            join auth_service s on s.id = psr.service_id)
       )) as digest,
       (select coalesce(json_object_agg(h.user_id, json_build_object('active', h.active,
                                                                     'permissions', h.permissions)), '{}')
        from holders h) as holders,
       (select coalesce(array_agg(name order by name), '{}') from auth.permissions where builtin) as builtin;
