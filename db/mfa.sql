-- Two-step login: TOTP secrets (auth.mfa_totp), recovery codes, and first-step challenges.

-- name: mfa_enrolled$
-- Whether the user has a confirmed TOTP second factor.
select exists (select 1 from auth.mfa_totp where user_id = %(user_id)s and confirmed_at is not null);

-- name: holds_admin_permission$
-- Whether the user holds any auth.* permission in service auth (MFA_REQUIRED_FOR=admins).
select exists (
    select 1 from auth.user_grants g
    where g.user_id = %(user_id)s and g.service = 'auth' and g.permission like 'auth.%%'
);

-- name: start_mfa_enrolment$
-- A new pending secret for the user, replacing one not yet confirmed; null when one is
-- confirmed already (remove it first).
insert into auth.mfa_totp (user_id, secret_encrypted)
values (%(user_id)s, %(secret_encrypted)s)
on conflict (user_id) do update
set secret_encrypted = excluded.secret_encrypted, created_at = now(), last_step = 0
where auth.mfa_totp.confirmed_at is null
returning user_id;

-- name: totp_of^
-- The user's TOTP row, locked for the transaction that judges a code with it.
select secret_encrypted, confirmed_at is not null as confirmed, last_step
from auth.mfa_totp
where user_id = %(user_id)s
for update;

-- name: confirm_mfa!
-- Activate a pending secret; the confirming code's step counts as used.
update auth.mfa_totp
set confirmed_at = now(), last_step = %(step)s
where user_id = %(user_id)s and confirmed_at is null;

-- name: use_totp_step!
-- Accept a code of this step once: 0 rows when the step, or a later one, was used already.
update auth.mfa_totp
set last_step = %(step)s
where user_id = %(user_id)s and confirmed_at is not null and last_step < %(step)s;

-- name: replace_recovery_codes!
-- The user's recovery codes, as digests, replacing any earlier ones.
with gone as (
    delete from auth.mfa_recovery_codes where user_id = %(user_id)s
)
insert into auth.mfa_recovery_codes (user_id, code_hash)
select %(user_id)s, unnest(%(code_hashes)s::bytea[]);

-- name: use_recovery_code!
-- Spend one recovery code: 1 row when it was the user's and unused.
delete from auth.mfa_recovery_codes where user_id = %(user_id)s and code_hash = %(code_hash)s;

-- name: recovery_codes_left$
-- How many unused recovery codes the user has.
select count(*) from auth.mfa_recovery_codes where user_id = %(user_id)s;

-- name: remove_mfa!
-- Remove the user's second factor (confirmed or pending) and recovery codes.
with codes as (
    delete from auth.mfa_recovery_codes where user_id = %(user_id)s
)
delete from auth.mfa_totp where user_id = %(user_id)s;

-- name: create_mfa_challenge^
-- The first step of a two-step login, under the digest of its mfa_token.
insert into auth.mfa_challenges (token_hash, user_id, credential_version, expires_at)
values (%(token_hash)s, %(user_id)s, %(credential_version)s, now() + make_interval(secs => %(ttl)s))
returning expires_at;

-- name: mfa_challenge^
-- A live challenge and its user (active, at the credential version of the first step),
-- locked, so two requests with one mfa_token are judged one after the other.
select u.id, u.username, u.name, u.email, u.credential_version
from auth.mfa_challenges c
join auth.users u on u.id = c.user_id and u.active and u.credential_version = c.credential_version
where c.token_hash = %(token_hash)s and c.expires_at > now()
for update of c;

-- name: end_mfa_challenge!
-- The challenge is used: its mfa_token opens nothing more.
delete from auth.mfa_challenges where token_hash = %(token_hash)s;

-- name: purge_mfa_challenges!
-- Expired first steps.
delete from auth.mfa_challenges where expires_at <= now();

-- name: all_mfa_secrets
-- Every stored TOTP secret, locked, to encrypt them again with the newest key.
select user_id, secret_encrypted from auth.mfa_totp for update;

-- name: store_mfa_secret!
-- A secret encrypted again.
update auth.mfa_totp set secret_encrypted = %(secret_encrypted)s where user_id = %(user_id)s;

-- name: widen_token_scope!
-- A session that was good only for enrolment becomes a full one, once its user has enrolled.
update auth.tokens_cache set scope = 'full' where token_hash = %(token_hash)s and user_id = %(user_id)s;
