-- Service keys (auth.service_keys) and the revocation feed (auth.revocations), for backends.
-- check-token checks its caller's key inside its own statement (db/tokens.sql check_token).

-- name: create_service_key^
-- A new key of a service; only the secret's digest and its first characters are stored.
insert into auth.service_keys (service_id, key_hash, prefix, name, created_by, expires_at)
values (%(service_id)s, %(key_hash)s, %(prefix)s, %(name)s, %(created_by)s, %(expires_at)s)
returning id, service_id, prefix, name, created_at, last_used_at, expires_at;

-- name: list_service_keys
-- A service's keys, oldest first; never a secret or a digest.
select id, service_id, prefix, name, created_at, last_used_at, expires_at
from auth.service_keys
where service_id = %(service_id)s
order by id;

-- name: delete_service_key^
-- Revoke one key of a service: every later request with it is refused.
delete from auth.service_keys
where id = %(id)s and service_id = %(service_id)s
returning id, prefix;

-- name: service_key_caller^
-- The live key with this digest, its service, and last_used_at moved (at most once a minute).
-- No row: no such key, or it has expired.
with caller as (
    select k.id, k.prefix, k.service_id, s.name as service
    from auth.service_keys k
    join auth.services s on s.id = k.service_id
    where k.key_hash = %(key_hash)s and (k.expires_at is null or k.expires_at > now())
),
touched as (
    select auth.touch_service_key(id) from caller
)
select caller.* from caller, touched;

-- name: revocations_after
-- The feed after a cursor, oldest first, up to `limit` events: from transactions older than
-- every one still running only, so none can commit behind the cursor later. A key sees every
-- ended session and changed user, and the changes of its own service.
select r.txid::text as txid, r.id, r.at, r.kind, r.token_hash, r.user_id, r.service_id
from auth.revocations r
where (r.txid, r.id) > (%(txid)s::xid8, %(id)s::bigint)
  and r.txid < pg_snapshot_xmin(pg_current_snapshot())
  and (r.kind = 'token' or r.service_id is null or r.service_id = %(service_id)s)
order by r.txid, r.id
limit %(limit)s;

-- name: revocations_head^
-- The cursor of the newest event a reader may see now (or the purge horizon, when none is
-- left): where a new follower starts.
select txid::text as txid, id
from (
    select r.txid, r.id
    from auth.revocations r
    where r.txid < pg_snapshot_xmin(pg_current_snapshot())
    union all
    select h.txid, h.id from auth.revocations_horizon h
) known
order by txid desc, id desc
limit 1;

-- name: revocations_expired$
-- Whether the purge has removed events after this cursor, so its reader has missed some.
select (%(txid)s::xid8, %(id)s::bigint) < (h.txid, h.id) from auth.revocations_horizon h;

-- name: purge_revocations$
-- Delete the events older than the retention and move the horizon to the newest of them;
-- returns how many went.
with gone as (
    delete from auth.revocations
    where at < now() - make_interval(secs => %(retention)s)
    returning txid, id
),
newest as (
    select txid, id from gone order by txid desc, id desc limit 1
),
moved as (
    update auth.revocations_horizon h
    set txid = newest.txid, id = newest.id
    from newest
    where (newest.txid, newest.id) > (h.txid, h.id)
)
select count(*) from gone;
