"""The answers of the Eqeqo Auth API as small immutable values."""

from dataclasses import dataclass, field
from typing import Any, Self


@dataclass(frozen=True)
class Session:
    """A successful login: the token to send and whose it is."""

    token: str = field(repr=False)
    expires_at: int
    expires_in: int
    user_id: int
    username: str
    name: str | None
    # The session is good only for enrolling a second factor (the service's MFA_REQUIRED_FOR).
    mfa_enrolment_required: bool = False

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Self:
        """Read the body of POST /auth/login (or /auth/login/mfa)."""
        payload = body["payload"]
        return cls(
            token=str(body["token"]),
            expires_at=int(body["expires_at"]),
            expires_in=int(body["expires_in"]),
            user_id=int(payload["user_id"]),
            username=str(payload["username"]),
            name=payload.get("name"),
            mfa_enrolment_required=body.get("mfa_enrolment_required") is True,
        )


@dataclass(frozen=True)
class MfaEnrolment:
    """A pending second factor: the secret for an authenticator app, and its otpauth:// URI."""

    secret: str = field(repr=False)
    otpauth_uri: str = field(repr=False)


@dataclass(frozen=True)
class ServiceAccess:
    """What a user holds within one service."""

    service_id: int
    service: str
    roles: tuple[str, ...]
    permissions: tuple[str, ...]

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> Self:
        """Read one entry of a profile's `services`."""
        return cls(
            service_id=int(item["service_id"]),
            service=str(item["service"]),
            roles=tuple(item["roles"]),
            permissions=tuple(item["permissions"]),
        )


@dataclass(frozen=True)
class Profile:
    """The caller's identity and grants in every service, from GET /auth/profile."""

    user_id: int
    username: str
    name: str | None
    email: str | None
    services: tuple[ServiceAccess, ...]
    renewed: bool
    expires_at: int
    expires_in: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Self:
        """Read the body of GET /auth/profile."""
        payload = body["payload"]
        return cls(
            user_id=int(payload["user_id"]),
            username=str(payload["username"]),
            name=payload.get("name"),
            email=payload.get("email"),
            services=tuple(ServiceAccess.from_json(item) for item in payload["services"]),
            renewed=bool(body["renewed"]),
            expires_at=int(body["expires_at"]),
            expires_in=int(body["expires_in"]),
        )


@dataclass(frozen=True)
class TokenPayload:
    """Who holds a token and what they may do in the service it was checked for."""

    user_id: int
    username: str
    name: str | None
    service_id: int
    service: str
    roles: tuple[str, ...]
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class TokenCheck:
    """A `valid: true` answer of POST /check-token."""

    payload: TokenPayload
    renewed: bool
    expires_at: int
    expires_in: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Self:
        """Read the body of a 200 from POST /check-token."""
        if body["valid"] is not True:
            raise ValueError("a 200 from /check-token must say valid: true")
        payload = body["payload"]
        return cls(
            payload=TokenPayload(
                user_id=int(payload["user_id"]),
                username=str(payload["username"]),
                name=payload.get("name"),
                service_id=int(payload["service_id"]),
                service=str(payload["service"]),
                roles=tuple(payload["roles"]),
                permissions=tuple(payload["permissions"]),
            ),
            renewed=bool(body["renewed"]),
            expires_at=int(body["expires_at"]),
            expires_in=int(body["expires_in"]),
        )


@dataclass(frozen=True)
class Revocation:
    """One event of the revocation feed: what a cache must forget."""

    kind: str  # "token", "user" or "service"
    token_hash: str | None  # kind "token": the token's SHA-256, hex
    user_id: int | None  # kind "user"
    service_id: int | None  # kind "service"; for kind "user", the one service concerned, or None for all

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Self:
        kind = str(body["kind"])
        if kind not in ("token", "user", "service"):
            raise ValueError(f"unknown revocation kind {kind!r}")
        return cls(
            kind=kind,
            token_hash=body.get("token_hash"),
            user_id=None if body.get("user_id") is None else int(body["user_id"]),
            service_id=None if body.get("service_id") is None else int(body["service_id"]),
        )


@dataclass(frozen=True)
class RevocationPage:
    """An answer of GET /revocations: events, the cursor to send next, and whether more follow at once."""

    events: tuple[Revocation, ...]
    cursor: str
    more: bool
    retry_after: int | None = None  # the service could not hold the request open: ask again after this

    @classmethod
    def from_json(cls, body: dict[str, Any], retry_after: int | None = None) -> Self:
        return cls(
            events=tuple(Revocation.from_json(event) for event in body["events"]),
            cursor=str(body["cursor"]),
            more=bool(body["more"]),
            retry_after=retry_after,
        )
