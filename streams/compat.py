"""The one place that patches faust-streaming and aiokafka, applied on purpose by streams/app.py.

Each patch replaces a private name. Before patching it checks that the name is there (and, for
an attribute set on an object, that the object has it), and raises ``CompatError`` naming it
otherwise: a dependency upgrade that renames one must stop the worker and fail
``tests/unit/streams/test_compat.py``, never silently lose the behaviour.

- ``use_fetch_max_wait``: Faust hard-codes ``fetch_max_wait_ms=1500`` for its consumer. Needed on
  Tansu, which answers a fetch only when the wait ends (every record would wait for it). Apache
  Kafka answers as records arrive, so there the value only paces idle polls; it is applied on
  both, from ``FOOTPRINT_FETCH_MAX_WAIT_MS``.
- ``use_true_highwaters``: Faust recovers a table by reading its changelog up to the
  ListOffsets end offset. Tansu 0.6 under-reports it after a multi-record batch, so recovery
  would stop early. Self-detecting: it takes the larger of ListOffsets and a fetch's high
  watermark, which agree on Apache Kafka.
- ``bound_stop_wait``: when the app *stops*, Faust waits for every message its agents took to
  be acknowledged before it stops the agents, with no limit: a batch whose store write is being
  retried kept the worker from stopping for ever. At stop the wait now lasts while a pass is
  running, at most ``FOOTPRINT_STOP_TIMEOUT / 2`` (see streams/shutdown.py). A rebalance keeps
  Faust's own wait.
- ``tolerate_new_changelogs``: Faust creates a table's changelog topic when the worker starts
  and checks, at the table's first write, that it has as many partitions as the source topic,
  reading the group's metadata snapshot. On Apache Kafka a topic still being created can be in
  that snapshot with 0 partitions, and the snapshot is refreshed only every 5 minutes
  (``metadata_max_age_ms``): the agent crashed on ``PartitionsMismatch`` at every restart for
  that long, after PostgreSQL had the batch but before any other store. A changelog that reads
  as 0 partitions is now checked again at the next write instead (a real mismatch, n ≠ m with
  both known, still stops the worker); the table's writes wait for the topic in the producer.
- ``hand_over_inline``: Faust's fetcher hands each message to the streams with
  ``Consumer.wait_first(callback(message), suspend_flow.wait())``, which creates four tasks and
  an ``asyncio.wait`` per message: ~12 % of the worker's time on a topic of one footprint per
  message (profiled). The callback now runs inline up to its first real wait; only a message
  that has to wait (a full stream buffer, the producer's back-pressure, flow control) gets the
  tasks, so a rebalance still interrupts it as before.
- ``poll_briefly``: Faust's fetch loop asks the consumer thread for records with a 1 s wait,
  over the partitions whose stream buffer is not full (a full one is held back until the agent
  has taken from it). With a backlog on some partitions and the others caught up, that wait
  covered only the caught-up ones: the agent emptied the buffer and then had nothing for up to
  1 s, every time the buffer filled. On a topic of one footprint per message a bare Faust agent
  took 20,000 footprints at ~5,600/s, with waits of 0.5-1 s between batches; with the wait
  bounded to 20 ms, at 16,500-33,000/s. Idle, the loop asks 50 times a second instead of once.
- ``resend_failed_changelog``: Faust logs a changelog record that the broker did not take and
  drops it (``Topic._on_published``). The in-memory table has the value, so the stores stay
  right, but a recovery from the changelog would bring back an older one; for a key written
  again later that heals itself, for an old window it does not. Seen on Apache Kafka at the
  first start of a new application id with 8 partitions and 2 or 4 workers: records waited
  30 s, then failed with ``NotLeaderForPartitionError``. A record that fails with an error a
  retry can fix is now sent again with the key's *current* value (absolute counts, so sending
  the latest is always right), until it is taken, the worker stops, or a rebalance gives the
  partition to another worker (which then writes its own values). Counted in the worker's
  status and /metrics as store ``changelog``: a resend as ``unavailable``, a record given up
  as ``refused``.
- ``size_without_settings``: the conductor checks the producer buffer's size before handing
  each message to the streams (``ProducerBuffer.wait_until_ebb``), and ``ProducerBuffer.size``
  reads ``app.conf.producer_threaded`` through Faust's settings registry every time: ~3-4 % of
  the worker's time on a topic of one footprint per message (profiled). The setting is read
  once per buffer now; it cannot change while the app runs.
- ``flush_whole_buffer``: a table write is put in Faust's producer buffer, and
  ``Producer.flush`` — called before every offset commit, before a rebalance hands the
  partitions on, and by the worker before a batch is written (``streams/progress.py``) —
  drains that buffer only until 0.1 s pass without a record handed to aiokafka, then
  returns. While the broker is away (a restart, a leader change) that is at once: offsets were
  committed with their table updates still in the buffer, and a rebalance re-read the
  changelogs into the in-memory tables without the latest updates, putting counts back (seen
  as a 5-minute window short after an Apache Kafka restart). The flush now lasts until
  everything buffered has been handed to aiokafka, at most the producer's request timeout
  (after which aiokafka would fail the record anyway); aiokafka's own flush follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from typing import Any

import faust
from aiokafka.errors import KafkaError, KafkaTimeoutError
from faust.tables.base import Collection
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.producer import ProducerBuffer
from faust.types import TP
from mode.services import WaitResults

from footprint.kafka_admin import true_end_offsets
from footprint.settings import Settings
from streams.status import status

__all__ = [
    "CompatError",
    "apply",
    "bound_stop_wait",
    "flush_whole_buffer",
    "tolerate_new_changelogs",
    "hand_over_inline",
    "poll_briefly",
    "resend_failed_changelog",
    "use_fetch_max_wait",
    "use_true_highwaters",
]


log = logging.getLogger(__name__)

# How long the fetcher waits for records of the partitions it is not holding back (see
# poll_briefly in the module docstring).
POLL_SECONDS = 0.02

# How long aiokafka keeps trying to deliver a record (streams/app.py's producer_request_timeout).
PRODUCER_REQUEST_TIMEOUT = 30.0


class CompatError(RuntimeError):
    """A private name Footprint patches is gone from the installed faust or aiokafka."""


def require(owner: object, name: str) -> None:
    """Raise CompatError unless ``owner`` has the attribute ``name``."""
    if not hasattr(owner, name):
        where = getattr(owner, "__qualname__", type(owner).__qualname__)
        module = getattr(owner, "__module__", "?")
        raise CompatError(
            f"{module}.{where}.{name} is gone: the installed faust-streaming/aiokafka changed; "
            "streams/compat.py must be updated for it"
        )


def _patched(function: Any) -> bool:
    return bool(getattr(function, "footprint_patched", False))


def use_true_highwaters(bootstrap: str) -> None:
    """Make table recovery read changelogs to their real end (see the module docstring)."""
    require(AIOKafkaConsumerThread, "_highwaters")
    original = AIOKafkaConsumerThread._highwaters
    if _patched(original):
        return

    async def _highwaters(self: Any, partitions: list[Any]) -> Mapping[Any, int]:
        listed = dict(await original(self, partitions))
        if self.consumer.in_transaction:
            return listed
        # Faust's own answer stands if the check cannot be made (it is right on Apache Kafka).
        with contextlib.suppress(Exception):
            fixed = await true_end_offsets(bootstrap, list(partitions))
            for tp, end in fixed.items():
                listed[tp] = max(listed.get(tp) or 0, end)
        return listed

    _highwaters.footprint_patched = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._highwaters = _highwaters  # type: ignore[method-assign]


def use_fetch_max_wait(milliseconds: int) -> None:
    """Make the worker's fetches wait at most ``milliseconds`` for records."""
    require(AIOKafkaConsumerThread, "_create_worker_consumer")
    original = AIOKafkaConsumerThread._create_worker_consumer
    if _patched(original):
        return

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        require(consumer, "_fetch_max_wait_ms")  # read by AIOKafkaConsumer.start()
        consumer._fetch_max_wait_ms = milliseconds
        return consumer

    _create_worker_consumer.footprint_patched = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]


