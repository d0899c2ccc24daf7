-- Login throttling, reset codes and the audit trail (sql/40_security.sql).

-- name: count_login_attempt^
-- Count an attempt against the account and IP keys; blocked with retry_after when locked.
select blocked, retry_after
from auth.count_login_attempt(%(keys)s, %(limits)s, %(windows)s, %(base)s, %(cap)s);

-- name: forget_account_failures!
-- A successful login resets the account's count (and lifts a lock an admin clears).
delete from auth.login_failures where key = %(key)s;

-- name: take_back_ip_attempt!
-- A successful login was counted against its IP in advance; take that count back.
update auth.login_failures
set failures = greatest(failures - 1, 0),
    locked_until = case when failures - 1 >= %(max_failures)s then locked_until end
where key = %(key)s;

-- name: create_reset_code!
-- A new reset code for a user; unused older codes are voided so only the newest works.
-- Nothing is stored when the user already had its hourly quota of mails.
with voided as (
    delete from auth.password_reset_codes
    where user_id = %(user_id)s and used_at is null
)
insert into auth.password_reset_codes (code_hash, user_id, expires_at)
select %(code_hash)s, %(user_id)s, now() + make_interval(secs => %(ttl)s)
where (select count(*) from auth.password_reset_codes
       where user_id = %(user_id)s and created_at > now() - interval '1 hour') < %(per_hour)s;

-- name: spend_reset_code$
-- Mark a live, unused code as used and return its user; the row lock makes it single-use
-- even when several resets race with the same code.
update auth.password_reset_codes
set used_at = now()
where code_hash = %(code_hash)s and used_at is null and expires_at > now()
returning user_id;

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
