-- Login throttling, reset codes and the audit trail (sql/40_security.sql).

-- name: begin_login_attempt^
-- Admit a login attempt against the account and IP keys, or refuse it (blocked, retry_after).
select blocked, retry_after
from auth.begin_login_attempt(%(keys)s, %(limits)s, %(windows)s);

-- name: count_login_failure
-- Count a failed attempt against its keys; each key's count, and locked_for when it now locks.
select key, failures, locked_for
from auth.count_login_failure(%(keys)s, %(limits)s, %(windows)s, %(base)s, %(cap)s);

-- name: count_login_success!
-- A successful attempt is no longer in flight, and its account's count starts over; an IP's
-- count stays, or one good account would let an IP guess at every other. Rows are locked
-- in key order, as the functions lock them, so concurrent attempts never deadlock.
update auth.login_failures f
set in_flight = greatest(f.in_flight - 1, 0),
    failures = case when f.key = %(account_key)s then 0 else f.failures end,
    locked_until = case when f.key = %(account_key)s then null else f.locked_until end
from (select key from auth.login_failures
      where key in (%(account_key)s, %(ip_key)s) order by key for update) locked
where f.key = locked.key;

-- name: forget_account_failures!
-- Start an account's count over and lift its lock (password reset, an administrator).
update auth.login_failures set failures = 0, locked_until = null where key = %(key)s;

-- name: create_reset_code!
-- A new reset code for a user, unless the user already had its hourly quota of mails.
-- When one is stored, the user's older unused codes expire, so only the newest works;
-- they stay in the table, so the quota still counts them.
with allowed as (
    select count(*) < %(per_hour)s as ok
    from auth.password_reset_codes
    where user_id = %(user_id)s and created_at > now() - interval '1 hour'
), voided as (
    update auth.password_reset_codes
    set expires_at = now()
    where user_id = %(user_id)s and used_at is null and expires_at > now() and (select ok from allowed)
)
insert into auth.password_reset_codes (code_hash, user_id, expires_at)
select %(code_hash)s, %(user_id)s, now() + make_interval(secs => %(ttl)s)
where (select ok from allowed);

-- name: spend_reset_code^
-- Mark a live, unused code of an active user as used and return the user (id, username,
-- email); the row lock makes it single-use even when several resets race with the same code.
update auth.password_reset_codes c
set used_at = now()
from auth.users u
where c.code_hash = %(code_hash)s and c.used_at is null and c.expires_at > now()
  and u.id = c.user_id and u.active
returning c.user_id, u.username, u.email;

-- name: purge_old_reset_codes!
-- Reset codes older than a day count toward no limit and can go.
delete from auth.password_reset_codes where created_at < now() - interval '1 day';

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
