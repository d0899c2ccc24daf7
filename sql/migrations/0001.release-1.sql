-- The schema of the first release, as its sql/run_all.sql built it. Every statement is safe on a
-- database that already has it (if not exists, or replace, or on conflict do nothing), so a
-- database built by that release is taken over as it is, and the migrations after this one
-- bring it up to date.

create schema if not exists auth;

-- People. Usernames and emails are unique without regard to case, so "Alice" cannot
-- shadow "alice" and login by either spelling finds one account.
create table if not exists auth.users (
    id            bigint generated always as identity primary key,
    username      text not null,
    name          text,
    email         text,
    password_hash text not null,
    active        boolean not null default true,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz
);
create unique index if not exists users_username_key on auth.users (lower(username));
create unique index if not exists users_email_key on auth.users (lower(email));

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

-- Live sessions. Only a SHA-256 digest of each token is kept, so reading this table
-- hands out no session. modified_at is deliberately not indexed: renewals then stay
-- HOT updates (no index write), and the fillfactor leaves room on the page for them.
-- The purge finds dead rows by a scan, which is cheap next to a write on every renewal.
create table if not exists auth.tokens_cache (
    token_hash  bytea primary key,
    user_id     bigint not null references auth.users on delete cascade,
    payload     jsonb not null,
    created_at  timestamptz not null default now(),
    modified_at timestamptz not null default now()
) with (fillfactor = 80);
create index if not exists tokens_cache_user_idx on auth.tokens_cache (user_id);

-- The one definition of a live session, shared by every statement that reads one: its row
-- while now() < modified_at + ttl and now() < created_at + max_lifetime. Plain SQL and
-- stable, so the planner inlines it into the calling statement.
create or replace function auth.live_token(p_token_hash bytea, p_ttl int, p_max_lifetime int)
returns setof auth.tokens_cache
language sql stable as $$
    select *
    from auth.tokens_cache
    where token_hash = p_token_hash
      and modified_at > now() - make_interval(secs => p_ttl)
      and created_at > now() - make_interval(secs => p_max_lifetime)
$$;

-- The one definition of the sliding renewal: move modified_at to now() only when it is
-- older than the threshold, so a busy token costs at most one write per window. A row that
-- another check is renewing at this moment is skipped (skip locked), so checks never wait
-- on each other; a row deleted by a logout stays deleted. Returns the new modified_at, or
-- null when nothing was written. PL/pgSQL, so its plan is cached per connection.
create or replace function auth.renew_token(p_token_hash bytea, p_threshold int)
returns timestamptz
language plpgsql volatile as $$
declare
    renewed_at timestamptz;
begin
    update auth.tokens_cache t
    set modified_at = now()
    where t.token_hash = (
        select c.token_hash
        from auth.tokens_cache c
        where c.token_hash = p_token_hash
          and c.modified_at < now() - make_interval(secs => p_threshold)
        for update skip locked
    )
    returning t.modified_at into renewed_at;
    return renewed_at;
end
$$;

-- Password-reset codes, stored as digests. A row is spent by setting used_at; spent
-- rows stay for a day so the per-hour mail limit can count them.
create table if not exists auth.password_reset_codes (
    code_hash  bytea primary key,
    user_id    bigint not null references auth.users on delete cascade,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at    timestamptz
);
create index if not exists password_reset_codes_user_idx on auth.password_reset_codes (user_id, created_at);

-- Failed-login counters, one row per account ("user:<id>", or "login:<name>" for names
-- that match no account, so both behave alike) and per client IP ("ip:<address>").
-- in_flight counts the attempts admitted but not yet judged (see auth.begin_login_attempt).
create table if not exists auth.login_failures (
    key             text primary key,
    failures        integer not null default 0,
    last_failure_at timestamptz not null default now(),
    locked_until    timestamptz,
    in_flight       integer not null default 0,
    in_flight_at    timestamptz
);

-- Who did what, kept after the user is deleted, hence no foreign keys.
create table if not exists auth.audit_events (
    id       bigint generated always as identity primary key,
    event    text not null,
    user_id  bigint,
    actor_id bigint,
    ip       text,
    at       timestamptz not null default now(),
    detail   jsonb not null default '{}'
);
create index if not exists audit_events_at_idx on auth.audit_events (at desc);
create index if not exists audit_events_user_idx on auth.audit_events (user_id, at desc);
create index if not exists audit_events_event_idx on auth.audit_events (event, at desc);

