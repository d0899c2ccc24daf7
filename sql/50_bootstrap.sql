-- What the service needs to administer itself, in every database (not demo data):
-- service "auth", its permissions, and role "admin" holding them all there.
-- The first administrator comes from `flask --app app create-admin`.
insert into auth.services (name, description)
values ('auth', 'Eqeqo Auth API: users, roles and permissions')
on conflict (name) do nothing;

insert into auth.permissions (name, description, builtin) values
    ('auth.users.read', 'List and read users', true),
    ('auth.users.write', 'Create, change, disable and delete users below oneself; clear their login locks', true),
    ('auth.rbac.read', 'Read services, roles, permissions and their links', true),
    ('auth.rbac.write', 'Change the business services, their roles, permissions and links', true),
    ('auth.audit.read', 'Read the audit trail', true),
    ('auth.admin', 'Change who administers this service: roles and permissions in service auth', true)
on conflict (name) do update set builtin = true;

insert into auth.roles (name, description)
values ('admin', 'Administers the auth service')
on conflict (name) do nothing;

insert into auth.role_permissions (role_id, permission_id)
select r.id, p.id
from auth.roles r, auth.permissions p
where r.name = 'admin' and p.builtin
on conflict do nothing;

insert into auth.service_roles (service_id, role_id)
select s.id, r.id
from auth.services s, auth.roles r
where s.name = 'auth' and r.name = 'admin'
on conflict do nothing;