def bound_stop_wait(seconds: float, settled: Callable[[float], Awaitable[bool]]) -> None:
    """At stop, wait until ``settled`` (no pass in flight), at most ``seconds``."""
    require(faust.App, "_consumer_wait_empty")  # called by App._stop_consumer
    original = faust.App._consumer_wait_empty
    if _patched(original):
        return

    async def _consumer_wait_empty(self: Any, consumer: Any, logger: Any) -> None:
        if not self.should_stop:  # a rebalance: Faust's own wait
            await original(self, consumer, logger)
            return
        if not await settled(seconds):
            logger.warning(
                "a batch still in flight after %.0fs: stopping the agents; its offsets are "
                "not committed",
                seconds,
            )
        # What was acknowledged is committed when the consumer stops, right after.

    _consumer_wait_empty.footprint_patched = True  # type: ignore[attr-defined]
    faust.App._consumer_wait_empty = _consumer_wait_empty  # type: ignore[method-assign]


def tolerate_new_changelogs() -> None:
    """Check a changelog still being created again later (see the module docstring)."""
    require(Collection, "_verify_source_topic_partitions")
    original = Collection._verify_source_topic_partitions
    if _patched(original):
        return

    def _verify_source_topic_partitions(self: Any, source_topic: str) -> None:
        verified = source_topic in self._verified_source_topics_for_partitions
        if not verified and self.app.consumer.topic_partitions(self.changelog_topic_name) == 0:
            return  # not verified: checked again at the next write
        original(self, source_topic)

    _verify_source_topic_partitions.footprint_patched = True  # type: ignore[attr-defined]
    Collection._verify_source_topic_partitions = _verify_source_topic_partitions  # type: ignore[method-assign]


