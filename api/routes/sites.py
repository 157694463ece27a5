"""The sites registry (admins only): sites, their API keys and shared links.

A key or link is answered once, when it is made; only its sha256 is stored. Removing a site
removes its keys and links (its footprints stay); revoking takes effect at once in this process
and within ``FOOTPRINT_SITES_REFRESH_SECONDS`` in the others.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.convertors import StringConvertor, register_url_convertor

from api.auth import AdminUser
from api.models.errors import Error, errors
from api.models.sites import NewKey, NewLink, NewSite, SiteIn, SiteList, SitePatch
from api.sites import RegistryUnavailable, SiteExists, SiteRegistry, UnknownSite
from footprint.site_keys import RESERVED_NAMES, normalise_domain


class UnavailableRoute(APIRoute):
    """A route whose PostgreSQL outage answers 503 (nothing changed) instead of a 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RegistryUnavailable as e:
                return JSONResponse({"detail": str(e)}, status_code=503)

        return route


router = APIRouter(
    prefix="/api/v1/sites",
    tags=["sites"],
    responses=errors(401, 403, 422, 503),
    route_class=UnavailableRoute,
)

Domain = Annotated[str, Path(max_length=300, description="The site's domain")]


class _SiteSegment(StringConvertor):
    """A ``{domain}`` that is not a sub-resource of the registry (``/goals``, ``/funnels``).

    Without it ``DELETE /api/v1/sites/goals`` was taken as removing a site named "goals", and a
    405 there listed DELETE, which the API's document does not (schemathesis found it).
    """

    regex = rf"(?!(?i:{'|'.join(RESERVED_NAMES)})(?:/|$))[^/]+"


register_url_convertor("site", _SiteSegment())


def _registry(request: Request) -> SiteRegistry:
    return request.app.state.sites


def _domain(value: str) -> str:
    try:
        return normalise_domain(value)
    except ValueError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {value!r}") from None


def _missing(domain: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no site {domain!r}")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NewSite,
    responses={
        **errors(400, 413),
        409: {"model": Error, "description": "A site with this domain is already registered"},
    },
)
async def add_site(body: SiteIn, request: Request, _admin: AdminUser) -> dict[str, Any]:
    """Register a site; the answer holds its first API key, shown this once."""
    try:
        key_id, key = await _registry(request).add_site(body.domain, body.raw_retention_days)
    except SiteExists:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"site {body.domain!r} is already registered"
        ) from None
    return {"domain": body.domain, "api_key": key, "key_id": key_id}


@router.get("", response_model=SiteList)
async def list_sites(request: Request, _admin: AdminUser) -> dict[str, Any]:
    """Every registered site, with its number of live keys and shared links (never the keys)."""
    return {"sites": await _registry(request).list_sites()}


@router.patch("/{domain:site}", response_model=SitePatch, responses=errors(400, 404, 413))
async def change_site(
    domain: Domain, body: SitePatch, request: Request, _admin: AdminUser
) -> dict[str, Any]:
    """Change how long the site's raw footprints are kept (the next retention run applies it)."""
    name = _domain(domain)
    try:
        await _registry(request).set_retention(name, body.raw_retention_days)
    except UnknownSite:
        raise _missing(name) from None
    return {"raw_retention_days": body.raw_retention_days}


@router.delete("/{domain:site}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def remove_site(domain: Domain, request: Request, _admin: AdminUser) -> Response:
    """Remove a site with its keys and shared links; its footprints are kept."""
    name = _domain(domain)
    try:
        await _registry(request).remove_site(name)
    except UnknownSite:
        raise _missing(name) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{domain:site}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=NewKey,
    responses=errors(404),
)
async def add_key(domain: Domain, request: Request, _admin: AdminUser) -> dict[str, Any]:
    """A new API key of the site, shown this once."""
    name = _domain(domain)
    try:
        key_id, key = await _registry(request).add_key(name)
    except UnknownSite:
        raise _missing(name) from None
    return {"domain": name, "api_key": key, "key_id": key_id}


@router.delete(
    "/{domain:site}/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404)
)
async def revoke_key(
    domain: Domain,
    key_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    request: Request,
    _admin: AdminUser,
) -> Response:
    """Revoke an API key of the site: it answers 401 from now on."""
    name = _domain(domain)
    try:
        await _registry(request).revoke_key(name, key_id)
    except UnknownSite:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"site {name!r} has no live key {key_id}"
        ) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{domain:site}/shared-links",
    status_code=status.HTTP_201_CREATED,
    response_model=NewLink,
    responses=errors(404),
)
async def add_link(domain: Domain, request: Request, _admin: AdminUser) -> dict[str, Any]:
    """A new shared link: a read-only view of the site's stats, shown this once."""
    name = _domain(domain)
    try:
        link_id, token = await _registry(request).add_link(name)
    except UnknownSite:
        raise _missing(name) from None
    return {"domain": name, "link_id": link_id, "token": token, "url": f"/?link={token}"}


@router.delete(
    "/{domain:site}/shared-links/{link_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(404),
)
async def revoke_link(
    domain: Domain,
    link_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    request: Request,
    _admin: AdminUser,
) -> Response:
    """Revoke a shared link: it answers 401 from now on."""
    name = _domain(domain)
    try:
        await _registry(request).revoke_link(name, link_id)
    except UnknownSite:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"site {name!r} has no live shared link {link_id}"
        ) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)
