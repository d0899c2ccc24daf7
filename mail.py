"""Outgoing mail through SMTP (smtplib); without SMTP_HOST, mails go to the log instead."""

import logging
import smtplib
import threading
from email.message import EmailMessage

from flask import current_app

log = logging.getLogger("auth.mail")


def send(to, subject, text):
    """Queue a plain-text mail for delivery in the background.

    In the background so that a request that mails costs no more time than one that does
    not: /auth/password/forgot must not tell, by its timing, whether an account exists.
    """
    cfg = {key: current_app.config[key] for key in current_app.config if key.startswith("SMTP_")}
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = cfg["SMTP_FROM"], to, subject
    message.set_content(text)
    threading.Thread(target=deliver, args=(cfg, message), daemon=True).start()


def deliver(cfg, message):
    """Hand one message to the SMTP server; failures are logged, never shown to the requester."""
    if not cfg["SMTP_HOST"]:
        # Development only, announced loudly at start: the body may carry a reset link.
        log.warning("mail not sent (no SMTP_HOST configured); it reads:\n%s", message.as_string())
        return
    try:
        with smtplib.SMTP(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=cfg["SMTP_TIMEOUT_SECONDS"]) as smtp:
            if cfg["SMTP_STARTTLS"]:
                smtp.starttls()
            if cfg["SMTP_USER"]:
                smtp.login(cfg["SMTP_USER"], cfg["SMTP_PASSWORD"] or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        log.error("mail delivery failed: %s", type(error).__name__)


def password_changed(to, username, how):
    """Tell the owner that the account's password changed (`how`: by whom or by what)."""
    send(
        to,
        "Your Eqeqo password was changed",
        f"The password of the Eqeqo account {username} was just changed {how}, and its other sessions ended.\n\n"
        "If it was not you, ask an administrator to lock the account at once.\n",
    )


def email_changed(to, username, how):
    """Tell the old address that the account's email changed, so a hijacked account is noticed."""
    send(
        to,
        "Your Eqeqo email address was changed",
        f"The email address of the Eqeqo account {username} was just changed {how}; "
        "this address will get no more mail about it.\n\n"
        "If it was not you, ask an administrator to lock the account at once.\n",
    )