-- Login throttling, in two steps around the password check. The first step is committed
-- before the slow check, so parallel guesses see each other; the failure is counted only
-- in the second step, with the answer, so a database outage in between never counts.
--
-- auth.begin_login_attempt admits an attempt against several keys (the account and the
-- client IP). It locks their rows in key order (so two attempts never deadlock) and refuses
-- the attempt, with the seconds to wait, while a key is locked, or while attempts in flight
-- could still lock it: past the limit, attempts are judged one at a time, so parallel
-- guesses cannot slip by. An admitted attempt is in flight on every key until judged; one
-- that is never judged (the database went away) stops counting after 30 seconds, far
-- longer than any request may take.
create or replace function auth.begin_login_attempt(p_keys text[], p_limits int[], p_windows int[])
returns table (blocked boolean, retry_after int)
language plpgsql as $$
declare
    wait_for int;
begin
    insert into auth.login_failures (key)
    select key from unnest(p_keys) as key order by key
    on conflict (key) do nothing;
    perform 1 from auth.login_failures where key = any(p_keys) order by key for update;

    update auth.login_failures
    set in_flight = 0
    where key = any(p_keys) and in_flight_at < now() - interval '30 seconds';

    select max(case
               when f.locked_until > now() then ceil(extract(epoch from f.locked_until - now()))::int
               when f.in_flight > 0
                    and f.in_flight + case when f.last_failure_at < now() - make_interval(secs => x.window_seconds)
                                           then 0 else f.failures end >= x.max_failures then 1
           end) into wait_for
    from unnest(p_keys, p_limits, p_windows) as x(key, max_failures, window_seconds)
    join auth.login_failures f using (key);
    if wait_for is not null then
        return query select true, wait_for;
        return;
    end if;

    update auth.login_failures set in_flight = in_flight + 1, in_flight_at = now() where key = any(p_keys);
    return query select false, 0;
end
$$;

-- auth.count_login_failure judges an admitted attempt as failed: each key's count goes up
-- by one, starting over when its last failure is older than its window, and a count at or
-- past its limit locks the key for base * 2^(count - limit) seconds, capped. Returns each
-- key's count and, when this failure locked it, the lock's length in seconds.
create or replace function auth.count_login_failure(
    p_keys text[], p_limits int[], p_windows int[], p_base int, p_cap int
) returns table (key text, failures int, locked_for int)
language plpgsql as $$
begin
    perform 1 from auth.login_failures f where f.key = any(p_keys) order by f.key for update;
    return query
    with counted as (
        select x.key, x.max_failures,
               case when f.last_failure_at < now() - make_interval(secs => x.window_seconds)
                    then 1 else f.failures + 1 end as failures
        from unnest(p_keys, p_limits, p_windows) as x(key, max_failures, window_seconds)
        join auth.login_failures f using (key)
    ), locks as (
        select c.key, c.failures,
               case when c.failures >= c.max_failures
                    then least(p_cap, p_base * 2 ^ least(c.failures - c.max_failures, 20))::int end as locked_for
        from counted c
    )
    update auth.login_failures f
    set failures = l.failures,
        last_failure_at = now(),
        locked_until = now() + make_interval(secs => l.locked_for),
        in_flight = greatest(f.in_flight - 1, 0)
    from locks l
    where f.key = l.key
    returning f.key, f.failures, l.locked_for;
end
$$;

-- What the service needs to administer itself, in every database (not demo data):
-- service "auth", its permissions, and role "admin" holding them all there.
-- The first administrator comes from `flask --app app create-admin`.
insert into auth.services (name, description)
values ('auth', 'Eqeqo Auth API: users, roles and permissions')
on conflict (name) do nothing;

insert into auth.permissions (name, description) values
    ('auth.users.read', 'List and read users'),
    ('auth.users.write', 'Create, change, disable and delete users; clear login locks'),
    ('auth.rbac.read', 'Read services, roles, permissions and their links'),
    ('auth.rbac.write', 'Change services, roles, permissions and their links'),
    ('auth.audit.read', 'Read the audit trail')
on conflict (name) do nothing;

insert into auth.roles (name, description)
values ('admin', 'Administers the auth service')
on conflict (name) do nothing;

insert into auth.role_permissions (role_id, permission_id)
select r.id, p.id
from auth.roles r, auth.permissions p
where r.name = 'admin' and p.name like 'auth.%'
on conflict do nothing;

insert into auth.service_roles (service_id, role_id)
select s.id, r.id
from auth.services s, auth.roles r
where s.name = 'auth' and r.name = 'admin'
on conflict do nothing;

