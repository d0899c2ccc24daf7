-- Statements call auth.renew_token only for a session due for renewal: a call that writes
-- nothing still cost PostgreSQL about 40 % of a whole check-token statement (README,
-- Performance). So the rule "due" gets one definition of its own, which the statements use
-- to decide on the call and the function uses again on the row it locks.

-- Whether a session last renewed at p_modified_at is due for renewal: older than the
-- threshold. Plain SQL and stable, so the planner inlines it where it is used.
create function auth.renewal_due(p_modified_at timestamptz, p_threshold int)
returns boolean
language sql stable as $$
    select p_modified_at < now() - make_interval(secs => p_threshold)
$$;

-- As in 0004, with the rule read from auth.renewal_due: move modified_at to now() and the
-- deadline to now() + ttl (never past created_at + max_lifetime) when the session is due;
-- a row another check is renewing at this moment is skipped (skip locked), so checks never
-- wait on each other; a row deleted by a logout stays deleted. Returns the new deadline, or
-- null when nothing was written.
create or replace function auth.renew_token(p_token_hash bytea, p_threshold int, p_ttl int, p_max_lifetime int)
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
          and auth.renewal_due(c.modified_at, p_threshold)
        for update skip locked
    )
    returning t.expires_at into renewed_until;
    return renewed_until;
end
$$;
