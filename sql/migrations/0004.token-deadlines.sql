-- A session stores its deadline, fixed when it is issued and each time it is renewed, so that
-- whether a token is live depends on its row alone: a purge run with any settings deletes
-- only what the server would refuse too. Sessions from before get the deadline that the
-- default lifetimes (300 s sliding, 12 h in all) give them; under longer settings they end
-- early, once, and never late.
alter table auth.tokens_cache add column expires_at timestamptz;
update auth.tokens_cache
set expires_at = least(modified_at + interval '300 seconds', created_at + interval '43200 seconds');
alter table auth.tokens_cache alter column expires_at set not null;

drop function auth.live_token(bytea, int, int);
drop function auth.renew_token(bytea, int);

-- The one definition of a live session, shared by every statement that reads one: its row
-- while now() is before its deadline. Plain SQL and stable, so the planner inlines it into
-- the calling statement.
create function auth.live_token(p_token_hash bytea)
returns setof auth.tokens_cache
language sql stable as $$
    select * from auth.tokens_cache where token_hash = p_token_hash and expires_at > now()
$$;

-- The one definition of the sliding renewal: move modified_at to now() and the deadline to
-- now() + ttl (never past created_at + max_lifetime), only when modified_at is older than
-- the threshold, so a busy token costs at most one write per window. A row that another
-- check is renewing at this moment is skipped (skip locked), so checks never wait on each
-- other; a row deleted by a logout stays deleted. Returns the new deadline, or null when
-- nothing was written. PL/pgSQL, so its plan is cached per connection.
create function auth.renew_token(p_token_hash bytea, p_threshold int, p_ttl int, p_max_lifetime int)
returns timestamptz
language plpgsql volatile as $$
declare
    renewed_until timestamptz;
begin
    update auth.tokens_cache t
    set modified_at = now(),
        expires_at = least(now() + make_interval(secs => p_ttl), t.created_at + make_interval(secs => p_max_lifetime))
    where t.token_hash = (
        select c.token_hash
        from auth.tokens_cache c
        where c.token_hash = p_token_hash
          and c.modified_at < now() - make_interval(secs => p_threshold)
        for update skip locked
    )
    returning t.expires_at into renewed_until;
    return renewed_until;
end
$$;
