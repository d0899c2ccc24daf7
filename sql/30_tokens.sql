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
