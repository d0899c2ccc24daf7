"""Client, token stores, Flask extension and WSGI middleware for the Eqeqo Auth API."""

from .client import DEFAULT_BASE_URL, VERSION, AuthClient
from .errors import (
    AuthError,
    AuthUnavailable,
    BadRequest,
    Forbidden,
    InvalidCredentials,
    InvalidResetCode,
    InvalidToken,
    TooManyAttempts,
)
from .guard import TokenGuard
from .models import Profile, ServiceAccess, Session, TokenCheck, TokenPayload
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
    "FileTokenStore",
    "Forbidden",
    "InvalidCredentials",
    "InvalidResetCode",
    "InvalidToken",
    "MemoryTokenStore",
    "Profile",
    "ServiceAccess",
    "Session",
    "TokenCheck",
    "TokenGuard",
    "TokenPayload",
    "TokenStore",
    "TooManyAttempts",
]
