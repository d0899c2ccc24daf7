"""Mail: written to the outbox in the transaction of the change it tells about, delivered by the
background worker (jobs.py) through SMTP, with implicit TLS (SMTPS) or STARTTLS.

Without SMTP_HOST (development only), a delivered mail is written to the log instead.
"""

import logging
import smtplib
import ssl
from email.message import EmailMessage

from psycopg.types.json import Jsonb

from db import queries as q

log = logging.getLogger("auth.mail")


def enqueue(conn, to, subject, text):
    """Put a plain-text mail in the outbox, in `conn`'s transaction."""
    q.enqueue_job(conn, kind="mail", payload=Jsonb({"to": to, "subject": subject, "text": text}))


def password_changed(conn, to, username, how):
    """Tell the owner that the account's password changed (`how`: by whom or by what)."""
    enqueue(
        conn,
        to,
        "Your Eqeqo password was changed",
        f"The password of the Eqeqo account {username} was just changed {how}, and its other sessions ended.\n\n"
        "If it was not you, ask an administrator to lock the account at once.\n",
    )


def email_changed(conn, to, username, how):
    """Tell the old address that the account's email changed, so a hijacked account is noticed."""
    enqueue(
        conn,
        to,
        "Your Eqeqo email address was changed",
        f"The email address of the Eqeqo account {username} was just changed {how}; "
        "this address will get no more mail about it.\n\n"
        "If it was not you, ask an administrator to lock the account at once.\n",
    )


def second_factor_added(conn, to, username):
    """Tell the owner that an authenticator app now guards the account: whoever holds a stolen
    session could otherwise add his own app unnoticed and keep the owner out."""
    enqueue(
        conn,
        to,
        "A second factor was added to your Eqeqo account",
        f"An authenticator app was just added to the Eqeqo account {username}; logins now need its codes.\n\n"
        "If it was not you, ask an administrator at once to reset it and lock the account.\n",
    )


def second_factor_removed(conn, to, username, how):
    """Tell the owner that the account's second factor was removed (`how`: by whom)."""
    enqueue(
        conn,
        to,
        "Your Eqeqo second factor was removed",
        f"The authenticator app of the Eqeqo account {username} was just removed {how}: a password alone\n"
        "now logs in. If it was not you, ask an administrator to lock the account at once.\n",
    )


def account_locked(conn, to, username, ip):
    """Tell the owner that repeated wrong passwords locked the account for new addresses."""
    enqueue(
        conn,
        to,
        "Sign-ins to your Eqeqo account were paused",
        f"Several wrong passwords were tried for the Eqeqo account {username}, the last from {ip}, so sign-ins "
        "from new places are paused for a while. Places you signed in from before are not affected.\n\n"
        "If it was not you, your password held; consider changing it if it is used anywhere else.\n",
    )


def reset_code(username, code, link, minutes):
    """Subject and text of a password-reset mail."""
    return (
        "Reset your Eqeqo password",
        f"Someone asked to reset the password of the Eqeqo account {username}.\n\n"
        f"To choose a new password, open this link within {minutes} minutes:\n{link}\n\n"
        f"Or use this code: {code}\n\nIf it was not you, ignore this mail; your password stays as it is.\n",
    )


def deliver(cfg, to, subject, text):
    """Hand one message to the SMTP server now; raises OSError or SMTPException when it cannot."""
    if not cfg["SMTP_HOST"]:
        # Development only (config.py refuses it in production): the body may carry a reset link,
        # written as it reads, not as SMTP would encode it.
        log.warning("mail not sent (no SMTP_HOST configured); it reads:\nTo: %s\nSubject: %s\n\n%s", to, subject, text)
        return
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = cfg["SMTP_FROM"], to, subject
    message.set_content(text)
    context = ssl.create_default_context(cafile=cfg["SMTP_CA_FILE"])
    host, port, timeout = cfg["SMTP_HOST"], cfg["SMTP_PORT"], cfg["SMTP_TIMEOUT_SECONDS"]
    if cfg["SMTP_TLS"]:
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        if cfg["SMTP_STARTTLS"] and not cfg["SMTP_TLS"]:
            smtp.starttls(context=context)
        if cfg["SMTP_USER"]:
            smtp.login(cfg["SMTP_USER"], cfg["SMTP_PASSWORD"] or "")
        smtp.send_message(message)
