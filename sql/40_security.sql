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
create table if not exists auth.login_failures (
    key             text primary key,
    failures        integer not null default 0,
    last_failure_at timestamptz not null default now(),
    locked_until    timestamptz
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

-- Count one login attempt against several keys (the account and the client IP) before the
-- password is checked, so that parallel guesses cannot all slip past the limit: the rows
-- are locked (in key order, so two attempts never deadlock) and counted in one
-- transaction. When any key is locked nothing is counted and the attempt is refused with
-- the seconds left. Otherwise each count goes up by one, starting over when its last
-- failure is older than its window; a count at or past its limit locks the key for
-- base * 2^(count - limit) seconds, capped. A successful login then takes its count back
-- (see db/security.sql), so only failures remain counted.
create or replace function auth.count_login_attempt(
    p_keys text[], p_limits int[], p_windows int[], p_base int, p_cap int
) returns table (blocked boolean, retry_after int)
language plpgsql as $$
declare
    k record;
    until timestamptz;
begin
    insert into auth.login_failures (key, failures, last_failure_at)
    select key, 0, now() from unnest(p_keys) as key order by key
    on conflict (key) do nothing;

    select max(f.locked_until) into until
    from (select * from auth.login_failures where key = any(p_keys) order by key for update) f
    where f.locked_until > now();
    if until is not null then
        return query select true, ceil(extract(epoch from until - now()))::int;
        return;
    end if;

    for k in select * from unnest(p_keys, p_limits, p_windows) as x(key, max_failures, window_seconds) loop
        update auth.login_failures f
        set failures = n.failures,
            last_failure_at = now(),
            locked_until = case when n.failures >= k.max_failures
                then now() + make_interval(secs => least(p_cap, p_base * 2 ^ least(n.failures - k.max_failures, 20)))
            end
        from (select case when last_failure_at < now() - make_interval(secs => k.window_seconds)
                          then 1 else failures + 1 end as failures
              from auth.login_failures where key = k.key) n
        where f.key = k.key;
    end loop;
    return query select false, 0;
end
$$;
