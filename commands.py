"""Command-line tasks: `flask --app app <command>`."""

import click
import psycopg
from flask import current_app
from flask.cli import with_appcontext

import db
from blueprints.passwords import hash_new_password
from db import queries as q
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
        password_hash = hash_new_password(password, username)
        with db.transaction() as conn:
            user = q.create_user(conn, password_hash=password_hash, **{"name": None, "email": None, **person})
            q.grant_admin(conn, user_id=user["id"])
    except ApiError as error:
        problems = "; ".join(f"{field} {problem}" for field, problem in (error.fields or {}).items())
        raise click.ClickException(problems or error.message) from None
    except psycopg.errors.UniqueViolation:
        raise click.ClickException(f"user {username} or that email already exists") from None
    click.echo(f"created administrator {username} (id {user['id']})")


@click.command("purge-tokens")
@with_appcontext
def purge_tokens():
    """Delete expired sessions in batches (login does this too; this is for cron)."""
    cfg = current_app.config
    total = 0
    while True:
        with db.transaction() as conn:
            deleted = q.purge_dead_tokens(
                conn,
                ttl=cfg["TOKEN_TTL_SECONDS"],
                max_lifetime=cfg["TOKEN_MAX_LIFETIME_SECONDS"],
                batch=cfg["TOKEN_PURGE_BATCH"],
            )
        total += deleted
        if deleted < cfg["TOKEN_PURGE_BATCH"]:
            break
    click.echo(f"purged {total} expired tokens")


def register(app):
    """Attach the commands to the app's CLI."""
    app.cli.add_command(create_admin)
    app.cli.add_command(purge_tokens)
