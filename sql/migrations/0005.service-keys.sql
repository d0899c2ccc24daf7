-- Backends as clients: the keys they present, and the feed of what their caches must forget.

-- What a backend presents to /check-token and /revocations. Only the SHA-256 digest of the
-- secret is kept: the secret is 256 random bits, so a slow hash would buy nothing and cost
-- every check. `prefix` is the secret's start, so a key found leaked can be told apart in
-- GET /services/{ref}/keys.
create table auth.service_keys (
    id           bigint generated always as identity primary key,
    service_id   bigint not null references auth.services on delete cascade,
    key_hash     bytea not null unique,
    prefix       text not null,
    name         text,
    created_at   timestamptz not null default now(),
    created_by   bigint references auth.users on delete set null,
    last_used_at timestamptz,
    expires_at   timestamptz
);
create index service_keys_service_idx on auth.service_keys (service_id);

-- A key was used: last_used_at moves at most once a minute, and a check never waits for
-- another one that is moving it (skip locked). PL/pgSQL, so its plan is cached per connection.
create function auth.touch_service_key(p_key_id bigint)
returns void
language plpgsql volatile as $$
begin
    update auth.service_keys k
    set last_used_at = now()
    where k.id = (
        select c.id
        from auth.service_keys c
        where c.id = p_key_id and (c.last_used_at is null or c.last_used_at < now() - interval '1 minute')
        for update skip locked
    );
end
$$;

-- The revocation feed (GET /revocations): what a backend that caches check-token answers
-- must forget.
--   kind 'token':   the session with this digest ended before its deadline (logout,
--                   logout-all, the other sessions at a password change, disable, delete,
--                   the session cap);
--   kind 'user':    what check-token says about this user changed: his grants in service_id
--                   (or anything about him, when service_id is null);
--   kind 'service': what check-token says about anyone in this service changed (the service,
--                   its roles, their permissions).
-- Triggers write the rows in the transaction of the change, so no change is left out and a
-- change that rolls back publishes nothing. Readers take rows in (txid, id) order, and only
-- from transactions older than every one still running (pg_snapshot_xmin), so a row that
-- commits late can never land behind a cursor already handed out.
create table auth.revocations (
    txid       xid8 not null default pg_current_xact_id(),
    id         bigint generated always as identity,
    at         timestamptz not null default now(),
    kind       text not null check (kind in ('token', 'user', 'service')),
    token_hash bytea,
    user_id    bigint,
    service_id bigint,
    primary key (txid, id)
);
create index revocations_at_idx on auth.revocations (at);

-- The newest (txid, id) the purge removed: a cursor before it has missed events (410).
create table auth.revocations_horizon (
    one  boolean primary key default true check (one),
    txid xid8 not null,
    id   bigint not null
);
insert into auth.revocations_horizon (txid, id) values ('0', 0);

-- Sessions deleted while still live; the purge of dead ones publishes nothing.
create function auth.publish_ended_sessions()
returns trigger
language plpgsql as $$
begin
    insert into auth.revocations (kind, token_hash, user_id)
    select 'token', gone.token_hash, gone.user_id from gone where gone.expires_at > now();
    if found then
        perform pg_notify('auth_revocations', '');
    end if;
    return null;
end
$$;
create trigger tokens_cache_ended after delete on auth.tokens_cache
referencing old table as gone
for each statement execute function auth.publish_ended_sessions();

-- A user's status, credentials or names changed: every answer about him is stale.
create function auth.publish_user_change()
returns trigger
language plpgsql as $$
begin
    insert into auth.revocations (kind, user_id) values ('user', new.id);
    perform pg_notify('auth_revocations', '');
    return null;
end
$$;
create trigger users_changed after update on auth.users
for each row
when (old.active is distinct from new.active
      or old.credential_version is distinct from new.credential_version
      or old.username is distinct from new.username
      or old.name is distinct from new.name)
execute function auth.publish_user_change();

-- A role given or taken: that user's answers in that service are stale.
create function auth.publish_grant_change()
returns trigger
language plpgsql as $$
begin
    if tg_op in ('UPDATE', 'DELETE') then
        insert into auth.revocations (kind, user_id, service_id) values ('user', old.user_id, old.service_id);
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        insert into auth.revocations (kind, user_id, service_id) values ('user', new.user_id, new.service_id);
    end if;
    perform pg_notify('auth_revocations', '');
    return null;
end
$$;
create trigger person_service_roles_changed after insert or update or delete on auth.person_service_roles
for each row execute function auth.publish_grant_change();

-- A service's name or status, a role's name or permissions, a permission's name: every
-- answer in the services concerned is stale. p_service_ids: those services.
create function auth.publish_service_change(p_service_ids bigint[])
returns void
language plpgsql as $$
begin
    insert into auth.revocations (kind, service_id) select 'service', s from unnest(p_service_ids) s;
    if found then
        perform pg_notify('auth_revocations', '');
    end if;
end
$$;

create function auth.publish_service_row_change()
returns trigger
language plpgsql as $$
begin
    perform auth.publish_service_change(array[old.id]);
    return null;
end
$$;
create trigger services_changed after update on auth.services
for each row when (old.name is distinct from new.name or old.active is distinct from new.active)
execute function auth.publish_service_row_change();
create trigger services_deleted after delete on auth.services
for each row execute function auth.publish_service_row_change();

create function auth.publish_role_change()
returns trigger
language plpgsql as $$
begin
    perform auth.publish_service_change(
        array(select sr.service_id from auth.service_roles sr where sr.role_id = old.id)
    );
    return null;
end
$$;
create trigger roles_renamed after update on auth.roles
for each row when (old.name is distinct from new.name) execute function auth.publish_role_change();

create function auth.publish_role_permission_change()
returns trigger
language plpgsql as $$
declare
    changed_role bigint := case when tg_op = 'DELETE' then old.role_id else new.role_id end;
begin
    perform auth.publish_service_change(
        array(select sr.service_id from auth.service_roles sr where sr.role_id = changed_role)
    );
    return null;
end
$$;
create trigger role_permissions_changed after insert or delete on auth.role_permissions
for each row execute function auth.publish_role_permission_change();

create function auth.publish_permission_change()
returns trigger
language plpgsql as $$
begin
    perform auth.publish_service_change(
        array(
            select distinct sr.service_id
            from auth.role_permissions rp
            join auth.service_roles sr on sr.role_id = rp.role_id
            where rp.permission_id = old.id
        )
    );
    return null;
end
$$;
create trigger permissions_renamed after update on auth.permissions
for each row when (old.name is distinct from new.name) execute function auth.publish_permission_change();
