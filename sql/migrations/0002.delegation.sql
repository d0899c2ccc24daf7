-- Delegated administration (web/delegation.py): the permission auth.admin, which the admin
-- plane takes, and the built-in flag of the auth.* permissions this service checks itself:
-- they, and their links to role admin, cannot be deleted or renamed, so administrators
-- cannot lock the house.

alter table auth.permissions add column builtin boolean not null default false;

insert into auth.permissions (name, description, builtin) values
    ('auth.users.read', 'List and read users', true),
    ('auth.users.write', 'Create, change, disable and delete users below oneself; clear their login locks', true),
    ('auth.rbac.read', 'Read services, roles, permissions and their links', true),
    ('auth.rbac.write', 'Change the business services, their roles, permissions and links', true),
    ('auth.audit.read', 'Read the audit trail', true),
    ('auth.admin', 'Change who administers this service: roles and permissions in service auth', true)
on conflict (name) do update set builtin = true, description = excluded.description;

insert into auth.role_permissions (role_id, permission_id)
select r.id, p.id
from auth.roles r, auth.permissions p
where r.name = 'admin' and p.builtin
on conflict do nothing;
