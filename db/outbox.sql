-- The outbox (sql/45_outbox.sql): mails and password-recovery requests for the background
-- worker (jobs.py).

-- name: enqueue_job!
-- Add a job, in the caller's transaction: it exists exactly when the change asking for it does.
insert into auth.outbox (kind, payload) values (%(kind)s, %(payload)s);

-- name: claim_jobs
-- Take up to `batch` due jobs for this worker: each is leased (its next attempt moved past the
-- lease), so no other worker takes it meanwhile, and taken again if this one dies with it.
update auth.outbox
set attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => %(lease)s)
where id in (
    select id from auth.outbox
    where done_at is null and next_attempt_at <= now()
    order by id
    limit %(batch)s
    for update skip locked
)
returning id, kind, payload, attempts;

-- name: finish_job!
-- A job is done (or given up, with the error that ended it).
update auth.outbox set done_at = now(), last_error = %(error)s where id = %(id)s;

-- name: retry_job!
-- A job failed for now: try again after `delay` seconds.
update auth.outbox
set next_attempt_at = now() + make_interval(secs => %(delay)s), last_error = %(error)s
where id = %(id)s;

-- name: purge_finished_jobs!
-- Jobs done longer ago than `days` days.
delete from auth.outbox where done_at < now() - make_interval(days => %(days)s);
