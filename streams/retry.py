"""Retry a store write until it succeeds: the agent stops consuming rather than drop data."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from streams.shutdown import Stoppable, WorkerStopping
from streams.sinks.base import SinkError
from streams.status import status

__all__ = ["MAX_BACKOFF", "retry_forever"]

log = logging.getLogger(__name__)
MAX_BACKOFF = 10.0
T = TypeVar("T")


async def retry_forever(
    name: str, attempt: Callable[[], Awaitable[T]], *, stop: Stoppable | None = None
) -> T:
    """Await ``attempt()`` until it returns, backing off on failure; report state in status.

    With ``stop`` (the Faust app), a failure once it is stopping, or its stop during a backoff,
    raises ``WorkerStopping``: the batch is given up unacknowledged, not retried for ever.
    """
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
            if stop is None:
                await asyncio.sleep(backoff)
            else:
                await stop.sleep(backoff)  # returns early when the service stops
                if stop.should_stop:
                    raise WorkerStopping(f"{name}: given up, the worker is stopping") from e
            backoff = min(backoff * 2, MAX_BACKOFF)
        else:
            status.sinks[name] = "ok"
            return result
