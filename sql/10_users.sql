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
