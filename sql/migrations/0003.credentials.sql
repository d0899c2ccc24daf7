-- The credential lifecycle (web/credentials.py, web/throttle.py, jobs.py).

-- credential_version: moved on by every password change and by disabling or enabling the
-- user. Sessions and reset codes record the version they were issued under and die with it,
-- so a login or a reset racing a change cannot outlive it.
-- pepper_id: which PASSWORD_PEPPER the hash was made with (security/passwords.py); null for
-- hashes from before it was recorded, which used the oldest pepper configured.
alter table auth.users add column credential_version integer not null default 1;
alter table auth.users add column pepper_id text;
alter table auth.tokens_cache add column credential_version integer not null default 1;

-- A reset code is bound to the address it was mailed to and to the user's credential
-- version then. Codes from before could be neither; they expire now.
alter table auth.password_reset_codes add column email text;
alter table auth.password_reset_codes add column credential_version integer;
update auth.password_reset_codes set expires_at = now() where expires_at > now();

-- Failed password checks within a window, one row per key (web/throttle.py): an account
-- ("user:<id>"), an account seen from an address that logged into it lately
-- ("user:<id>@<address>"), a name that matches no account ("login:<name>", so it behaves
-- like one), and a client address ("ip:<address>"). A row whose window has passed and
-- whose lock is over counts nothing and is purged. Attempts are no longer counted before
-- they are judged.
alter table auth.login_failures drop column in_flight;
alter table auth.login_failures drop column in_flight_at;
drop function auth.begin_login_attempt(text[], int[], int[]);
drop function auth.count_login_failure(text[], int[], int[], int, int);

-- The addresses each account logged in from successfully, and when last. Within
-- KNOWN_ADDRESS_DAYS such an address is not stopped by the account-wide lock, so a guesser
-- elsewhere cannot lock the owner out.
create table auth.login_addresses (
    user_id       bigint not null references auth.users on delete cascade,
    ip            text not null,
    last_login_at timestamptz not null default now(),
    primary key (user_id, ip)
);

-- Requests counted per key within a fixed window, for limits on requests that are not
-- password checks (password recovery: "forgot-ip:<address>", "forgot-login:<name>").
create table auth.request_counts (
    key          text primary key,
    window_start timestamptz not null default now(),
    count        integer not null default 0
);

-- Work for the background worker (jobs.py), written in the transaction of the change that
-- asks for it, so none is lost: mails ("mail": to, subject, text) and password-recovery
-- requests ("reset_request": the login as typed and the client address; the worker makes
-- the code when it sends, so no code is ever stored but as a digest). A job is claimed by
-- moving next_attempt_at past a lease, retried with backoff, and done when done_at is set.
create table auth.outbox (
    id              bigint generated always as identity primary key,
    kind            text not null,
    payload         jsonb not null,
    created_at      timestamptz not null default now(),
    attempts        integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_error      text,
    done_at         timestamptz
);
create index outbox_due_idx on auth.outbox (next_attempt_at) where done_at is null;

-- Throttling judges an attempt after its password check, never before: the check is admitted
-- while none of its keys is locked (a plain read), and auth.judge_login_attempt then decides,
-- on the keys' rows locked in key order (so two attempts never deadlock), what the attempt
-- counts for. An attempt judged while a key is locked, because parallel attempts locked it
-- meanwhile, counts nothing and gets the lock's wait, whether its password was right or
-- wrong: so however many guesses run in parallel, at most the limit get an answer that
-- depends on the password. A failure counts on every key, starting over when the key's
-- last failure is older than its window, and a count at or past the limit locks the key
-- for base * 2^(count - limit) seconds, capped. A success starts its `reset` keys over.
-- Returns blocked_for (seconds) when the attempt was judged while locked; else, per key,
-- the count and, when this failure locked it, the lock's length.
create or replace function auth.judge_login_attempt(
    p_keys text[], p_limits int[], p_windows int[], p_base int, p_cap int, p_failed boolean, p_reset text[]
) returns table (key text, failures int, locked_for int, blocked_for int)
language plpgsql as $$
declare
    wait_for int;
begin
    if p_failed then
        insert into auth.login_failures as f (key)
        select k from unnest(p_keys) as k order by k
        on conflict do nothing;
    end if;
    perform 1 from auth.login_failures f where f.key = any(p_keys) order by f.key for update;

    select max(ceil(extract(epoch from f.locked_until - now()))::int) into wait_for
    from auth.login_failures f
    where f.key = any(p_keys) and f.locked_until > now();
    if wait_for is not null then
        return query select null::text, null::int, null::int, wait_for;
        return;
    end if;

    if not p_failed then
        update auth.login_failures f set failures = 0, locked_until = null where f.key = any(p_reset);
        return;
    end if;

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
        locked_until = now() + make_interval(secs => l.locked_for)
    from locks l
    where f.key = l.key
    returning f.key, f.failures, l.locked_for, null::int;
end
$$;
