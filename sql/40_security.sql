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
