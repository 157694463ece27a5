"""The site a Footprint user runs: a small FastAPI app, with and without the capture middleware.

``uvicorn --factory bench.hostapp:plain`` and ``uvicorn --factory bench.hostapp:tracked``; the
tracked one reads ``FOOTPRINT_KAFKA_URL`` (and the other ``FOOTPRINT_*`` settings) from the
environment, as a user's app would.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException

from footprint.middleware import FootprintMiddleware

__all__ = ["plain", "tracked"]


def _site() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/")
    async def home() -> dict[str, str]:
        return {"page": "home"}

    @app.get("/posts/{post_id}")
    async def post(post_id: int) -> dict[str, object]:
        if post_id <= 0:
            raise HTTPException(404)
        return {"post": post_id, "title": f"Post {post_id}", "tags": ["fastapi", "kafka"]}

    @app.get("/{page}")
    async def page(page: str) -> dict[str, str]:
        return {"page": page}

    return app


def plain() -> FastAPI:
    """The site alone."""
    return _site()


def tracked() -> FastAPI:
    """The site with Footprint's middleware, configured from the environment."""
    app = _site()
    app.add_middleware(FootprintMiddleware)
    return app
