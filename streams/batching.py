"""Batches that begin with their first event: ``ReadyStream.take_ready``.

Faust's ``take_events(max_, within)`` hands its buffer over on a clock: every ``within``
seconds, or at once when ``max_`` events are buffered. An event that finds the agent idle
waits for the next tick, half a period on average, and the events that arrived during a pass
wait for a whole tick after it, though they were ready when it ended.

``take_ready(max_, linger, max_bytes)`` hands the buffer over ``linger`` seconds after its first
event, or at once when ``max_`` events, or ``max_bytes`` of their values, are buffered. An idle
agent takes an event after ``linger``; a busy one takes, as soon as its pass ends, what arrived
during it: batches grow with the load by themselves, and no pass waits for a clock. As in
Faust's ``take_events``, no event joins the buffer while the agent holds a batch: the stream
waits. Acknowledgement is Faust's: the events of a batch are acknowledged when
the agent asks for the next one, never before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, cast

import faust
from faust.streams import _tracks_buffer_agen
from faust.types import ChannelT, EventT
from mode.utils.aiter import aiter
from mode.utils.futures import notify
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
        (raw bytes) add up to ``max_bytes``."""
        events: list[EventT] = []
        size = 0  # bytes of the buffered values, when max_bytes is given
        filling = Event()  # the buffer holds an event
        full = Event()
        consumed = Event()
        consuming: asyncio.Future[None] | None = None

        async def add(value: Any) -> Any:
            # Runs in the stream, for each event in turn: while a batch is with the agent the
            # next event waits here, so a batch never changes under the agent.
            nonlocal consuming, size
            try:
                if consuming is not None:
                    try:
                        await consuming
                    finally:
                        consuming = None
                event = self.current_event
                if event is None:
                    raise RuntimeError("take_ready found no current event")
                events.append(event)
                filling.set()
                if max_bytes is not None and isinstance(event.value, bytes):
                    size += len(event.value)
                if len(events) >= max_ or (max_bytes is not None and size >= max_bytes):
                    full.set()
                    consumed.clear()
                    await self.wait(consumed)
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
                await self.wait_for_stopped(full, timeout=linger)
                consuming = self.loop.create_future()
                try:
                    yield list(events)
                finally:
                    for event in events:
                        await self.ack(event)
                    events.clear()
                    size = 0
                    notify(consuming)
                    filling.clear()
                    full.clear()
                    consumed.set()
        finally:
            self.enable_acks = enable_acks
            self._processors.remove(add)
