"""POST /check-token and GET /auth/profile, answered without Flask's dispatch.

These two carry the traffic of the whole fleet: every backend asks on every request it serves.
For them Flask's request context, routing, hooks and response object cost as much as a quarter
of the check (README, Performance), so this WSGI middleware, in front of the Flask app, answers
them itself and hands every other request to Flask. It runs the same code Flask runs around a
view: the endpoint's function (blueprints/tokens.py `check`, blueprints/auth.py `profile_of`),
the request id and access line of web/request_log.py, the counts of web/metrics.py, the error
answers of web/errors.py and the headers of web/answers.py, inside an app context, so `g`,
`current_app` and the pool work as in a view.

A request with an Origin header (a browser's) goes to Flask, where web/cors.py answers it.
"""

from flask import g

from blueprints import auth, tokens
from web import answers, errors, metrics, request_log

# (method, path) -> (the Flask endpoint's name, as logs and metrics know it; the function that answers)
ROUTES = {
    ("POST", "/check-token"): ("tokens.check_token", tokens.check),
    ("GET", "/auth/profile"): ("auth.profile", auth.profile_of),
}


class HotPath:
    """WSGI middleware: the routes above answered here, everything else by the Flask app."""

    def __init__(self, app):
        self.app, self.flask = app, app.wsgi_app
        # web/cors.py marks every answer as varying by Origin once any origin is allowed.
        self.vary = [("Vary", "Origin")] if app.config["CORS_ALLOWED_ORIGINS"] else []

    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        route = ROUTES.get((method, path))
        if route is None or "HTTP_ORIGIN" in environ:
            return self.flask(environ, start_response)
        endpoint, answer = route
        with self.app.app_context():
            request_log.start(environ)
            try:
                status, headers, body = 200, [], answers.json_bytes(answer(environ))
            except Exception as error:
                failure = errors.as_api_error(error)
                status, headers, body = failure.status, failure.header_list(), failure.body()
            headers += [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("X-Request-ID", g.request_id),
                *self.vary,
                *answers.SECURITY_HEADERS,
            ]
            metrics.count(method, path, endpoint, status)
            request_log.finish(environ, method, path, endpoint, status)
        start_response(answers.status_line(status), headers)
        return [body]
