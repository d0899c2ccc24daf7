-- Sessions (auth.tokens_cache). A token is live while now() is before its stored deadline
-- (expires_at: modified_at + ttl, never past created_at + max_lifetime, fixed when the token
-- is issued or renewed), its user is active, and the user's credential version is still the
-- one the token was issued under.

-- name: create_token^
-- Store a new session under the token's digest, for a user whose password was just checked:
-- only if the user still exists, is active, and is at the credential version that was read
-- with the hash (every password change moves it on). The user's row is locked meanwhile, so
-- a password change or a delete running at this moment is waited for, and then this login
-- issues nothing. The session records that version. Beyond `max_sessions` sessions, the
-- user's oldest are revoked. No row: nothing was issued.
with account as (
    select id, credential_version
    from auth.users
    where id = %(user_id)s and active and credential_version = %(credential_version)s
    for no key update
),
capped as (
    delete from auth.tokens_cache
    where token_hash in (
        select t.token_hash
        from auth.tokens_cache t
        join account a on a.id = t.user_id
        order by t.created_at desc, t.token_hash
        offset %(max_sessions)s - 1
    )
    returning token_hash
),
created as (
    insert into auth.tokens_cache (token_hash, user_id, payload, credential_version, expires_at, scope)
    select %(token_hash)s, id, %(payload)s, credential_version,
           now() + make_interval(secs => least(%(ttl)s, %(max_lifetime)s)), %(scope)s
    from account
    returning expires_at
)
select expires_at, (select count(*) from capped) as capped from created;

-- name: check_token^ prepared
-- Validate a token for one service, renew it when due, return the user's grants there; and
-- when the caller sent a service key (key_hash), check it and mark it used. One statement,
-- so one round trip; auth.live_token, auth.renewal_due and auth.renew_token (the latest
-- migration that defines them) hold the validity and renewal rules, auth.grant_sets the
-- user's grants (auth.user_grants, aggregated when they change). Renewal happens only for
-- an allowed use (by a key of that very service, when a key is sent); while the token is
-- fresh the renewal is not even called, so nothing is written.
-- Always one row. key_id null with a key sent: the key is unknown or expired. user_id null:
-- the token is dead. Null roles, user_matches false, or a scope other than full (a session
-- good only for enrolling a second factor): no access.
-- Joins, not CTEs: each CTE is a plan node of its own, and PostgreSQL then spent 10 % more
-- on the statement (5,000 executions on one connection).
select caller.id as key_id, caller.prefix as key_prefix, caller.service_id as key_service_id,
       live.user_id, live.username, live.name, live.scope,
       service.id as service_id, service.name as service,
       grants.roles, grants.permissions,
       (%(user_id)s::bigint is null or live.user_id = %(user_id)s::bigint) as user_matches,
       renewed.expires_at is not null as renewed,
       coalesce(renewed.expires_at, live.expires_at) as expires_at
from (select 1) as one  -- always one row, whatever is missing
left join auth.service_keys caller
       on caller.key_hash = %(key_hash)s and (caller.expires_at is null or caller.expires_at > now())
left join (
    select t.token_hash, t.user_id, t.expires_at, t.modified_at, t.scope, u.username, u.name
    from auth.live_token(%(token_hash)s) t
    join auth.users u on u.id = t.user_id and u.active and u.credential_version = t.credential_version
) live on true
left join auth.services service on service.active and (service.id = %(service_id)s or service.name = %(service_name)s)
left join auth.grant_sets grants on grants.user_id = live.user_id and grants.service_id = service.id
left join lateral (
    select auth.renew_token(live.token_hash, %(threshold)s, %(ttl)s, %(max_lifetime)s) as expires_at
    where grants.roles is not null and live.scope = 'full'
      and (%(user_id)s::bigint is null or live.user_id = %(user_id)s::bigint)
      and (%(key_hash)s::bytea is null or caller.service_id = service.id)
      and auth.renewal_due(live.modified_at, %(threshold)s)
) renewed on true
left join lateral (select auth.touch_service_key(caller.id) where caller.id is not null) as touched on true;

-- name: profile^ prepared
-- Validate a token, renew it when due, and return its user with every service's grants.
-- One statement, with the same rules as check_token.
with live as (
    select t.token_hash, t.user_id, t.expires_at, t.modified_at, t.scope, u.username, u.name, u.email
    from auth.live_token(%(token_hash)s) t
    join auth.users u on u.id = t.user_id and u.active and u.credential_version = t.credential_version
),
renewed as (
    select auth.renew_token(token_hash, %(threshold)s, %(ttl)s, %(max_lifetime)s) as expires_at
    from live
    where auth.renewal_due(modified_at, %(threshold)s)
)
select live.user_id, live.username, live.name, live.email, live.scope,
       auth.user_services(live.user_id) as services,
       renewed.expires_at is not null as renewed,
       coalesce(renewed.expires_at, live.expires_at) as expires_at
from live
left join renewed on true;

-- name: revoke_token$
-- Logout: delete one session and return its user; an unknown token deletes nothing.
delete from auth.tokens_cache where token_hash = %(token_hash)s returning user_id;

-- name: revoke_all_of_token_owner^
-- Logout-all: delete every session of the live token's user; 0 revoked: the token was dead.
with live as (
    select t.user_id
    from auth.live_token(%(token_hash)s) t
    join auth.users u on u.id = t.user_id and u.active and u.credential_version = t.credential_version
),
gone as (
    delete from auth.tokens_cache where user_id = (select user_id from live) returning 1
)
select (select user_id from live) as user_id, count(*) as revoked from gone;

-- name: revoke_user_tokens!
-- Revoke every session of a user (password change, disable, delete); optionally keep one.
delete from auth.tokens_cache
where user_id = %(user_id)s
  and token_hash is distinct from %(keep_token_hash)s;

-- name: purge_dead_tokens!
-- Delete a batch of sessions past their deadline; rows being renewed are skipped, never waited
-- for. The deadline is the row's own, so no setting of the caller's can make a live one look dead.
delete from auth.tokens_cache
where token_hash in (
    select token_hash
    from auth.tokens_cache
    where expires_at <= now()
    limit %(batch)s
    for update skip locked
);
