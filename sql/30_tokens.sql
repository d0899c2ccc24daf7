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
-- The user's credential version at login; a session of an older version is dead.
alter table auth.tokens_cache add column if not exists credential_version integer not null default 1;

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
