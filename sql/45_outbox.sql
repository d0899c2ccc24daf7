-- Work for the background worker (jobs.py), written in the transaction of the change that
-- asks for it, so none is lost: mails ("mail": to, subject, text) and password-recovery
-- requests ("reset_request": the login as typed and the client address; the worker makes
-- the code when it sends, so no code is ever stored but as a digest). A job is claimed by
-- moving next_attempt_at past a lease, retried with backoff, and done when done_at is set.
create table if not exists auth.outbox (
    id              bigint generated always as identity primary key,
    kind            text not null,
    payload         jsonb not null,
    created_at      timestamptz not null default now(),
    attempts        integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_error      text,
    done_at         timestamptz
);
create index if not exists outbox_due_idx on auth.outbox (next_attempt_at) where done_at is null;
