"""Client, token stores, Flask extension and WSGI middleware for the Eqeqo Auth API."""

from .client import DEFAULT_BASE_URL, VERSION, AuthClient
from .errors import (
    AuthError,
    AuthUnavailable,
    BadRequest,
    CursorExpired,
    Forbidden,
    InvalidCredentials,
    InvalidMfa,
    InvalidResetCode,
    InvalidToken,
    MfaRequired,
    ServiceKeyRejected,
    TooManyAttempts,
)
from .guard import RevocationFollower, TokenGuard
from .models import MfaEnrolment, Profile, Revocation, RevocationPage, ServiceAccess, Session, TokenCheck, TokenPayload
from .stores import FileTokenStore, MemoryTokenStore, TokenStore
from .wsgi import AuthMiddleware

__version__ = VERSION

__all__ = [
    "DEFAULT_BASE_URL",
    "AuthClient",
    "AuthError",
    "AuthMiddleware",
    "AuthUnavailable",
    "BadRequest",
    "CursorExpired",
    "FileTokenStore",
    "Forbidden",
    "InvalidCredentials",
    "InvalidMfa",
    "InvalidResetCode",
    "InvalidToken",
    "MemoryTokenStore",
    "MfaEnrolment",
    "MfaRequired",
    "Profile",
    "Revocation",
    "RevocationFollower",
    "RevocationPage",
    "ServiceAccess",
    "ServiceKeyRejected",
    "Session",
    "TokenCheck",
    "TokenGuard",
    "TokenPayload",
    "TokenStore",
    "TooManyAttempts",
]
