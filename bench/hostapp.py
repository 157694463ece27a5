"""The site a Footprint user runs: a small FastAPI app, with and without the capture middleware.

``uvicorn --factory bench.hostapp:plain`` and ``uvicorn --factory bench.hostapp:tracked``; the
tracked one reads ``FOOTPRINT_KAFKA_URL`` (and the other ``FOOTPRINT_*`` settings) from the
environment, as a user's app would. ``plain_io`` and ``tracked_io`` are the same site whose
handlers wait 2 ms (``await asyncio.sleep(0.002)``), as a host app's database call would.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, HTTPException

from footprint.delivery_process import DeliveryProcess
from footprint.middleware import FootprintMiddleware
from footprint.producer import FootprintProducer

__all__ = ["IO_SECONDS", "plain", "plain_io", "tracked", "tracked_io"]

IO_SECONDS = 0.002


def _site(io: float = 0.0) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/")
    async def home() -> dict[str, str]:
        if io:  # a test of a local: the trivial site stays as it was
            await asyncio.sleep(io)
        return {"page": "home"}

    @app.get("/posts/{post_id}")
    async def post(post_id: int) -> dict[str, object]:
        if io:  # a test of a local: the trivial site stays as it was
            await asyncio.sleep(io)
        if post_id <= 0:
            raise HTTPException(404)
        return {"post": post_id, "title": f"Post {post_id}", "tags": ["fastapi", "kafka"]}

    @app.get("/{page}")
    async def page(page: str) -> dict[str, str]:
        if io:  # a test of a local: the trivial site stays as it was
            await asyncio.sleep(io)
        return {"page": page}

    return app


def plain() -> FastAPI:
    """The site alone."""
    return _site()


def tracked(producer: FootprintProducer | DeliveryProcess | None = None) -> FastAPI:
    """The site with Footprint's middleware, configured from the environment (with its own
    producer unless one is given, as a host app may share one)."""
    app = _site()
    app.add_middleware(FootprintMiddleware, producer=producer)
    return app


def plain_io() -> FastAPI:
    """The site alone, its handlers waiting 2 ms."""
    return _site(IO_SECONDS)


def tracked_io() -> FastAPI:
    """The site with the middleware, its handlers waiting 2 ms."""
    app = _site(IO_SECONDS)
    app.add_middleware(FootprintMiddleware)
    return app
