"""User tokens: JWTs signed with ``FOOTPRINT_JWT_SECRET`` (PyJWT; HS256 by default).

``sub`` is the user id; ``admin: true`` marks a moderator. The one place tokens are minted and
verified, for the API (``api.auth`` builds its request dependencies on it), the CLI
(``footprint token``, the dashboard link of ``footprint run``) and the load generator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from pydantic import TypeAdapter

from footprint.settings import Settings
from schemas.community import UserId

__all__ = ["AuthError", "NotAllowed", "User", "mint_token", "verify_token"]

_USER_ID: TypeAdapter[str] = TypeAdapter(UserId)


class AuthError(Exception):
    """A token is missing, malformed, wrongly signed, expired or names no valid user."""


class NotAllowed(Exception):
    """A valid credential that does not grant what was asked (HTTP 403)."""


@dataclass(frozen=True)
class User:
    """The authenticated user of a request."""

    id: str
    admin: bool = False


def mint_token(
    settings: Settings, user_id: str, *, admin: bool = False, ttl: float = 86_400
) -> str:
    """A signed token for ``user_id`` valid for ``ttl`` seconds."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + int(ttl)}
    if admin:
        claims["admin"] = True
    return jwt.encode(claims, settings.require("jwt_secret"), algorithm=settings.jwt_algorithm)


def verify_token(settings: Settings, token: str | None) -> User:
    """The user a token names; raises AuthError with a reason safe to show."""
    if not token:
        raise AuthError("missing token")
    try:
        claims = jwt.decode(
            token,
            settings.require("jwt_secret"),
            algorithms=[settings.jwt_algorithm],
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.InvalidTokenError as e:
        raise AuthError(f"invalid token: {type(e).__name__}") from None
    try:
        user_id = _USER_ID.validate_python(claims["sub"])
    except Exception:
        raise AuthError("invalid token: bad subject") from None
    return User(user_id, admin=claims.get("admin") is True)
