"""Batches that begin with their first event: ``ReadyStream.take_ready``.

Faust's ``take_events(max_, within)`` hands its buffer over on a clock: every ``within``
seconds, or at once when ``max_`` events are buffered. An event that finds the agent idle
waits for the next tick, half a period on average, and the events that arrived during a pass
wait for a whole tick after it, though they were ready when it ended.

``take_ready(max_, linger)`` hands the buffer over ``linger`` seconds after its first event (at
once when ``max_`` are buffered). An idle agent takes an event after ``linger``; a busy one
takes, as soon as its pass ends, what arrived during it: batches grow with the load by
themselves, and no pass waits for a clock. While the agent handles a batch, the stream goes on
taking messages into the next one (up to the same bounds), so fetching overlaps the pass's
waits on the stores instead of starting when it ends. Acknowledgement is Faust's: the events
of a batch are acknowledged when the agent asks for the next one, never before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, cast

import faust
from faust.streams import _tracks_buffer_agen
from faust.types import ChannelT, EventT
from mode.utils.aiter import aiter
from mode.utils.locks import Event

__all__ = ["ReadyStream"]

# How long an empty buffer is waited on before the stop is checked again (the wait also ends
# when the stream stops).
_IDLE_CHECK = 1.0


class ReadyStream(faust.Stream):  # type: ignore[misc]  # faust.Stream is untyped generic
    """Faust's stream with ``take_ready``: batches that start when their first event arrives."""

    @_tracks_buffer_agen  # Faust closes it when the stream stops, as it does take_events
    async def take_ready(
        self, max_: int, linger: float, max_bytes: int | None = None
    ) -> AsyncGenerator[list[EventT], None]:
        """Yield the buffered events ``linger`` seconds after the first of them arrived, or
        as soon as ``max_`` are buffered, or (given ``max_bytes``) as soon as their values
        (raw bytes) add up to ``max_bytes``. While the agent handles a batch the next one
        fills, up to the same bounds."""
        loop = self.loop
        events: list[EventT] = []  # the next batch
        size = 0  # bytes of its values, when max_bytes is given
        first_at = 0.0  # when its first event arrived (loop time)
        filling = Event()  # it holds an event
        full = Event()  # it reached a bound: the stream waits for the agent to take it
        taken = Event()

        async def add(value: Any) -> Any:
            # Runs in the stream, for each event in turn.
            nonlocal size, first_at
            try:
                event = self.current_event
                if event is None:
                    raise RuntimeError("take_ready found no current event")
                if not events:
                    first_at = loop.time()
                    filling.set()
                events.append(event)
                if max_bytes is not None and isinstance(event.value, bytes):
                    size += len(event.value)
                if len(events) >= max_ or (max_bytes is not None and size >= max_bytes):
                    taken.clear()
                    full.set()
                    await self.wait(taken)  # no event joins a full batch
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.exception("Error adding to take_ready buffer: %r", exc)
                await self.crash(exc)
            return value

        # The events are acknowledged here, after the agent has handled them.
        enable_acks = self.enable_acks
        self.enable_acks = False
        self.add_processor(add)
        self._enable_passive(cast(ChannelT, aiter(self.channel)))
        try:
            while not self.should_stop:
                await self.wait_for_stopped(filling, timeout=_IDLE_CHECK)
                if not events:
                    continue
                # The linger counts from the first event, which may have come during the
                # last pass: then what is there is taken at once.
                left = first_at + linger - loop.time()
                if left > 0 and not full.is_set():
                    await self.wait_for_stopped(full, timeout=left)
                batch = events[:]
                events.clear()
                size = 0
                filling.clear()
                full.clear()
                taken.set()
                try:
                    yield batch
                finally:
                    for event in batch:
                        await self.ack(event)
        finally:
            self.enable_acks = enable_acks
            self._processors.remove(add)
