"""Credentials of requests: user tokens (``footprint.tokens``) as FastAPI dependencies.

``sub`` is the user id; ``admin: true`` marks a moderator. Tokens come as a bearer header, or on a
WebSocket also as a subprotocol (``bearer, <token>``) or ``?token=`` for browsers. Tokens are
never logged.

Who may do what: ``CurrentUser`` (any valid token) for a user's own community actions and inbox,
``AdminUser`` for moderation, and ``StatsReader`` for everything that shows visits or the
stream (stats, live sockets, stream status, metrics). ``authorize_stats`` is the one place that
decides what counts as a stats credential.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, HTTPException, Request, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from footprint.settings import Settings
from footprint.tokens import AuthError, NotAllowed, User, mint_token, verify_token

__all__ = [
    "AdminUser",
    "AuthError",
    "CurrentUser",
    "NotAllowed",
    "StatsReader",
    "User",
    "authorize_stats",
    "mint_token",
    "read_stats",
    "verify_token",
    "websocket_token",
]


def authorize_stats(settings: Settings, token: str | None) -> User:
    """Whom a stats credential names: today a moderator's token (admin claim).

    Raises AuthError (no or a bad credential) or NotAllowed (a valid token without the right).
    Further credentials (site API keys, shared links) are added here, and only here.
    """
    user = verify_token(settings, token)
    if not user.admin:
        raise NotAllowed("reading stats needs an admin token: footprint token --admin NAME")
    return user


def websocket_token(ws: WebSocket) -> tuple[str | None, str | None]:
    """The socket's token and the subprotocol to answer with; strips ``token`` from the query.

    Stripping the query parameter before ``accept`` keeps it out of the server's access log.
    """
    auth = ws.headers.get("authorization", "")
    protocols = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",")]
    query = parse_qsl(ws.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    query_token = next((v for k, v in query if k == "token"), None)
    if query_token is not None:
        ws.scope["query_string"] = urlencode([(k, v) for k, v in query if k != "token"]).encode()
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), None
    if len(protocols) >= 2 and protocols[0].lower() == "bearer":
        return protocols[1], "bearer"
    return query_token, None


_bearer = HTTPBearer(auto_error=False)


def _unauthorized(e: AuthError) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, str(e), headers={"WWW-Authenticate": "Bearer"}
    )


async def _current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    try:
        return verify_token(
            request.app.state.settings, credentials.credentials if credentials else None
        )
    except AuthError as e:
        raise _unauthorized(e) from None


async def _admin_user(user: Annotated[User, Depends(_current_user)]) -> User:
    if not user.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "moderators only (admin claim)")
    return user


async def read_stats(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The dependency of every route that shows visits or the stream: 401 or 403 otherwise."""
    try:
        return authorize_stats(
            request.app.state.settings, credentials.credentials if credentials else None
        )
    except AuthError as e:
        raise _unauthorized(e) from None
    except NotAllowed as e:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(e)) from None


CurrentUser = Annotated[User, Depends(_current_user)]
AdminUser = Annotated[User, Depends(_admin_user)]
StatsReader = Annotated[User, Depends(read_stats)]
