"""CORS for the trackers: pages on other sites may POST footprints and events, nothing else.

A registered site's own origin (``https://example.com`` for the site ``example.com``, any
scheme or port) may post; so may every origin when sites are auto-registered (the route then
checks that a page posts only its own site's footprints). ``FOOTPRINT_CORS_ORIGINS``
(comma-separated, ``*`` for any) lists origins allowed to post for any site. The tracker sends
``text/plain`` beacons, which need no preflight, but its ``fetch`` fallback and hand-written
clients sending ``application/json`` do.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.sites import SiteRegistry
from footprint.enrich import site_of

__all__ = ["TRACKER_PATHS", "TrackerCORS", "explicitly_allowed"]

TRACKER_PATHS = ("/api/footprints", "/api/event")


def explicitly_allowed(origin: str, configured: Sequence[str]) -> bool:
    """Whether FOOTPRINT_CORS_ORIGINS lets ``origin`` post footprints of any site."""
    return "*" in configured or origin.rstrip("/") in configured


class _PerSiteCORS(CORSMiddleware):
    """Starlette's CORSMiddleware, with the allowed origins asked of the sites registry."""

    def __init__(self, app: ASGIApp, *, origins: Sequence[str], sites: SiteRegistry) -> None:
        # Not allow_origins=["*"]: the answer then echoes the origin (with Vary: Origin), which
        # is what a per-origin decision needs; "*" in the setting still allows any origin.
        super().__init__(
            app,
            allow_origins=[o for o in origins if o != "*"],
            allow_methods=["POST"],
            allow_headers=["content-type"],
            max_age=86_400,
        )
        self.configured = list(origins)
        self.sites = sites

    def is_allowed_origin(self, origin: str) -> bool:
        if explicitly_allowed(origin, self.configured):
            return True
        site = site_of(origin)
        return bool(site) and (self.sites.auto_register or site in self.sites.snapshot.sites)


class TrackerCORS:
    """CORS on the tracker's endpoint only."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        origins: Sequence[str],
        sites: SiteRegistry,
        paths: Sequence[str] = TRACKER_PATHS,
    ) -> None:
        self.app = app
        self.paths = tuple(paths)
        self.cors = _PerSiteCORS(app, origins=origins, sites=sites)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
