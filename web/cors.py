"""CORS for the web frontends: exact origins from CORS_ALLOWED_ORIGINS, nothing else.

Not flask-cors: it answers a preflight with Flask's automatic 200, echoes back only the
headers a preflight asks for, and adds `Vary: Origin` only when several origins are set,
while this service answers every preflight 204 with one fixed list.
"""

from flask import current_app, request

ALLOW_METHODS = "GET, POST, PUT, DELETE"
ALLOW_HEADERS = "token, Authorization, Content-Type, X-Request-ID, Idempotency-Key"
# Without these a page's script can read neither a 429's wait nor a 401's challenge.
EXPOSE_HEADERS = "Retry-After, X-Request-ID, WWW-Authenticate"
MAX_AGE_SECONDS = "600"  # a browser reuses a preflight this long; short, so a removed origin soon fails


def allowed_origin():
    """The request's Origin when it is one of the configured ones, else None."""
    origin = request.headers.get("Origin")
    return origin if origin in current_app.config["CORS_ALLOWED_ORIGINS"] else None


def answer_preflight():
    """Answer a browser's preflight from an allowed origin with 204, before any view runs."""
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers and allowed_origin():
        response = current_app.response_class(status=204)
        del response.headers["Content-Type"]  # no body, so no type
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = MAX_AGE_SECONDS
        return response
    return None


def add_headers(response):
    """Name the allowed origin on every answer to it, errors included.

    The origin is echoed, never `*`, and Access-Control-Allow-Credentials is never sent:
    the token travels in a header the page's script sets, not in a cookie, so the browser
    has no ambient credential to attach and the page needs none.
    """
    response.vary.add("Origin")  # the answer differs by Origin, so no cache may share it
    origin = allowed_origin()
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    return response


def init_app(app):
    """Answer cross-origin calls from the configured origins (config.py checks their form);
    with none configured, add nothing."""
    if not app.config["CORS_ALLOWED_ORIGINS"]:
        return
    app.before_request(answer_preflight)
    app.after_request(add_headers)
