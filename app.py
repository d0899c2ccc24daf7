"""The application factory: config, pool, blueprints, JSON errors, CLI commands."""

import datetime
import logging

from flask import Flask
from flask.json.provider import DefaultJSONProvider

import config
import db
from blueprints import audit, auth, health, links, passwords, rbac, tokens, users
from web import cors, errors, metrics, request_log

log = logging.getLogger("auth.app")


class JSONProvider(DefaultJSONProvider):
    """Timestamps as ISO 8601 (the contract's format), and bodies keep their field order."""

    sort_keys = False

    @staticmethod
    def default(value):
        if isinstance(value, datetime.datetime):
            return value.isoformat()
        return DefaultJSONProvider.default(value)


def create_app(test_config=None):
    """Build the app from config.py, with `test_config` overriding any value."""
    app = Flask(__name__, static_folder=None)  # a JSON API: no static route to document
    app.json = JSONProvider(app)
    app.config.from_object(config)
    if test_config:
        app.config.update(test_config)
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_BODY_BYTES"]

    request_log.configure(app.config["LOG_LEVEL"])
    config.check(app.config)
    if app.config["APP_ENV"] == "development":
        log.warning(
            "development mode (APP_ENV=development): development secrets allowed%s",
            "" if app.config["SMTP_HOST"] else ", and mails, reset codes included, are written to the log",
        )
    db.init_app(app)
    errors.init_app(app)
    request_log.init_app(app)
    metrics.init_app(app)
    cors.init_app(app)  # after request_log, so a preflight answer gets its request id too
    for blueprint in (auth, tokens, passwords, users, rbac, links, audit, health):
        app.register_blueprint(blueprint.bp)

    @app.after_request
    def security_headers(response):
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    from commands import register

    register(app)
    return app
