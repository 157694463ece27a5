"""Retry a store write while its store is unavailable; let a refusal through; report bugs loudly.

Three outcomes of an attempt that raises (``streams/sinks/base.py``):

* ``StoreUnavailable``: retried with backoff (up to ``MAX_BACKOFF``); the agent stops
  consuming rather than drop data. Logged as a warning, the store shows ``unavailable``.
* ``StoreRefused``: raised to the caller at once, which isolates and dead-letters the refused
  items. Retrying the same data could only fail again and stall the partition for ever.
* anything else is a bug in the worker: logged at ERROR with its traceback, the store shows
  ``bug`` in ``/api/stream/status`` and ``footprint_worker_sink_state``, counted in
  ``footprint_worker_sink_failures_total{kind="bug"}``, and retried with a capped backoff (up to
  ``MAX_BUG_BACKOFF``): it may be transient, and nothing is skipped. The worker does not exit
  after N failures: a restart would re-read the same batch and meet the same bug, and a crash
  loop would also stop the partitions that work (and, under ``footprint run``, the API). The
  state and the metric are what pages an operator.

A ``CancelledError`` (shutdown, rebalance) is not an ``Exception``: it propagates at once, also
from the backoff sleep. With ``stop`` (the Faust app), the backoff ends when the worker stops
and ``WorkerStopping`` is raised: the batch is given up unacknowledged (streams/shutdown.py).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from streams.shutdown import Stoppable, WorkerStopping
from streams.sinks.base import StoreRefused, StoreUnavailable
from streams.status import status

__all__ = ["MAX_BACKOFF", "MAX_BUG_BACKOFF", "retry_forever", "where"]

log = logging.getLogger(__name__)
FIRST_BACKOFF = 0.2
MAX_BACKOFF = 10.0
MAX_BUG_BACKOFF = 30.0
T = TypeVar("T")


def where(e: BaseException) -> str:
    """``file:line in function`` of the frame that raised ``e``."""
    frames = traceback.extract_tb(e.__traceback__)
    if not frames:
        return "?"
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.lineno} in {f.name}"


async def _wait(name: str, seconds: float, stop: Stoppable | None, cause: Exception) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    await stop.sleep(seconds)  # returns early when the service stops
    if stop.should_stop:
        raise WorkerStopping(f"{name}: given up, the worker is stopping") from cause


async def retry_forever(
    name: str, attempt: Callable[[], Awaitable[T]], *, stop: Stoppable | None = None
) -> T:
    """Await ``attempt()`` until it returns, retrying outages and bugs; a refusal is raised."""
    backoff = bug_backoff = FIRST_BACKOFF
    while True:
        try:
            result = await attempt()
        except StoreRefused:
            status.sinks[name] = "ok"  # the store answers: it is the data it refuses
            raise
        except StoreUnavailable as e:
            status.sinks[name] = "unavailable"
            status.failed(name, "unavailable")
            status.error(f"{name}: unavailable: {e.message}")
            log.warning("%s unavailable, retrying in %.1fs: %s", name, backoff, e.message)
            await _wait(name, backoff, stop, e)
            backoff = min(backoff * 2, MAX_BACKOFF)
        except Exception as e:
            status.sinks[name] = "bug"
            status.failed(name, "bug")
            status.bug(f"{name}: bug: {type(e).__name__}: {e} ({where(e)})")
            log.exception("BUG in the worker writing to %s, retrying in %.1fs", name, bug_backoff)
            await _wait(name, bug_backoff, stop, e)
            bug_backoff = min(bug_backoff * 2, MAX_BUG_BACKOFF)
        else:
            status.sinks[name] = "ok"
            return result
