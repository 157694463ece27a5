"""Retry a store write until it succeeds: the agent stops consuming rather than drop data."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from streams.sinks.base import SinkError
from streams.status import status

__all__ = ["MAX_BACKOFF", "retry_forever"]

log = logging.getLogger(__name__)
MAX_BACKOFF = 10.0
T = TypeVar("T")


async def retry_forever(name: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """Await ``attempt()`` until it returns, backing off on failure; report state in status."""
    backoff = 0.2
    while True:
        try:
            result = await attempt()
        except Exception as e:
            # A store outage (SinkError) or a bug: either way the batch is kept and retried,
            # never skipped; the error shows in /api/stream/status.
            status.sinks[name] = "retrying"
            status.error(f"{name}: {type(e).__name__}: {e}")
            if isinstance(e, SinkError):
                log.warning("%s failed, retrying in %.1fs: %s", name, backoff, e)
            else:
                log.exception("%s failed unexpectedly, retrying in %.1fs", name, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
        else:
            status.sinks[name] = "ok"
            return result
