"""Deliver footprints to Kafka without ever making a request wait for the broker.

``offer()`` is synchronous and O(1): it appends to a bounded in-memory buffer that a background
task drains to Kafka in batches. When the broker is unreachable the buffer fills; past its bound
footprints are appended to a spool file on local disk, and they are sent once the broker is back.
Delivery is at-least-once: an event is retried until the broker acknowledges it, and the event id
lets every store drop the rare duplicate.

What is sent at once is packed: the footprints of one partition (chosen by link, as a keyed
message would be) travel as one message holding a JSON array (``footprint.schema.pack``), so
the worker's per-message cost is paid once per pack rather than once per footprint; the records
and their grouping into packs are in ``footprint/records.py``, the spool in ``footprint/spool.py``.

A *source* (the middleware's ``footprint.capture.Captures``) hands over raw captured requests
instead: a second background task builds them into records a batch at a time, off the request
path, and offers them as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiokafka import AIOKafkaProducer

from footprint.kafka_admin import TopicSpec
from footprint.kafka_send import send_packs, start_producer
from footprint.records import Record, record_from_spool, to_record
from footprint.schema import Footprint
from footprint.spool import Spool

__all__ = ["FootprintProducer", "ProducerStats", "Source"]

log = logging.getLogger(__name__)


class Source(Protocol):
    """Items a background task builds into records (``footprint.capture.Captures``)."""

    wake: Callable[[], None]
    limit: int

    def __len__(self) -> int: ...

    async def take(self) -> list[Record]: ...


@dataclass
class ProducerStats:
    """What the producer has done, for /health and /api/stream/status."""

    offered: int = 0
    delivered: int = 0
    failed_sends: int = 0
    spooled: int = 0
    connected: bool = False
    last_error: str | None = None


class FootprintProducer:
    """A bounded buffer of footprints drained to Kafka by one background task."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        partitions: int = 4,
        replication_factor: int = 1,
        max_buffer: int = 100_000,
        spool_dir: Path | None = None,
        batch_size: int = 1000,
        linger_ms: int = 20,
        request_timeout_ms: int = 5000,
        pack_items: int = 500,
        pack_bytes: int = 256 * 1024,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.topic_spec = TopicSpec(topic, partitions, replication_factor)
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        self.linger_ms = linger_ms
        self.request_timeout_ms = request_timeout_ms
        self.pack_items = pack_items
        self.pack_bytes = pack_bytes
        self.spool = Spool(spool_dir) if spool_dir is not None else None
        self.stats = ProducerStats()
        self._buffer: deque[Record] = deque()
        self._sources: list[Source] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._builder: asyncio.Task[None] | None = None
        self._captured = asyncio.Event()  # something waits in a source
        self._segment: tuple[Path, int] | None = None  # spool segment loaded into the buffer
        self._in_flight: list[Record] = []
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    # --- the request path: never blocks, never raises ---
    def offer(self, footprint: Footprint) -> None:
        """Queue one footprint for delivery."""
        self.offer_records([to_record(footprint)])

    def offer_records(self, records: list[Record]) -> None:
        """Queue records (``footprint.records``) for delivery: in memory, past its bound on
        disk."""
        self.stats.offered += len(records)
        self._idle.clear()
        self._wakeup.set()
        room = max(0, self.max_buffer - len(self._buffer))
        if room >= len(records):
            self._buffer.extend(records)
            return
        self._buffer.extend(records[:room])
        if self.spool is not None:
            try:
                self.spool.append([value for _, value, _, _ in records[room:]])
                self.stats.spooled += len(records) - room
                return
            except OSError as e:  # a full disk must not fail the request either
                self.stats.last_error = f"spool: {e}"
        log.error("footprint buffer full and no spool: dropping %d", len(records) - room)

    def add_source(self, source: Source) -> None:
        """Build and deliver what ``source`` holds, from a background task; it holds at most
        as many items as the buffer."""
        source.wake = self.wake
        source.limit = min(source.limit, self.max_buffer)
        self._sources.append(source)
        if self._task is not None and self._builder is None:  # added after start()
            self._builder = asyncio.create_task(self._build(), name="footprint-builder")

    def wake(self) -> None:
        """Something is waiting in a source: have the build task take it."""
        self._idle.clear()
        self._captured.set()

    @property
    def running(self) -> bool:
        """Whether the delivery task runs (and so drains the sources)."""
        return self._task is not None

    @property
    def pending(self) -> int:
        """Footprints not yet acknowledged by the broker (memory and disk)."""
        spooled = self.spool.count if self.spool else 0
        if self._segment is not None:  # its values are in the buffer (or in flight) meanwhile
            spooled -= self._segment[1]
        return (
            len(self._buffer)
            + len(self._in_flight)  # sent, not yet acknowledged: flush() waits for them too
            + sum(len(source) for source in self._sources)
            + spooled
        )

    async def collect(self) -> None:
        """Build what the sources hold now into the buffer (or the spool, past its bound).

        The build task does it on its own, whatever the broker's state; shutdown, and a test
        that wants to see the records at once, call it directly.
        """
        for source in self._sources:
            if len(source):
                try:
                    self.offer_records(await source.take())
                except asyncio.CancelledError:
                    raise
                except Exception:  # one bad capture must not stop delivery
                    log.exception("could not build captured footprints")

    # --- lifecycle ---
    async def start(self) -> None:
        """Start the background delivery task."""
        if self._task is None:
            self._stopping = False
            self._stop_event.clear()
            self._task = asyncio.create_task(self._run(), name="footprint-producer")
        if self._builder is None and self._sources:
            self._builder = asyncio.create_task(self._build(), name="footprint-builder")

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything offered so far is delivered; False on timeout."""
        try:
            await asyncio.wait_for(self._wait_idle(), timeout)
            return True
        except TimeoutError:
            return False

    async def _wait_idle(self) -> None:
        while self.pending:
            self._idle.clear()
            self._wakeup.set()
            await self._idle.wait()

    async def stop(self, timeout: float = 5.0) -> None:
        """Deliver what can be delivered within ``timeout``, spool the rest, stop the task."""
        if self._task is not None:
            await self.flush(timeout)
            self._stopping = True
            self._stop_event.set()
            self._wakeup.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._builder is not None:
            self._builder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._builder
            self._builder = None
        await self.collect()  # what the build task had not taken yet
        if self.spool is None:
            return
        if self._segment is not None:
            # Its file still holds what it held: keep only what was not delivered.
            remaining = [value for _, value, _, from_spool in self._buffer if from_spool]
            self.spool.rewrite(*self._segment, remaining)
            self._segment = None
        fresh = [value for _, value, _, from_spool in self._buffer if not from_spool]
        if fresh:
            self.spool.append(fresh)
            self.stats.spooled += len(fresh)
        self._buffer.clear()

    # --- the background tasks ---
    async def _build(self) -> None:
        # Apart from delivery: captures become records (and spill to the spool) while a send
        # waits for the broker, or a connection is being retried.
        while True:
            await self._captured.wait()
            # Linger as the Kafka producer does: when requests trickle in (a handler waiting
            # on I/O), building them one at a time costs a task switch and a salt check each.
            await asyncio.sleep(self.linger_ms / 1000)
            self._captured.clear()
            await self.collect()

    async def _run(self) -> None:
        producer: AIOKafkaProducer | None = None
        backoff = 0.1
        try:
            while not self._stopping:
                if producer is None:
                    try:
                        producer = await self._connect()
                        backoff = 0.1
                    except Exception as e:  # broker down: keep buffering, try again
                        self._note_error(e)
                        await self._sleep(backoff)
                        backoff = min(backoff * 2, 5.0)
                        continue
                if not self._buffer and self._segment is not None and self.spool is not None:
                    self.spool.done(*self._segment)
                    self._segment = None
                if not self._buffer and self.spool is not None and self.spool.count:
                    taken = self.spool.take_oldest()
                    if taken is not None:
                        path, values = taken
                        self._buffer.extend(record_from_spool(v) for v in values)
                        self._segment = (path, len(values))
                if not self._buffer:
                    self._wakeup.clear()
                    if not any(len(source) for source in self._sources):
                        self._idle.set()
                    await self._wakeup.wait()
                    continue
                batch = [
                    self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))
                ]
                self._in_flight = batch
                try:
                    failed = await self._send(producer, batch)
                except asyncio.CancelledError:
                    # Stopped mid-send: the unacknowledged go back, for stop() to spool.
                    self._buffer.extendleft(reversed(self._in_flight))
                    raise
                finally:
                    self._in_flight = []
                if failed:
                    # Put the undelivered back in front, in order, and reconnect after a pause.
                    self._buffer.extendleft(reversed(failed))
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    producer = None
                    self.stats.connected = False
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            if producer is not None:
                with contextlib.suppress(Exception):
                    await producer.stop()
            self.stats.connected = False

    async def _connect(self) -> AIOKafkaProducer:
        producer = await start_producer(
            self.bootstrap, self.topic_spec, self.linger_ms, self.request_timeout_ms
        )
        self.stats.connected = True
        self.stats.last_error = None
        return producer

    async def _send(self, producer: AIOKafkaProducer, batch: list[Record]) -> list[Record]:
        """Send a batch as packs; return the records the broker did not acknowledge."""
        failed, delivered = await send_packs(
            producer,
            self.topic,
            batch,
            pack_items=self.pack_items,
            pack_bytes=self.pack_bytes,
            note_error=self._note_error,
            in_flight=self._in_flight,
        )
        self.stats.delivered += delivered
        return failed

    def _note_error(self, error: BaseException) -> None:
        self.stats.failed_sends += 1
        self.stats.last_error = f"{type(error).__name__}: {error}"
        log.warning("footprint delivery to %s failed: %s", self.bootstrap, self.stats.last_error)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)
