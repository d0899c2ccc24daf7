-- check-token read a user's grants in a service by joining five tables and sorting the roles
-- and permissions on every call: a fifth to a quarter of PostgreSQL's time on the statement
-- (README, Performance). Grants change rarely and are read on every request of the fleet, so
-- they are kept here already aggregated, one row per user and service, rewritten by the
-- transaction that changes them. auth.user_grants stays their one definition: a row here is
-- what that view aggregates to, and nothing else writes this table.
create table auth.grant_sets (
    user_id     bigint not null,
    service_id  bigint not null,
    roles       text[] not null,
    permissions text[] not null,
    primary key (user_id, service_id)
);
-- No foreign keys: the rows of a deleted user or service leave with his grants, through the
-- triggers below, and a key check here would lock the user's row from inside a trigger that
-- another transaction deleting him may be waiting on (a deadlock).

-- Rewrite the rows of every user whose grants may have changed: the users named, the holders
-- of the roles named, of roles that carry the permissions named, and of roles in the
-- services named.
create function auth.refresh_grant_sets(
    p_users bigint[] default '{}',
    p_roles bigint[] default '{}',
    p_permissions bigint[] default '{}',
    p_services bigint[] default '{}'
)
returns void
language plpgsql as $$
declare
    affected bigint[];
begin
    -- One rewrite at a time, and each reads (a statement after this one sees what committed
    -- meanwhile) what the ones before it committed. Without it two transactions, one giving a
    -- user a role and one adding a permission to that role, would each miss the other's
    -- uncommitted row and together leave the user without the permission.
    perform pg_advisory_xact_lock(7878_0008);
    affected := array(
        select unnest(p_users)
        union
        select psr.user_id
        from auth.person_service_roles psr
        where psr.role_id = any(p_roles)
           or psr.service_id = any(p_services)
           or psr.role_id in (select rp.role_id from auth.role_permissions rp where rp.permission_id = any(p_permissions))
    );
    delete from auth.grant_sets where user_id = any(affected);
    insert into auth.grant_sets (user_id, service_id, roles, permissions)
    select g.user_id, g.service_id,
           array_agg(distinct g.role order by g.role),
           coalesce(array_agg(distinct g.permission order by g.permission)
                    filter (where g.permission is not null), '{}')
    from auth.user_grants g
    where g.user_id = any(affected)
    group by g.user_id, g.service_id;
end
$$;

-- One trigger function for every table the grants are made of (PL/pgSQL compiles it once
-- per table, so each branch names only its own table's columns). On insert `old` is null,
-- on delete `new`: the array then holds a null, which matches nothing.
create function auth.grants_changed()
returns trigger
language plpgsql as $$
begin
    case tg_table_name
    when 'person_service_roles' then
        perform auth.refresh_grant_sets(p_users => array[old.user_id, new.user_id]);
    when 'role_permissions' then
        perform auth.refresh_grant_sets(p_roles => array[old.role_id, new.role_id]);
    when 'roles' then
        perform auth.refresh_grant_sets(p_roles => array[new.id]);
    when 'permissions' then
        perform auth.refresh_grant_sets(p_permissions => array[new.id]);
    when 'services' then
        perform auth.refresh_grant_sets(p_services => array[new.id]);
    end case;
    return null;
end
$$;
create trigger person_service_roles_grant_sets after insert or update or delete on auth.person_service_roles
for each row execute function auth.grants_changed();
create trigger role_permissions_grant_sets after insert or update or delete on auth.role_permissions
for each row execute function auth.grants_changed();
create trigger roles_grant_sets after update on auth.roles
for each row when (old.name is distinct from new.name) execute function auth.grants_changed();
create trigger permissions_grant_sets after update on auth.permissions
for each row when (old.name is distinct from new.name) execute function auth.grants_changed();
create trigger services_grant_sets after update on auth.services
for each row when (old.active is distinct from new.active) execute function auth.grants_changed();

-- What the grants are now (in a block: a select's result would be printed by the migration tool).
do $$
begin
    perform auth.refresh_grant_sets(p_users => array(select distinct user_id from auth.person_service_roles));
end
$$;
