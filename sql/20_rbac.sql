-- Services, roles, permissions and who holds what where.
create table if not exists auth.services (
    id          bigint generated always as identity primary key,
    name        text not null unique,
    description text,
    active      boolean not null default true
);

create table if not exists auth.roles (
    id          bigint generated always as identity primary key,
    name        text not null unique,
    description text
);

create table if not exists auth.permissions (
    id          bigint generated always as identity primary key,
    name        text not null unique,
    description text
);
-- The auth.* permissions this service checks itself (sql/50_bootstrap.sql): they, and their
-- links to role admin, cannot be deleted or renamed, so administrators cannot lock the house.
alter table auth.permissions add column if not exists builtin boolean not null default false;

create table if not exists auth.role_permissions (
    role_id       bigint not null references auth.roles on delete cascade,
    permission_id bigint not null references auth.permissions on delete cascade,
    primary key (role_id, permission_id)
);
create index if not exists role_permissions_permission_idx on auth.role_permissions (permission_id);

create table if not exists auth.service_roles (
    service_id bigint not null references auth.services on delete cascade,
    role_id    bigint not null references auth.roles on delete cascade,
    primary key (service_id, role_id)
);
create index if not exists service_roles_role_idx on auth.service_roles (role_id);

-- The composite foreign key is the rule "a role may only be given in a service after
-- it was assigned to that service"; its cascade takes the role from people when the
-- service-role link goes.
create table if not exists auth.person_service_roles (
    user_id    bigint not null references auth.users on delete cascade,
    service_id bigint not null,
    role_id    bigint not null,
    primary key (user_id, service_id, role_id),
    foreign key (service_id, role_id) references auth.service_roles on delete cascade
);
create index if not exists person_service_roles_link_idx on auth.person_service_roles (service_id, role_id);

-- One row per (user, service, role, permission) a user holds in an active service;
-- permission is null for a role that carries none. check-token, the profile and
-- GET /users/{id} all read grants through it, so they cannot disagree.
create or replace view auth.user_grants as
select psr.user_id, s.id as service_id, s.name as service, r.name as role, p.name as permission
from auth.person_service_roles psr
join auth.services s on s.id = psr.service_id and s.active
join auth.roles r on r.id = psr.role_id
left join auth.role_permissions rp on rp.role_id = r.id
left join auth.permissions p on p.id = rp.permission_id;

-- A user's grants in every service, as the JSON array the profile shows. PL/pgSQL, so its
-- plan is cached per connection (a SQL function called per row is planned on every call).
create or replace function auth.user_services(p_user_id bigint) returns json
language plpgsql stable as $$
begin
    return (
        select coalesce(json_agg(x order by x.service), '[]')
        from (
            select g.service_id, g.service,
                   array_agg(distinct g.role order by g.role) as roles,
                   coalesce(array_agg(distinct g.permission order by g.permission)
                            filter (where g.permission is not null), '{}') as permissions
            from auth.user_grants g
            where g.user_id = p_user_id
            group by g.service_id, g.service
        ) x
    );
end
$$;