class _Started:
    """The rest of a coroutine that already ran up to ``step`` (a future it waits for), as an
    awaitable a task can drive: what ``yield from coro`` would do from that point."""

    def __init__(self, coro: Coroutine[Any, Any, Any], step: Any) -> None:
        self._coro, self._step = coro, step

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, step = self._coro, self._step
        while True:
            try:
                sent = yield step
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as e:  # a cancellation, thrown into the task: pass it on
                try:
                    step = coro.throw(e)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    step = coro.send(sent)
                except StopIteration as done:
                    return done.value


def hand_over_inline() -> None:
    """Run the fetcher's per-message callback inline unless it must wait (module docstring)."""
    require(Consumer, "_drain_messages")  # the one caller of Consumer.wait_first
    require(Consumer, "wait_first")
    original = Consumer.wait_first
    if _patched(original):
        return

    async def wait_first(self: Any, *coros: Any, timeout: Any = None) -> Any:
        # Only the fetcher's call has this shape: (callback(message), suspend_flow.wait()).
        if (
            timeout is None
            and len(coros) == 2
            and asyncio.iscoroutine(coros[0])
            and not self.suspend_flow.is_set()
            and not self.should_stop
        ):
            first, other = coros
            try:
                step = first.send(None)
            except StopIteration as done:  # delivered without waiting: the usual case
                other.close()
                return WaitResults([first], [done.value], False)
            except BaseException:
                other.close()
                raise
            # It waits for something: from here on, as Faust does it (a task per awaitable).
            # The callback holds no asyncio.timeout, which would stay bound to this task.
            coros = (_Started(first, step), other)
        return await original(self, *coros, timeout=timeout)

    wait_first.footprint_patched = True  # type: ignore[attr-defined]
    Consumer.wait_first = wait_first  # type: ignore[method-assign]


def poll_briefly(seconds: float) -> None:
    """Make the fetcher's wait for records last at most ``seconds`` (module docstring)."""
    require(Consumer, "_drain_messages")  # the one caller of Consumer.getmany
    require(Consumer, "getmany")
    original = Consumer.getmany
    if _patched(original):
        return

    def getmany(self: Any, timeout: float) -> Any:
        return original(self, timeout=min(timeout, seconds))

    getmany.footprint_patched = True  # type: ignore[attr-defined]
    Consumer.getmany = getmany  # type: ignore[method-assign]


def _worth_resending(exc: BaseException) -> bool:
    # What a later attempt can fix: a leader moving or being elected, a timeout. Not a record
    # the broker can never take (too large) or one that cannot be serialised.
    return isinstance(exc, KafkaError) and (exc.retriable or isinstance(exc, KafkaTimeoutError))


