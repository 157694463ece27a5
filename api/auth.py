"""User tokens: JWTs verified with PyJWT (HS256 by default, key ``FOOTPRINT_JWT_SECRET``).

``sub`` is the user id; ``admin: true`` marks a moderator. Tokens come as a bearer header, or on a
WebSocket also as a subprotocol (``bearer, <token>``) or ``?token=`` for browsers. Tokens are
never logged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter

from footprint.settings import Settings
from schemas.community import UserId

__all__ = ["AdminUser", "AuthError", "CurrentUser", "User", "mint_token", "verify_token"]

_USER_ID: TypeAdapter[str] = TypeAdapter(UserId)


class AuthError(Exception):
    """A token is missing, malformed, wrongly signed, expired or names no valid user."""


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


_bearer = HTTPBearer(auto_error=False)


async def _current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    try:
        return verify_token(
            request.app.state.settings, credentials.credentials if credentials else None
        )
    except AuthError as e:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(e), headers={"WWW-Authenticate": "Bearer"}
        ) from None


async def _admin_user(user: Annotated[User, Depends(_current_user)]) -> User:
    if not user.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "moderators only (admin claim)")
    return user


CurrentUser = Annotated[User, Depends(_current_user)]
AdminUser = Annotated[User, Depends(_admin_user)]
