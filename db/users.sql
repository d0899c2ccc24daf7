-- People (sql/10_users.sql). The user columns a response shows never include the hash.

-- name: user_for_login^
-- The account a login name (username or email, any case) refers to, active or not. An email
-- match wins: usernames cannot hold an "@", so only a name from before that rule could
-- shadow someone's address, and it must not capture that person's login or recovery.
select id, username, name, email, active, password_hash, pepper_id, credential_version
from auth.users
where lower(username) = lower(%(login)s) or lower(email) = lower(%(login)s)
order by lower(email) = lower(%(login)s) desc nulls last
limit 1;

-- name: user_account^
-- A user's login names, state and stored hash, for a change to the account.
select id, username, name, email, active, password_hash, pepper_id, credential_version
from auth.users
where id = %(user_id)s;

-- name: stored_hash_cost$
-- The bcrypt cost most stored hashes have, so that checking a made-up password for an unknown
-- user costs what checking a real one does.
select substring(password_hash from 5 for 2)::int
from auth.users
where password_hash like '$2_$__$%%'
group by 1
order by count(*) desc, 1 desc
limit 1;

-- name: email_is_a_username$
-- Whether an email is another user's username (possible only for names from before usernames
-- lost the "@"), which would make one login name mean two accounts.
select exists (
    select 1 from auth.users
    where lower(username) = lower(%(email)s) and id is distinct from %(user_id)s
);

-- name: list_users^
-- Users filtered by a substring of username/email/name and by active; total and one page.
with filtered as (
    select id, username, name, email, active, created_at, updated_at
    from auth.users
    where (%(q)s::text is null
           or strpos(lower(username), lower(%(q)s)) > 0
           or strpos(lower(coalesce(email, '')), lower(%(q)s)) > 0
           or strpos(lower(coalesce(name, '')), lower(%(q)s)) > 0)
      and (%(active)s::boolean is null or active = %(active)s)
)
select (select count(*) from filtered) as total,
       coalesce((select json_agg(p order by p.id)
                 from (select * from filtered order by id limit %(limit)s offset %(offset)s) p), '[]') as items;

-- name: user_by_id^
-- One user with the grants it holds in every service.
select id, username, name, email, active, created_at, updated_at, auth.user_services(id) as services
from auth.users
where id = %(user_id)s;

-- name: create_user^
-- A new user; a taken username or email raises a unique violation (409).
insert into auth.users (username, name, email, password_hash, pepper_id)
values (%(username)s, %(name)s, %(email)s, %(password_hash)s, %(pepper_id)s)
returning id, username, name, email, active, created_at, updated_at;

-- name: update_user^
-- Change the given fields only: a null parameter keeps the column, and the *_set flags
-- tell "set name/email to null" from "leave it". Disabling or enabling the user moves its
-- credential version on, so no session or reset code from before survives it.
update auth.users
set username           = coalesce(%(username)s, username),
    name               = case when %(name_set)s then %(name)s else name end,
    email              = case when %(email_set)s then %(email)s else email end,
    active             = coalesce(%(active)s, active),
    credential_version = credential_version + case when %(active)s::boolean is distinct from active
                                                        and %(active)s::boolean is not null
                                                   then 1 else 0 end,
    updated_at         = now()
where id = %(user_id)s
returning id, username, name, email, active, created_at, updated_at;

-- name: set_password^
-- Store a new password hash, if the credentials are still at `expected_version` (null: at any).
-- Moves the credential version on, which kills every reset code, revokes every session of
-- the user but `keep_token_hash` and moves that one to the new version. No row: the
-- credentials changed meanwhile, or the user is gone.
with changed as (
    update auth.users
    set password_hash = %(password_hash)s, pepper_id = %(pepper_id)s,
        credential_version = credential_version + 1, updated_at = now()
    where id = %(user_id)s
      and (%(expected_version)s::int is null or credential_version = %(expected_version)s::int)
    returning id, credential_version
),
revoked as (
    delete from auth.tokens_cache t
    using changed c
    where t.user_id = c.id and t.token_hash is distinct from %(keep_token_hash)s
    returning t.token_hash
),
kept as (
    update auth.tokens_cache t
    set credential_version = c.credential_version
    from changed c
    where t.token_hash = %(keep_token_hash)s and t.user_id = c.id
)
select c.credential_version, (select count(*) from revoked) as revoked from changed c;

-- name: rehash_password!
-- Store the same password hashed anew (a new cost or pepper), if no change of credentials came
-- in between (the version that was checked is still current); the version stays, as the
-- password did.
update auth.users
set password_hash = %(password_hash)s, pepper_id = %(pepper_id)s
where id = %(user_id)s and credential_version = %(credential_version)s;

-- name: disable_user!
-- Disable a user, kept for the audit trail; its credential version moves on.
update auth.users
set active = false, credential_version = credential_version + 1, updated_at = now()
where id = %(user_id)s and active;

-- name: delete_user!
-- Delete a user for good; its sessions, codes and grants go with it (cascade).
delete from auth.users where id = %(user_id)s;

-- name: grant_admin!
-- Give a user role "admin" in service "auth" (sql/50_bootstrap.sql creates both).
insert into auth.person_service_roles (user_id, service_id, role_id)
select %(user_id)s, s.id, r.id
from auth.services s, auth.roles r
where s.name = 'auth' and r.name = 'admin'
on conflict do nothing;
