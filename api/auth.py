"""Credentials of requests: user tokens (``footprint.tokens``) as FastAPI dependencies.

``sub`` is the user id; ``admin: true`` marks a moderator. Tokens come as a bearer header, or on a
WebSocket also as a subprotocol (``bearer, <token>``) or ``?token=`` for browsers. Tokens are
never logged.

Who may do what: ``CurrentUser`` (any valid token) for a user's own community actions and inbox,
``AdminUser`` for moderation and the sites registry, ``StatsReader`` for what shows one site's
visits (the query API, the summary) and ``AllSitesReader`` for what shows every site at once
(live windows, stream status, metrics). ``authorize_stats`` is the one place that decides what
counts as a stats credential:

* an admin token reads every site;
* a site API key (``Authorization: Bearer fp_…``) reads its own site;
* a shared link (``?link=fpl_…`` or ``Authorization: Bearer fpl_…``) shows its own site,
  read-only like a key.

A key or link asking for another site's data is answered 404, as if that site did not exist:
the answer must not tell a key holder which other sites are tracked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, HTTPException, Request, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.sites import SiteRegistry
from footprint.settings import Settings
from footprint.site_keys import KEY_PREFIX, LINK_PREFIX, is_site_secret
from footprint.tokens import AuthError, NotAllowed, User, mint_token, verify_token

__all__ = [
    "ALL_SITES",
    "AdminUser",
    "AllSitesReader",
    "SiteHidden",
    "AuthError",
    "CurrentUser",
    "NotAllowed",
    "StatsAccess",
    "StatsReader",
    "User",
    "authorize_stats",
    "check_site",
    "mint_token",
    "read_all_sites",
    "read_stats",
    "site_or_404",
    "verify_token",
    "websocket_token",
]


class SiteHidden(Exception):
    """A site credential asked for another site's data (HTTP 404: the site is not revealed)."""


class _AllSites:
    def __repr__(self) -> str:
        return "ALL_SITES"


ALL_SITES = _AllSites()  # what a route showing every site at once asks for


@dataclass(frozen=True)
class StatsAccess:
    """Who reads stats: an admin (every site) or a site's key or shared link (that site)."""

    kind: Literal["admin", "key", "link"]
    site: str | None  # None: every site
    user: User | None = None  # the admin's token

    @property
    def who(self) -> str:
        """A name for per-reader limits (sockets): the admin's id or the site's credential."""
        return self.user.id if self.user else f"{self.kind}:{self.site}"

    def site_for(self, asked: str | None) -> str | None:
        """The site a route should show: the one asked, else a site credential's own site."""
        return asked if asked is not None else self.site


def authorize_stats(
    settings: Settings,
    token: str | None,
    registry: SiteRegistry | None = None,
    *,
    site: str | _AllSites | None = None,
) -> StatsAccess:
    """Whom a stats credential names, checked against the site asked for.

    ``site`` is the site whose data is asked (a domain), ``ALL_SITES`` for data of every site
    at once (admins only), or None when the route decides later (``check_site``). Raises
    AuthError (no, a bad or a revoked credential), NotAllowed (a valid credential without the
    right) or SiteHidden (another site's data).
    """
    if is_site_secret(token):
        assert token is not None
        found = registry.key_site(token) if registry and token.startswith(KEY_PREFIX) else None
        if registry and token.startswith(LINK_PREFIX):
            found = registry.link_site(token)
        if found is None:
            raise AuthError("unknown or revoked site key or shared link")
        kind: Literal["key", "link"] = "link" if token.startswith(LINK_PREFIX) else "key"
        access = StatsAccess(kind, found)
    else:
        user = verify_token(settings, token)
        if not user.admin:
            raise NotAllowed(
                "reading stats needs a site API key or an admin token: footprint token --admin NAME"
            )
        access = StatsAccess("admin", None, user)
    if site is ALL_SITES and access.site is not None:
        raise NotAllowed("this shows every site at once: it needs an admin token")
    if isinstance(site, str):
        check_site(access, site)
    return access


def check_site(access: StatsAccess, site: str) -> None:
    """SiteHidden unless ``access`` may read ``site``."""
    if access.site is not None and access.site != site.strip().lower():
        raise SiteHidden(f"no site {site!r}")


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


def _token_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if credentials:
        return credentials.credentials
    # A shared link travels in the URL (it is a link to a dashboard); keys never do.
    link = request.query_params.get("link")
    return link if link and link.startswith(LINK_PREFIX) else None


async def _current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    token = credentials.credentials if credentials else None
    if is_site_secret(token):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "a site API key or shared link reads stats only: this needs a user token",
        )
    try:
        return verify_token(request.app.state.settings, token)
    except AuthError as e:
        raise _unauthorized(e) from None


async def _admin_user(user: Annotated[User, Depends(_current_user)]) -> User:
    if not user.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "moderators only (admin claim)")
    return user


def _authorize(request: Request, token: str | None, site: str | _AllSites | None) -> StatsAccess:
    try:
        return authorize_stats(
            request.app.state.settings, token, getattr(request.app.state, "sites", None), site=site
        )
    except AuthError as e:
        raise _unauthorized(e) from None
    except NotAllowed as e:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(e)) from None


async def read_stats(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> StatsAccess:
    """The dependency of routes that show one site's visits: 401 or 403 otherwise.

    The route then calls ``check_site`` with the site it is asked for (404 for another's).
    """
    return _authorize(request, _token_of(request, credentials), None)


async def read_all_sites(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> StatsAccess:
    """The dependency of routes that show every site at once (an admin token): 401 or 403."""
    return _authorize(request, _token_of(request, credentials), ALL_SITES)


def site_or_404(access: StatsAccess, site: str) -> None:
    """``check_site`` for routes: 404 naming the site asked for."""
    try:
        check_site(access, site)
    except SiteHidden as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None


CurrentUser = Annotated[User, Depends(_current_user)]
AdminUser = Annotated[User, Depends(_admin_user)]
StatsReader = Annotated[StatsAccess, Depends(read_stats)]
AllSitesReader = Annotated[StatsAccess, Depends(read_all_sites)]
