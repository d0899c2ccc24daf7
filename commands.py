"""Command-line tasks: `flask --app app <command>`."""

import click
import psycopg
from flask import current_app
from flask.cli import with_appcontext

import db
import jobs
from db import queries as q
from security import mfa
from web import credentials
from web.errors import ApiError
from web.validation import EMAIL, NAME, USERNAME, validate


@click.command("create-admin")
@click.argument("username")
@click.option("--email", default=None, help="Email for password recovery.")
@click.option("--name", default=None, help="Display name.")
@click.password_option(help="Asked for when not given (12 to 128 characters).")
@with_appcontext
def create_admin(username, email, name, password):
    """Create the first administrator: a user holding role "admin" in service "auth"."""
    try:
        given = {"username": username, "name": name, "email": email}
        person = validate(
            {k: v for k, v in given.items() if v is not None}, {"username": USERNAME, "name": NAME, "email": EMAIL}
        )
        password_hash, pepper_id = credentials.new_hash(password, username, (email, name))
        with db.transaction() as conn:
            user = q.create_user(
                conn, password_hash=password_hash, pepper_id=pepper_id, **{"name": None, "email": None, **person}
            )
            q.grant_admin(conn, user_id=user["id"])
    except ApiError as error:
        problems = "; ".join(f"{field} {problem}" for field, problem in (error.fields or {}).items())
        raise click.ClickException(problems or error.message) from None
    except psycopg.errors.UniqueViolation:
        raise click.ClickException(f"user {username} or that email already exists") from None
    click.echo(f"created administrator {username} (id {user['id']})")


@click.command("purge")
@with_appcontext
def purge():
    """Delete what has expired: sessions, throttle counters, codes, finished jobs, old audit events.

    The server's background worker does this every PURGE_INTERVAL_SECONDS; this is for cron.
    """
    deleted = jobs.purge(current_app._get_current_object())
    click.echo("purged " + ", ".join(f"{count} {kind}" for kind, count in deleted.items()))


@click.command("run-jobs")
@with_appcontext
def run_jobs():
    """Deliver the outbox and purge, in the foreground, until interrupted (instead of, or beside,
    the workers that gunicorn's processes run)."""
    worker = jobs.Worker(current_app._get_current_object())
    try:
        worker.run()
    except KeyboardInterrupt:
        worker.stopping.set()


@click.group("db")
def database():
    """The database schema (sql/migrations)."""


@database.command("upgrade")
@with_appcontext
def upgrade():
    """Apply the pending migrations, under an advisory lock; safe to run from several instances at once."""
    from db import migrate  # here: yoyo would cost every serving worker about 2 MB it never uses

    applied = migrate.upgrade(current_app.config["DATABASE_URL"])
    click.echo(f"applied {', '.join(applied)}" if applied else "the schema is up to date")


@database.command("status")
@with_appcontext
def status():
    """List the migrations not applied yet; exit 1 when there are any."""
    from db import migrate

    todo = migrate.pending(current_app.config["DATABASE_URL"])
    click.echo(f"pending: {', '.join(todo)}" if todo else "the schema is up to date")
    if todo:
        raise SystemExit(1)


@click.command("rotate-mfa-keys")
@with_appcontext
def rotate_mfa_keys():
    """Encrypt every TOTP secret again with the first of MFA_ENCRYPTION_KEYS; run it after putting
    a new key in front, then drop the old key from the setting."""
    keys = current_app.config["MFA_ENCRYPTION_KEYS"]
    with db.transaction() as conn:
        rows = q.all_mfa_secrets(conn)
        for row in rows:
            stored = mfa.rotate(keys, row["secret_encrypted"])
            if stored is None:  # raised inside the transaction, so no secret is changed
                raise click.ClickException(
                    f"the secret of user {row['user_id']} opens with none of MFA_ENCRYPTION_KEYS; nothing was changed"
                )
            q.store_mfa_secret(conn, user_id=row["user_id"], secret_encrypted=stored)
    click.echo(f"re-encrypted {len(rows)} TOTP secrets with the first key")


def register(app):
    """Attach the commands to the app's CLI."""
    app.cli.add_command(database)
    app.cli.add_command(rotate_mfa_keys)
    app.cli.add_command(create_admin)
    app.cli.add_command(purge)
    app.cli.add_command(run_jobs)
