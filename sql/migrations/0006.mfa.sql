-- Two-step login: TOTP authenticator apps and recovery codes (security/mfa.py, blueprints/mfa.py).

-- A user's TOTP secret, encrypted with a key from the environment (MFA_ENCRYPTION_KEYS), never
-- in the clear. confirmed_at null: enrolment started, not yet proved with a code. last_step:
-- the newest 30 s step whose code was accepted; a code of that step or an older one is
-- refused, so a code works once.
create table auth.mfa_totp (
    user_id          bigint primary key references auth.users on delete cascade,
    secret_encrypted text not null,
    confirmed_at     timestamptz,
    last_step        bigint not null default 0,
    created_at       timestamptz not null default now()
);

-- Single-use recovery codes, as digests; a used one is deleted.
create table auth.mfa_recovery_codes (
    user_id   bigint not null references auth.users on delete cascade,
    code_hash bytea not null,
    primary key (user_id, code_hash)
);

-- The first step of a two-step login: a password was right; the mfa_token (stored as a digest)
-- lets its holder try codes until it expires, once successfully. It dies with the user's
-- credential version.
create table auth.mfa_challenges (
    token_hash         bytea primary key,
    user_id            bigint not null references auth.users on delete cascade,
    credential_version integer not null,
    expires_at         timestamptz not null
);
create index mfa_challenges_user_idx on auth.mfa_challenges (user_id);

-- A session's scope: 'full', or 'mfa_enrolment' for a user who must enrol a second factor
-- first; such a session opens only the enrolment, the profile and logout.
alter table auth.tokens_cache add column scope text not null default 'full'
    check (scope in ('full', 'mfa_enrolment'));
