"""One error type, raised anywhere, rendered in one place as the contract's JSON shape."""

import logging

from flask import jsonify
from werkzeug.exceptions import HTTPException

import db

log = logging.getLogger(__name__)

# Werkzeug's own errors, named with the contract's codes.
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An error answer: status, contract code, human message, and optional extras."""

    def __init__(self, status, code, message, fields=None, headers=None, **extra):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields, self.headers, self.extra = fields, headers or {}, extra

    def response(self):
        """The JSON response for this error."""
        body = {**self.extra, "error": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        response = jsonify(body)
        response.status_code = self.status
        response.headers.update(self.headers)
        if self.status == 401:
            response.headers.setdefault("WWW-Authenticate", 'Bearer realm="eqeqo-auth"')
        return response


def unauthorized(code, message, **extra):
    """401 with the code the contract names (missing_token, invalid_token, ...)."""
    return ApiError(401, code, message, **extra)


def not_found(what):
    """404 naming the thing that is missing."""
    return ApiError(404, "not_found", f"{what} not found")


def _http_error(error):
    code = _HTTP_CODES.get(error.code, "http_error")
    message = error.description
    if error.code == 413:
        message = "the request body is too large"
    elif error.code == 405:
        message = "this method is not allowed on this path"
    elif error.code == 404:
        message = "no such endpoint"
    response = ApiError(error.code, code, message).response()
    if error.code == 405:
        response.headers["Allow"] = ", ".join(error.valid_methods or [])
    return response


def _database_unavailable(_error):
    return ApiError(
        503, "service_unavailable", "the database is unreachable; try again shortly", headers={"Retry-After": "2"}
    ).response()


def _database_outage(error):
    try:
        db.handle_outage(error)
    except db.DatabaseUnavailable as unavailable:
        return _database_unavailable(unavailable)


def _internal_error(error):
    log.exception("unhandled error: %s", type(error).__name__)
    return ApiError(500, "internal_error", "the server failed to answer; the error was logged").response()


def init_app(app):
    """Register the handlers that turn every failure into the JSON error shape."""
    app.register_error_handler(ApiError, lambda error: error.response())
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(db.DatabaseUnavailable, _database_unavailable)
    for outage in db.OUTAGE_ERRORS:
        app.register_error_handler(outage, _database_outage)
    app.register_error_handler(Exception, _internal_error)
