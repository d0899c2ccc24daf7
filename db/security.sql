-- Login throttling, reset codes and the audit trail (sql/40_security.sql).

-- name: login_blocked$
-- The seconds to wait while any of the keys is locked, else null: admission of a password
-- check, before it runs. A plain read; attempts are counted only when judged.
select max(ceil(extract(epoch from locked_until - now()))::int)
from auth.login_failures
where key = any(%(keys)s) and locked_until > now();

-- name: judge_login_attempt
-- Judge a checked attempt (auth.judge_login_attempt, sql/40_security.sql): blocked_for when
-- a key was locked meanwhile, else each key's count and any lock this failure set.
select key, failures, locked_for, blocked_for
from auth.judge_login_attempt(%(keys)s, %(limits)s, %(windows)s, %(base)s, %(cap)s, %(failed)s, %(reset)s);

-- name: is_known_address$
-- Whether the user logged in successfully from this address within the last `days` days.
select exists (
    select 1 from auth.login_addresses
    where user_id = %(user_id)s and ip = %(ip)s and last_login_at > now() - make_interval(days => %(days)s)
);

-- name: remember_address!
-- Record a successful login of the user from this address.
insert into auth.login_addresses (user_id, ip) values (%(user_id)s, %(ip)s)
on conflict (user_id, ip) do update set last_login_at = now();

-- name: forget_account_failures!
-- Start an account's counts over and lift its locks, from every address (a password reset,
-- an administrator).
delete from auth.login_failures where key = 'user:' || %(user_id)s or key like 'user:' || %(user_id)s || '@%%';

-- name: count_request$
-- Count one request against each key within its fixed window; retry_after (seconds to the
-- end of the window) when a key is past its limit, else null. Keys are locked in the order
-- given, and callers give them in one fixed order, so two requests never deadlock.
with counted as (
    insert into auth.request_counts as c (key, count)
    select key, 1 from unnest(%(keys)s::text[]) as key
    on conflict (key) do update
    set window_start = case when c.window_start < now() - make_interval(secs => %(window)s)
                            then now() else c.window_start end,
        count = case when c.window_start < now() - make_interval(secs => %(window)s)
                     then 1 else c.count + 1 end
    returning c.key, c.count, c.window_start
)
select max(ceil(extract(epoch from c.window_start + make_interval(secs => %(window)s) - now()))::int)
           filter (where c.count > x.max_count) as retry_after
from counted c
join unnest(%(keys)s::text[], %(limits)s::int[]) as x(key, max_count) using (key);

-- name: create_reset_code!
-- A new reset code for a user, bound to the address it goes to and the user's credential
-- version, unless the user already had its hourly quota of mails. When one is stored, the
-- user's older unused codes expire, so only the newest works; they stay in the table, so
-- the quota still counts them.
with allowed as (
    select count(*) < %(per_hour)s as ok
    from auth.password_reset_codes
    where user_id = %(user_id)s and created_at > now() - interval '1 hour'
), voided as (
    update auth.password_reset_codes
    set expires_at = now()
    where user_id = %(user_id)s and used_at is null and expires_at > now() and (select ok from allowed)
)
insert into auth.password_reset_codes (code_hash, user_id, email, credential_version, expires_at)
select %(code_hash)s, u.id, u.email, u.credential_version, now() + make_interval(secs => %(ttl)s)
from auth.users u
where u.id = %(user_id)s and u.active and u.email is not null and (select ok from allowed);

-- name: void_reset_codes!
-- Expire a user's unused codes (the address they were mailed to is no longer the user's).
update auth.password_reset_codes set expires_at = now()
where user_id = %(user_id)s and used_at is null and expires_at > now();

-- name: withdraw_reset_code!
-- Forget a code that could not be mailed, so it counts toward no quota.
delete from auth.password_reset_codes where code_hash = %(code_hash)s;

-- name: spend_reset_code^
-- Mark a live, unused code as used and return its user (id, names, credential version), if the
-- user is active and still has the address and the credential version the code was issued
-- for; the row lock makes it single-use even when several resets race with the same code.
update auth.password_reset_codes c
set used_at = now()
from auth.users u
where c.code_hash = %(code_hash)s and c.used_at is null and c.expires_at > now()
  and u.id = c.user_id and u.active
  and lower(u.email) = lower(c.email) and u.credential_version = c.credential_version
returning c.user_id, u.username, u.name, u.email, u.credential_version;

-- name: record_audit_event!
-- Append one event to the audit trail.
insert into auth.audit_events (event, user_id, actor_id, ip, detail)
values (%(event)s, %(user_id)s, %(actor_id)s, %(ip)s, %(detail)s);

-- name: list_audit_events^
-- Audit events, newest first, filtered by user, event name and time; total and one page.
with filtered as (
    select id, event, user_id, actor_id, ip, at, detail
    from auth.audit_events
    where (%(user_id)s::bigint is null or user_id = %(user_id)s)
      and (%(event)s::text is null or event = %(event)s)
      and (%(since)s::timestamptz is null or at >= %(since)s)
)
select (select count(*) from filtered) as total,
       coalesce((select json_agg(p order by p.at desc, p.id desc)
                 from (select * from filtered order by at desc, id desc
                       limit %(limit)s offset %(offset)s) p), '[]') as items;

-- name: purge_old_reset_codes!
-- Reset codes older than a day count toward no limit and can go.
delete from auth.password_reset_codes where created_at < now() - interval '1 day';

-- name: purge_login_failures!
-- Counters whose window has passed and whose lock is over count nothing any more.
delete from auth.login_failures
where last_failure_at < now() - make_interval(secs => %(window)s)
  and (locked_until is null or locked_until < now());

-- name: purge_request_counts!
-- Request counters whose window has passed.
delete from auth.request_counts where window_start < now() - make_interval(secs => %(window)s);

-- name: purge_login_addresses!
-- Addresses no login came from for longer than they are remembered.
delete from auth.login_addresses where last_login_at < now() - make_interval(days => %(days)s);

-- name: purge_audit_events!
-- Audit events older than the retention.
delete from auth.audit_events where at < now() - make_interval(days => %(days)s);
