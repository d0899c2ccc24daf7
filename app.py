"""The application factory: config, pool, blueprints, JSON errors, CLI commands."""

import logging

import flask.json.provider
import orjson
from flask import Flask

import config
import db
from blueprints import audit, auth, backends, health, links, mfa, passwords, rbac, tokens, users
from web import answers, cors, errors, feed, hot_path, metrics, request_log

log = logging.getLogger("auth.app")


class JSONProvider(flask.json.provider.JSONProvider):
    """Answers encoded as web/answers.py encodes every answer."""

    def dumps(self, obj, **kwargs):
        return answers.dumps(obj).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)

    def response(self, *args, **kwargs):
        body = answers.json_bytes(self._prepare_response_obj(args, kwargs))
        return self._app.response_class(body, mimetype="application/json")


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
    app.extensions["revocation_signal"] = feed.ChangeSignal(app)
    errors.init_app(app)
    request_log.init_app(app)
    metrics.init_app(app)
    cors.init_app(app)  # after request_log, so a preflight answer gets its request id too
    for blueprint in (auth, mfa, tokens, passwords, users, rbac, links, backends, audit, health):
        app.register_blueprint(blueprint.bp)

    @app.after_request
    def security_headers(response):
        for name, value in answers.SECURITY_HEADERS:
            response.headers[name] = value
        return response

    app.wsgi_app = hot_path.HotPath(app)

    from commands import register

    register(app)
    return app
