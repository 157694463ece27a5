"""How the worker stops: within ``FOOTPRINT_STOP_TIMEOUT``, without committing an unwritten batch.

Why a worker retrying a store write used to ignore Ctrl-C and SIGTERM: Faust's ``App.stop``
first waits until every message its agents took is acknowledged (``Consumer.wait_empty``), and
only then stops, that is cancels, the agents. A batch whose write was being retried was never
acknowledged, so the wait never ended (it logs ``wait_empty: Waiting for tasks`` every 10 s).

What happens now, in order:

1. The stop makes ``retry_forever(..., stop=app)`` give up at once: it raises ``WorkerStopping``.
2. ``in_flight(events)`` wraps each pass of an agent. A pass that ends by ``WorkerStopping`` or
   by cancellation *holds* its messages (one reference more): nothing can acknowledge them any
   more, not even ``Stream.take_events`` or ``ReadyStream.take_ready`` (streams/batching.py),
   which acknowledge the batch in hand in a ``finally`` when the agent leaves its loop. Their
   offsets are never committed; the next start reads the batch again (every write is
   idempotent).
3. At stop, Faust's wait for in-flight batches lasts while a pass is running, at most half of
   ``FOOTPRINT_STOP_TIMEOUT`` (``streams.compat.bound_stop_wait``); then the agents are
   cancelled, which also ends a write that hangs (a store that accepts connections but never
   answers).
4. A standalone worker (``faust -A streams.app worker``) exits anyway once the stop has taken
   ``FOOTPRINT_STOP_TIMEOUT`` (``footprint.deadline``); ``footprint run`` has its own deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import faust
from faust.types import EventT

from footprint.deadline import exit_after
from footprint.settings import Settings

__all__ = ["Stoppable", "WorkerStopping", "hold", "in_flight", "install", "settled"]

log = logging.getLogger(__name__)

_passes = 0
_waiters: list[asyncio.Future[None]] = []


class Stoppable(Protocol):
    """What a retry loop needs of the app: whether it stops, and a sleep its stop ends."""

    @property
    def should_stop(self) -> bool: ...

    async def sleep(self, n: float) -> None: ...


class WorkerStopping(Exception):
    """The worker is stopping: the batch in hand is given up, unacknowledged."""


def hold(events: Sequence[EventT]) -> None:
    """Make the events' messages impossible to acknowledge, so their offsets stay uncommitted."""
    for event in events:
        event.message.incref()


async def settled(timeout: float) -> bool:
    """Wait until no agent pass is running, at most ``timeout`` seconds; whether none is."""
    if _passes == 0:
        return True
    waiter = asyncio.get_running_loop().create_future()
    _waiters.append(waiter)
    try:
        await asyncio.wait_for(waiter, timeout)
    except TimeoutError:
        return False
    return True


@contextmanager
def in_flight(events: Sequence[EventT]) -> Iterator[None]:
    """One agent pass over ``events``; if the stop interrupts it, the batch is held."""
    global _passes
    _passes += 1
    try:
        yield
    except (WorkerStopping, asyncio.CancelledError):
        hold(events)
        log.warning(
            "stopping: a batch of %d messages was not written; its offsets are not committed "
            "and it is read again on the next start",
            len(events),
        )
        raise
    finally:
        _passes -= 1
        if _passes == 0:
            for waiter in _waiters:
                if not waiter.done():
                    waiter.set_result(None)
            _waiters.clear()


def install(app: faust.App, settings: Settings) -> None:
    """Give a standalone worker's stop a deadline (``footprint run`` sets its own)."""

    @app.task
    async def exit_if_the_stop_hangs() -> None:
        await app.wait_for_stopped()
        # in_worker: started by `faust worker`, not embedded in another program's loop.
        if app.in_worker:
            exit_after(settings.stop_timeout, "the worker")
