"""The dashboard page at ``/`` and the tracker script at ``/tracker.js``, both from the package.

The page and its assets (``api/static``, served under ``/static``) need no front-end server and
no CDN: the charting library (uPlot) is vendored in ``api/static/vendor``. Neither route is
recorded as a footprint: the dashboard must not count itself, and the tracker is a script
fetched with every tracked page view, not a page view.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from footprint.middleware import no_footprint

__all__ = ["STATIC_DIR", "router", "static_files"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["dashboard"], dependencies=[Depends(no_footprint)])


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def dashboard() -> FileResponse:
    """The live dashboard."""
    # Revalidate every time so a new release's page is never mixed with old assets.
    return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})


_SCRIPT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The script",
        "content": {"text/javascript": {"schema": {"type": "string"}}},
    }
}


# One route for both methods, so that a 405 lists both in Allow (one route per method would
# list only its own); FastAPI then gives the two operations the same operationId (a warning).
@router.api_route(
    "/tracker.js", methods=["GET", "HEAD"], response_class=FileResponse, responses=_SCRIPT
)
async def tracker() -> FileResponse:
    """The page-view tracker for any site: ``<script src=".../tracker.js" defer></script>``."""
    return FileResponse(
        STATIC_DIR / "tracker.js",
        media_type="text/javascript",
        headers={"cache-control": "public, max-age=3600", "access-control-allow-origin": "*"},
    )


def static_files() -> StaticFiles:
    """The dashboard's assets, to mount at ``/static``."""
    return StaticFiles(directory=STATIC_DIR)
