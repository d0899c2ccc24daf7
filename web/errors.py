"""One error type, raised anywhere, rendered in one place as the contract's JSON shape."""

import logging

from flask import current_app
from werkzeug.exceptions import HTTPException

import db
from web import answers

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

    def body(self):
        """The JSON body of this error."""
        body = {**self.extra, "error": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return answers.json_bytes(body)

    def header_list(self):
        """The headers this error adds to its answer."""
        headers = dict(self.headers)
        if self.status == 401:
            headers.setdefault("WWW-Authenticate", 'Bearer realm="eqeqo-auth"')
        return list(headers.items())

    def response(self):
        """The Flask response for this error."""
        return current_app.response_class(self.body(), self.status, self.header_list(), mimetype="application/json")


def unauthorized(code, message, **extra):
    """401 with the code the contract names (missing_token, invalid_token, ...)."""
    return ApiError(401, code, message, **extra)


def not_found(what):
    """404 naming the thing that is missing."""
    return ApiError(404, "not_found", f"{what} not found")


def as_api_error(error):
    """The ApiError an exception is answered with: itself; 503 when the database is out (after
    the pool's sweep); 500 for anything else, logged with its traceback."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, HTTPException):
        return _http_error(error)
    if isinstance(error, db.OUTAGE_ERRORS):
        try:
            db.handle_outage(error)
        except db.DatabaseUnavailable as unavailable:
            error = unavailable
    if isinstance(error, db.DatabaseUnavailable):
        return ApiError(
            503, "service_unavailable", "the database is unreachable; try again shortly", headers={"Retry-After": "2"}
        )
    log.exception("unhandled error: %s", type(error).__name__, exc_info=error)
    return ApiError(500, "internal_error", "the server failed to answer; the error was logged")


def _http_error(error):
    """Werkzeug's own errors (no such route, wrong method, body too large...) in the contract's shape."""
    message = error.description
    if error.code == 413:
        message = "the request body is too large"
    elif error.code == 405:
        message = "this method is not allowed on this path"
    elif error.code == 404:
        message = "no such endpoint"
    headers = {"Allow": ", ".join(error.valid_methods or [])} if error.code == 405 else None
    return ApiError(error.code, _HTTP_CODES.get(error.code, "http_error"), message, headers=headers)


def init_app(app):
    """Answer every failure in the JSON error shape."""
    app.register_error_handler(Exception, lambda error: as_api_error(error).response())
