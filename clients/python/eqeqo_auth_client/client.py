"""A synchronous client for the Eqeqo Auth API."""

import time
from collections.abc import Callable
from typing import Any, Self, TypeVar

import httpx

from .errors import AuthUnavailable, InvalidToken, MfaRequired, _seconds_until, error_from_response
from .models import MfaEnrolment, Profile, RevocationPage, Session, TokenCheck
from .stores import TokenStore

VERSION = "0.1.0"  # the package version, also sent as the User-Agent
DEFAULT_BASE_URL = "http://127.0.0.1:7878"
# A backend waits on this for its own callers, so every phase is bounded; connect
# is short because a refused or silent port should fail over to 503 quickly.
DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
RETRY_BACKOFF_SECONDS = 0.05  # first pause before a retried connect; doubles each time

T = TypeVar("T")


class AuthClient:
    """Calls the auth service over one keep-alive connection pool; thread-safe.

    Only connect failures are retried, and only for calls that are safe to
    repeat (`check_token`, `profile`): a login or a password change is sent once.
    Give it a `token_store` and `login` saves the token there, calls that need a
    token use the stored one when none is passed, and logout forgets it. Give it the
    backend's `service_key` and it is sent with every check and feed request.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        connect_retries: int = 2,
        token_store: TokenStore | None = None,
        service_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token_store = token_store
        self._key_header = {"service-token": service_key} if service_key else {}
        self._connect_retries = connect_retries
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={
                "Accept": "application/json",
                "User-Agent": f"eqeqo-auth-client/{VERSION}",
            },
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def has_service_key(self) -> bool:
        """Whether this client sends a service key (and so may follow the revocation feed)."""
        return bool(self._key_header)

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def login(self, username: str, password: str) -> Session:
        """Log in by username or email; the token is saved in the store, if any. For a user with a
        second factor, raises MfaRequired: finish with `login_mfa(error.mfa_token, code)`."""
        body = self._call("POST", "/auth/login", json={"username": username, "password": password})
        if body.get("mfa_required") is True:
            raise _parse(lambda b: MfaRequired(str(b["mfa_token"]), int(b["expires_in"])), body)
        return self._keep(_parse(Session.from_json, body))

    def login_mfa(self, mfa_token: str, code: str) -> Session:
        """The second step of a login: a TOTP code from the authenticator app, or a recovery code."""
        body = self._call("POST", "/auth/login/mfa", json={"mfa_token": mfa_token, "code": code})
        return self._keep(_parse(Session.from_json, body))

    def start_mfa_enrolment(self, token: str | None = None) -> MfaEnrolment:
        """Start enrolling an authenticator app: its secret and otpauth:// URI (for a QR code)."""
        body = self._call("POST", "/auth/mfa/totp", token=self._token(token))
        return _parse(lambda b: MfaEnrolment(str(b["secret"]), str(b["otpauth_uri"])), body)

    def confirm_mfa_enrolment(self, code: str, token: str | None = None) -> list[str]:
        """Activate it with one code from the app; returns the ten recovery codes, shown once."""
        body = self._call("POST", "/auth/mfa/totp/confirm", token=self._token(token), json={"code": code})
        return _parse(lambda b: [str(c) for c in b["recovery_codes"]], body)

    def remove_mfa(self, password: str, code: str, token: str | None = None) -> None:
        """Remove one's second factor, with the current password and a code."""
        self._call("DELETE", "/auth/mfa/totp", token=self._token(token), json={"password": password, "code": code})

    def _keep(self, session: Session) -> Session:
        """Save a new session's token in the store, if any."""
        if self.token_store is not None:
            self.token_store.save(session.token)
        return session

    def logout(self, token: str | None = None) -> None:
        """Revoke one token (the stored one by default); unknown tokens are fine too."""
        token = self._token(token)
        self._call("POST", "/auth/logout", token=token)
        self._forget(token)

    def logout_all(self, token: str | None = None) -> int:
        """Revoke every token of the token's user; returns how many were revoked."""
        token = self._token(token)
        body = self._call("POST", "/auth/logout-all", token=token)
        self._forget(token)
        return _parse(lambda b: int(b["revoked"]), body)

    def profile(self, token: str | None = None) -> Profile:
        """Return the token's user and their grants in every service; renews it."""
        body = self._call("GET", "/auth/profile", token=self._token(token), retry=True)
        return _parse(Profile.from_json, body)

    def check_token(self, token: str, service: int | str, user_id: int | str | None = None) -> TokenCheck:
        """Ask whether `token` opens `service` (id or name), for `user_id` if given.

        Raises InvalidToken when the token is dead and Forbidden when it is live
        but has no access there.
        """
        body: dict[str, Any] = {"token": token, "service_id": service}
        if user_id is not None:
            body["user_id"] = user_id
        answer = self._call("POST", "/check-token", json=body, retry=True, headers=self._key_header)
        return _parse(TokenCheck.from_json, answer)

    def revocations(self, after: str | None = None, *, wait: int = 0, limit: int | None = None) -> RevocationPage:
        """The revocation feed after the cursor `after` (without one: no events, and the cursor to
        start from), waiting up to `wait` seconds (at most 25) for the first event. Needs the
        service key; raises CursorExpired when the feed no longer holds what followed `after`."""
        params: dict[str, Any] = {"wait": wait}
        if after is not None:
            params["after"] = after
        if limit is not None:
            params["limit"] = limit
        response, body = self._exchange(
            "GET", "/revocations", params=params, headers=self._key_header, retry=True, read_timeout=wait + 5
        )
        return _parse(lambda b: RevocationPage.from_json(b, _seconds_until(response.headers.get("Retry-After"))), body)

    def forgot_password(self, username: str) -> None:
        """Ask for a reset code by mail; silent on whether the account exists."""
        self._call("POST", "/auth/password/forgot", json={"username": username})

    def reset_password(self, code: str, password: str) -> None:
        """Set a new password with a mailed code; revokes every token of the user."""
        self._call("POST", "/auth/password/reset", json={"code": code, "password": password})

    def change_password(self, current_password: str, new_password: str, token: str | None = None) -> int:
        """Change the caller's password; returns how many other tokens were revoked."""
        body = self._call(
            "PUT",
            "/auth/password",
            token=self._token(token),
            json={"current_password": current_password, "new_password": new_password},
        )
        return _parse(lambda b: int(b["revoked"]), body)

    def _token(self, token: str | None) -> str:
        """Pick the explicit token, else the stored one."""
        if token is None and self.token_store is not None:
            token = self.token_store.load()
        if not token:
            raise InvalidToken("no token given and none stored", code="missing_token")
        return token

    def _forget(self, token: str) -> None:
        """Clear the store when it holds a token that was just revoked."""
        if self.token_store is not None and self.token_store.load() == token:
            self.token_store.clear()

    def _call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: dict[str, Any] | None = None,
        retry: bool = False,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request; return its JSON body or raise the matching AuthError."""
        headers = {**(headers or {}), **({"token": token} if token else {})}
        return self._exchange(method, path, json=json, headers=headers, retry=retry)[1]

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        retry: bool = False,
        read_timeout: float | None = None,
    ) -> tuple[httpx.Response, dict[str, Any]]:
        """Send one request; return the response and its JSON body, or raise the matching AuthError."""
        options: dict[str, Any] = {"headers": headers, "json": json, "params": params}
        if read_timeout is not None:
            options["timeout"] = httpx.Timeout(read_timeout, connect=DEFAULT_TIMEOUT.connect)
        response = self._send(method, path, options, self._connect_retries if retry else 0)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not response.is_success:
            raise error_from_response(response, body)
        if not isinstance(body, dict):
            raise AuthUnavailable(
                f"{method} {path} answered {response.status_code}, not a JSON object",
                status=response.status_code,
            )
        return response, body

    def _send(self, method: str, path: str, options: dict[str, Any], retries: int) -> httpx.Response:
        """Send a request, repeating it only when no connection could be opened."""
        attempt = 0
        while True:
            try:
                return self._http.request(method, path, **options)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt >= retries:
                    raise AuthUnavailable(f"cannot connect to {self.base_url}: {exc}") from exc
            except httpx.TransportError as exc:
                raise AuthUnavailable(f"{method} {path} failed: {exc!r}") from exc
            time.sleep(RETRY_BACKOFF_SECONDS * 2**attempt)
            attempt += 1


def _parse(read: Callable[[dict[str, Any]], T], body: dict[str, Any]) -> T:
    """Read a body; a shape outside the contract is AuthUnavailable."""
    try:
        return read(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise AuthUnavailable(f"unexpected answer from the auth service: {exc!r}") from exc
