"""Flask extension: protect views with `@auth.require(...)`."""

import functools
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, request

from .client import DEFAULT_BASE_URL, AuthClient
from .errors import AuthError
from .guard import MAX_CACHE_SECONDS, TokenGuard, denial_for, token_from_headers

EXTENSION_KEY = "eqeqo_auth"


class EqeqoAuth:
    """Checks each protected request's token with the auth service.

    The base URL comes from the argument, else from the app's
    `EQEQO_AUTH_BASE_URL` config, else the contract's default address; the
    service key likewise from `service_key` or `EQEQO_AUTH_SERVICE_KEY`. With a
    key, checks carry it and the guard follows the revocation feed. A view
    that passes the check finds the token's `TokenPayload` in `flask.g.auth`.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        base_url: str | None = None,
        service: int | str | None = None,
        cache_seconds: float = MAX_CACHE_SECONDS,
        client: AuthClient | None = None,
        clock: Callable[[], float] = time.time,
        service_key: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.service_key = service_key
        self.service = service
        self.cache_seconds = cache_seconds
        self.client = client
        self.clock = clock
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Give the app its own guard: its own cache and, unless a client was given, connection pool."""
        client = self.client or AuthClient(
            self.base_url or app.config.get("EQEQO_AUTH_BASE_URL", DEFAULT_BASE_URL),
            service_key=self.service_key or app.config.get("EQEQO_AUTH_SERVICE_KEY"),
        )
        app.extensions[EXTENSION_KEY] = TokenGuard(client, cache_seconds=self.cache_seconds, clock=self.clock)

    def require(
        self,
        service: int | str | None = None,
        *,
        permission: str | None = None,
        role: str | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Run the view only for a token with access to `service` (and permission/role).

        A route parameter named `user_id` must be the token's own user.
        """
        service = self.service if service is None else service
        if service is None:
            raise TypeError("require() needs a service, or EqeqoAuth(service=...)")

        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(view)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                guard: TokenGuard = current_app.extensions[EXTENSION_KEY]
                token = token_from_headers(request.headers.get("token"), request.headers.get("Authorization"))
                try:
                    g.auth = guard.authorize(
                        token,
                        service,
                        method=request.method,
                        user_id=(request.view_args or {}).get("user_id"),
                        permission=permission,
                        role=role,
                    )
                except AuthError as error:
                    denial = denial_for(error)
                    return current_app.response_class(denial.body, status=denial.status, headers=list(denial.headers))
                return view(*args, **kwargs)

            return guarded

        return decorate
