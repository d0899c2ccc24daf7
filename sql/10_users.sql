-- People. Usernames and emails are unique without regard to case, so "Alice" cannot
-- shadow "alice" and login by either spelling finds one account.
create table if not exists auth.users (
    id            bigint generated always as identity primary key,
    username      text not null,
    name          text,
    email         text,
    password_hash text not null,
    active        boolean not null default true,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz
);
create unique index if not exists users_username_key on auth.users (lower(username));
create unique index if not exists users_email_key on auth.users (lower(email));

-- credential_version: bumped by every password change and by disabling or enabling the user.
-- Sessions and reset codes record the version they were issued under and die with it, so a
-- login or a reset racing a change cannot outlive it.
-- pepper_id: which PASSWORD_PEPPER the hash was made with (security/passwords.py); null for
-- hashes from before it was recorded, which used the oldest pepper configured.
alter table auth.users add column if not exists credential_version integer not null default 1;
alter table auth.users add column if not exists pepper_id text;
