"""Exceptions for the answers of the Eqeqo Auth API, one per case a caller handles."""

import email.utils
import time

import httpx


class AuthError(Exception):
    """The auth service refused a call; `code` is the contract's error code."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.fields = dict(fields or {})


class BadRequest(AuthError):
    """400: the request was malformed; `fields` names what is wrong with each input."""


class InvalidResetCode(BadRequest):
    """400: the password reset code is unknown, used or expired."""


class InvalidCredentials(AuthError):
    """401: wrong username or password, or a disabled account (not told apart)."""


class InvalidToken(AuthError):
    """401: the token is missing, unknown, expired or revoked: log in again."""


class Forbidden(AuthError):
    """403: the token is live but gives no access here."""


class TooManyAttempts(AuthError):
    """429: the account or address is locked; `retry_after` is in seconds when known."""

    def __init__(self, message: str, *, retry_after: int | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class AuthUnavailable(AuthError):
    """The auth service could not be reached or gave no usable answer."""


class ServiceKeyRejected(AuthUnavailable):
    """401 invalid_service_key: this backend's service key is missing, unknown, revoked or
    expired. A fault of the backend's setup, not of the user: requests fail closed with 503."""


class MfaRequired(AuthError):
    """The password was right and a second factor is needed: call
    `AuthClient.login_mfa(error.mfa_token, code)` within `expires_in` seconds."""

    def __init__(self, mfa_token: str, expires_in: int) -> None:
        super().__init__("a second factor is required", status=200, code="mfa_required")
        self.mfa_token, self.expires_in = mfa_token, expires_in


class InvalidMfa(AuthError):
    """401: the code is wrong or used (`invalid_mfa_code`), or the mfa_token is unknown, expired
    or used (`invalid_mfa_token`: log in again)."""


class CursorExpired(AuthError):
    """410: the revocation feed no longer holds the events after this cursor; drop every
    cached answer and follow the feed again from its head."""


_BY_CODE: dict[str, type[AuthError]] = {
    "invalid_json": BadRequest,
    "validation_error": BadRequest,
    "invalid_reset_code": InvalidResetCode,
    "invalid_credentials": InvalidCredentials,
    "missing_token": InvalidToken,
    "invalid_token": InvalidToken,
    "forbidden": Forbidden,
    "too_many_attempts": TooManyAttempts,
    "invalid_service_key": ServiceKeyRejected,
    "invalid_mfa_code": InvalidMfa,
    "invalid_mfa_token": InvalidMfa,
    "mfa_enrolment_required": Forbidden,
    "cursor_expired": CursorExpired,
}
_BY_STATUS: dict[int, type[AuthError]] = {
    400: BadRequest,
    401: InvalidToken,
    403: Forbidden,
    429: TooManyAttempts,
}


def error_from_response(response: httpx.Response, body: object) -> AuthError:
    """Build the exception that matches an error answer of the auth service."""
    body = body if isinstance(body, dict) else {}
    status = response.status_code
    code = body.get("error") if isinstance(body.get("error"), str) else None
    message = body.get("message") or code or f"HTTP {status}"
    fields = body.get("fields") if isinstance(body.get("fields"), dict) else None
    if status >= 500:
        return AuthUnavailable(message, status=status, code=code)
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status, AuthError)
    if cls is TooManyAttempts:
        retry_after = _seconds_until(response.headers.get("Retry-After"))
        return TooManyAttempts(message, retry_after=retry_after, status=status, code=code)
    return cls(message, status=status, code=code, fields=fields)


def _seconds_until(retry_after: str | None) -> int | None:
    """Read Retry-After, which RFC 9110 allows as seconds or as an HTTP date."""
    if not retry_after:
        return None
    if retry_after.strip().isdigit():
        return int(retry_after)
    try:
        when = email.utils.parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    return max(0, round(when.timestamp() - time.time()))
