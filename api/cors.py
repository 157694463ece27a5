"""CORS for the trackers: pages on other sites may POST footprints and events, nothing else.

``FOOTPRINT_CORS_ORIGINS`` (comma-separated, ``*`` by default) lists the allowed origins; empty
turns CORS off. The tracker sends ``text/plain`` beacons, which need no preflight, but its
``fetch`` fallback and hand-written clients sending ``application/json`` do.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["TRACKER_PATHS", "TrackerCORS"]

TRACKER_PATHS = ("/api/footprints", "/api/event")


class TrackerCORS:
    """Starlette's CORSMiddleware, applied to the tracker's endpoint only."""

    def __init__(
        self, app: ASGIApp, *, origins: Sequence[str], paths: Sequence[str] = TRACKER_PATHS
    ) -> None:
        self.app = app
        self.paths = tuple(paths)
        self.cors: ASGIApp | None = None
        if origins:
            self.cors = CORSMiddleware(
                app,
                allow_origins=list(origins),
                allow_methods=["POST"],
                allow_headers=["content-type"],
                max_age=86_400,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.cors is not None and scope["type"] == "http" and scope["path"] in self.paths:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
