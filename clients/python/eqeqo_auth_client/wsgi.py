"""WSGI middleware for backends without Flask: every request must pass the check."""

import time
from collections.abc import Callable, Iterable
from typing import Any

from .client import AuthClient
from .errors import AuthError
from .guard import MAX_CACHE_SECONDS, TokenGuard, denial_for, token_from_headers

PAYLOAD_KEY = "eqeqo_auth.payload"


class AuthMiddleware:
    """Wraps a WSGI app; a request let through finds its `TokenPayload` in
    `environ["eqeqo_auth.payload"]`. Give the client the service key
    (`AuthClient(url, service_key=...)`) and the guard follows the revocation feed.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        client: AuthClient,
        service: int | str,
        permission: str | None = None,
        role: str | None = None,
        cache_seconds: float = MAX_CACHE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.service = service
        self.permission = permission
        self.role = role
        self.guard = TokenGuard(client, cache_seconds=cache_seconds, clock=clock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        token = token_from_headers(environ.get("HTTP_TOKEN"), environ.get("HTTP_AUTHORIZATION"))
        try:
            environ[PAYLOAD_KEY] = self.guard.authorize(
                token,
                self.service,
                method=environ.get("REQUEST_METHOD", "GET"),
                permission=self.permission,
                role=self.role,
            )
        except AuthError as error:
            denial = denial_for(error)
            start_response(f"{denial.status} {denial.reason}", list(denial.headers))
            return [denial.body]
        return self.app(environ, start_response)