def resend_failed_changelog() -> None:
    """Send a changelog record the broker did not take again (see the module docstring)."""
    require(Collection, "send_changelog")
    require(Collection, "data")
    original = Collection.send_changelog
    if _patched(original):
        return

    def send_changelog(self: Any, partition: Any, key: Any, value: Any, *args: Any) -> Any:
        fut = original(self, partition, key, value, *args)

        def sent(done: asyncio.Future[Any]) -> None:
            if done.cancelled() or done.exception() is None:
                return
            exc = done.exception()
            assert exc is not None
            # Only while this worker still owns the partition (after a rebalance the new owner
            # writes its own values) and holds the key (a failed deletion stays failed).
            owned = TP(self.changelog_topic.get_topic_name(), partition)
            if (
                not _worth_resending(exc)
                or self.app.should_stop
                or owned not in self.app.assignor.assigned_actives()
                or key not in self.data
            ):
                log.error("changelog record of %r lost: %r", key, exc)
                status.failed("changelog", "refused")
                return
            log.warning("changelog record of %r not taken (%r): sending it again", key, exc)
            status.failed("changelog", "unavailable")
            send_changelog(self, partition, key, self.data[key], *args)

        fut.add_done_callback(sent)
        return fut

    send_changelog.footprint_patched = True  # type: ignore[attr-defined]
    Collection.send_changelog = send_changelog  # type: ignore[method-assign,assignment]


def flush_whole_buffer(timeout: float) -> None:
    """Make a flush hand every buffered record to aiokafka, within ``timeout`` (docstring)."""
    require(ProducerBuffer, "flush")
    require(ProducerBuffer, "_send_pending")  # what the buffer's task calls per record
    original_flush = ProducerBuffer.flush
    original_send = ProducerBuffer._send_pending
    if _patched(original_flush):
        return

    async def _send_pending(self: Any, fut: Any) -> None:
        # The record being sent has left the queue (``size``) but is not in aiokafka yet.
        self.footprint_sending = getattr(self, "footprint_sending", 0) + 1
        try:
            await original_send(self, fut)
        finally:
            self.footprint_sending -= 1

    async def flush(self: Any) -> None:
        if self.state != "running":  # stopping: Faust's own rules
            await original_flush(self)
            return
        require(self, "message_sent")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.size or getattr(self, "footprint_sending", 0):
            left = deadline - loop.time()
            if left <= 0:
                log.warning(
                    "producer buffer still holds %d records after %.0fs: flush gives up",
                    self.size,
                    timeout,
                )
                return
            self.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                # Polled too: the record in flight leaves ``footprint_sending`` just before
                # the buffer's task sets ``message_sent``.
                await asyncio.wait_for(self.message_sent.wait(), min(left, 0.1))

    _send_pending.footprint_patched = True  # type: ignore[attr-defined]
    flush.footprint_patched = True  # type: ignore[attr-defined]
    flush.footprint_original = original_flush  # type: ignore[attr-defined]
    ProducerBuffer._send_pending = _send_pending  # type: ignore[method-assign]
    ProducerBuffer.flush = flush  # type: ignore[method-assign]


def size_without_settings() -> None:
    """Make ``ProducerBuffer.size`` read Faust's settings once, not per message (docstring)."""
    require(ProducerBuffer, "size")
    prop = ProducerBuffer.__dict__.get("size")
    if not isinstance(prop, property) or prop.fget is None:
        raise CompatError("faust.transport.producer.ProducerBuffer.size is no longer a property")
    original = prop.fget
    if _patched(original):
        return

    def size(self: Any) -> int:
        threaded = self.__dict__.get("footprint_threaded")
        if threaded is None:
            threaded = self.__dict__["footprint_threaded"] = bool(self.app.conf.producer_threaded)
        if threaded:
            return int(original(self))
        return len(self.pending._queue)

    size.footprint_patched = True  # type: ignore[attr-defined]
    ProducerBuffer.size = property(size)  # type: ignore[method-assign,assignment]


def apply(settings: Settings) -> None:
    """Apply every patch the worker needs, for these settings."""
    from streams.shutdown import settled

    use_fetch_max_wait(settings.fetch_max_wait_ms)
    use_true_highwaters(settings.kafka_bootstrap)
    bound_stop_wait(settings.stop_timeout / 2, settled)
    tolerate_new_changelogs()
    hand_over_inline()
    poll_briefly(POLL_SECONDS)
    resend_failed_changelog()
    flush_whole_buffer(PRODUCER_REQUEST_TIMEOUT)
    size_without_settings()
