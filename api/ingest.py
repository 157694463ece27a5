"""Which sites' footprints an ingest request may post: registered ones, from their own pages."""

from __future__ import annotations

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError

from api.cors import explicitly_allowed
from footprint.enrich import site_of
from footprint.schema import Footprint

__all__ = ["check_ingest_sites"]


def check_ingest_sites(
    request: Request, footprints: list[Footprint], configured: list[str], many: bool
) -> None:
    """403 for a page posting another site's footprints; 422 naming each unknown site."""
    origin = request.headers.get("origin")
    if origin and not explicitly_allowed(origin, configured):
        page = site_of(origin)
        for footprint in footprints:
            if footprint.site != page:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"site {footprint.site!r}: a page of {origin} posts its own site's "
                    "footprints only (FOOTPRINT_CORS_ORIGINS lists origins allowed for any site)",
                )
    registry = request.app.state.sites
    unknown = [
        {
            "type": "unknown_site",
            "loc": ("body", i, "site") if many else ("body", "site"),
            "msg": f"site {f.site!r} is not registered: footprint sites add {f.site} "
            "(or FOOTPRINT_AUTO_REGISTER_SITES=true)",
        }
        for i, f in enumerate(footprints)
        if not registry.known(f.site)
    ]
    if unknown:
        registry.refused += len(footprints)
        raise RequestValidationError(unknown)
