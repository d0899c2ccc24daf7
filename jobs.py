"""The background worker: delivers the outbox (mails, password-recovery requests) and purges
what has expired.

Each gunicorn worker process runs one in a daemon thread (gunicorn.conf.py starts it after
the worker has loaded the app, and stops it at exit); `flask --app app run-jobs` runs the
same loop in the foreground instead. Workers claim jobs with FOR UPDATE SKIP LOCKED and a
lease, so two never take the same job, and a job whose worker died is taken again when its
lease ends. A job that fails is retried with a doubling delay; one that keeps failing for
JOB_MAX_ATTEMPTS attempts is given up, its last error kept.
"""

import logging
import smtplib
import threading
import time

import psycopg

import db
import mail
from db import queries as q
from security.tokens import digest, new_reset_code
from web import audit, metrics

log = logging.getLogger("auth.jobs")

LEASE_SECONDS = 120  # longer than any one delivery may take (SMTP_TIMEOUT_SECONDS, per step)
BATCH = 10
FINISHED_JOB_DAYS = 7  # how long done jobs stay, for an operator to look at


class Retry(Exception):
    """A job that could not be done now, and may be later."""


def send_mail(cfg, job):
    """A mail job: hand it to SMTP."""
    payload = job["payload"]
    mail.deliver(cfg, payload["to"], payload["subject"], payload["text"])


def send_reset_code(cfg, job):
    """A password-recovery request: resolve the login, and mail a fresh code to an active user
    with an email, within the hourly quota. The code exists in memory only, for this attempt;
    its digest is stored (and the request audited, on the first attempt) before the mail
    leaves, and withdrawn when the mail cannot."""
    login, ip = job["payload"]["login"], job["payload"]["ip"]
    code = new_reset_code()
    with db.transaction() as conn:
        user = q.user_for_login(conn, login=login)
        if not (user and user["active"] and user["email"]):
            return
        stored = q.create_reset_code(
            conn,
            code_hash=digest(code),
            user_id=user["id"],
            ttl=cfg["RESET_TOKEN_TTL_SECONDS"],
            per_hour=cfg["RESET_MAILS_PER_HOUR"],
        )
        if job["attempts"] == 1:
            audit.record(
                conn, "authn_password_reset_request", user_id=user["id"], detail={"mailed": bool(stored)}, ip=ip
            )
    if not stored:
        return
    link = cfg["PASSWORD_RESET_URL"].replace("{code}", code)
    subject, text = mail.reset_code(user["username"], code, link, cfg["RESET_TOKEN_TTL_SECONDS"] // 60)
    try:
        mail.deliver(cfg, user["email"], subject, text)
    except (OSError, smtplib.SMTPException):
        with db.transaction() as conn:
            q.withdraw_reset_code(conn, code_hash=digest(code))
        raise


HANDLERS = {"mail": send_mail, "reset_request": send_reset_code}


def run_due(app):
    """Do every job that is due now; returns how many were taken."""
    cfg = app.config
    with app.app_context():
        with db.transaction() as conn:
            jobs = q.claim_jobs(conn, lease=LEASE_SECONDS, batch=BATCH)
        for job in jobs:
            try:
                HANDLERS[job["kind"]](cfg, job)
            except db.OUTAGE_ERRORS:
                raise  # the lease brings the job back once the database does
            except Exception as error:  # any failure of one job must not stop the others
                failed(cfg, job, f"{type(error).__name__}: {error}")
            else:
                with db.transaction() as conn:
                    q.finish_job(conn, id=job["id"], error=None)
    return len(jobs)


def failed(cfg, job, error):
    """Schedule the job's next attempt, doubling the delay, or give it up."""
    log.warning("job %s (%s) failed, attempt %s: %s", job["id"], job["kind"], job["attempts"], error)
    with db.transaction() as conn:
        if job["attempts"] >= cfg["JOB_MAX_ATTEMPTS"]:
            q.finish_job(conn, id=job["id"], error=error)
        else:
            delay = min(cfg["JOB_RETRY_BASE_SECONDS"] * 2 ** (job["attempts"] - 1), cfg["JOB_RETRY_MAX_SECONDS"])
            q.retry_job(conn, id=job["id"], delay=delay, error=error)


def purge(app):
    """Delete what has expired: dead sessions, old counters, codes, addresses, jobs, audit
    events past AUDIT_RETENTION_DAYS, and feed events past REVOCATION_RETENTION_SECONDS.
    Returns the number of rows deleted per kind."""
    cfg = app.config
    window = max(cfg["LOGIN_ACCOUNT_WINDOW_SECONDS"], cfg["LOGIN_IP_WINDOW_SECONDS"])
    deleted = {"tokens": 0}
    with app.app_context():
        while True:
            with db.connection() as conn:
                batch = q.purge_dead_tokens(conn, batch=cfg["TOKEN_PURGE_BATCH"])
            deleted["tokens"] += batch
            if batch < cfg["TOKEN_PURGE_BATCH"]:
                break
        with db.connection() as conn:
            deleted["login_failures"] = q.purge_login_failures(conn, window=window)
            deleted["request_counts"] = q.purge_request_counts(conn, window=cfg["FORGOT_WINDOW_SECONDS"])
            deleted["reset_codes"] = q.purge_old_reset_codes(conn)
            deleted["login_addresses"] = q.purge_login_addresses(conn, days=cfg["KNOWN_ADDRESS_DAYS"])
            deleted["audit_events"] = q.purge_audit_events(conn, days=cfg["AUDIT_RETENTION_DAYS"])
            deleted["mfa_challenges"] = q.purge_mfa_challenges(conn)
            deleted["revocations"] = q.purge_revocations(conn, retention=cfg["REVOCATION_RETENTION_SECONDS"])
            deleted["jobs"] = q.purge_finished_jobs(conn, days=FINISHED_JOB_DAYS)
    return deleted


class Worker:
    """The loop in a daemon thread: due jobs every JOB_POLL_SECONDS, a purge every PURGE_INTERVAL_SECONDS."""

    def __init__(self, app):
        self.app = app
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="auth-jobs", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self, timeout=10):
        """Finish the job at hand, then stop."""
        self.stopping.set()
        self.thread.join(timeout)

    def run(self):
        cfg = self.app.config
        purged_at = time.monotonic()
        while not self.stopping.is_set():
            try:
                taken = run_due(self.app)
                if time.monotonic() - purged_at >= cfg["PURGE_INTERVAL_SECONDS"]:
                    purged_at = time.monotonic()
                    log.info("purged", extra={"deleted": purge(self.app)})
            except (*db.OUTAGE_ERRORS, psycopg.Error) as error:
                # Down, or not migrated yet: the next round tries again.
                log.warning("background jobs wait for the database: %s", type(error).__name__)
                taken = 0
            # The pool's gauges stay current for the metrics listener while no request comes.
            metrics.sample_pool(self.app.extensions["db_pool"])
            if not taken:
                self.stopping.wait(cfg["JOB_POLL_SECONDS"])


def start(app):
    """Run the background worker for `app` in this process; it is stopped by `stop(app)`."""
    app.extensions["jobs"] = Worker(app).start()


def stop(app):
    """Stop this process's background worker, if it runs."""
    worker = app.extensions.pop("jobs", None)
    if worker:
        worker.stop()
