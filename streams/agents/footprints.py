"""The footprint agent: validate, count in window tables, store in every sink, per batch.

A batch is taken ``FOOTPRINT_BATCH_SECONDS`` after its first message, or as soon as it holds
``FOOTPRINT_BATCH_SIZE`` messages or ``FOOTPRINT_BATCH_MAX_BYTES`` of them
(``streams/batching.py``). Offsets are acknowledged only after the pass returns, that is after
the sinks have written the batch: delivery is at-least-once and every step is idempotent
(tables by source offset, PostgreSQL and ClickHouse by event id, Redis by absolute values).
Invalid events go to the dead-letter topic with the reason; processing continues.

This module is the Faust shell of the pass: the gap guard, decoding, the progress marks and
the status. Claiming in PostgreSQL, counting and writing the other stores, with refused
footprints dead-lettered alone, is ``streams/pipeline/footprints.py``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import redis.asyncio as aioredis
from faust.types import EventT, StreamT

from footprint import heap
from footprint.keys import status_key
from footprint.settings import get_settings
from footprint.timepolicy import TimePolicy, is_backfill
from footprint.wire import AnyFootprint, unpack
from streams.app import app
from streams.deadletter import Bad, dead_letter, decode_many
from streams.gaps import GapGuard, StallWatch
from streams.marks import applied, last_events, mark
from streams.pipeline import passes
from streams.pipeline.footprints import FootprintPass, Pair, packed
from streams.progress import after_write, before_write
from streams.shutdown import WorkerStopping, in_flight
from streams.sinks import build_stores
from streams.status import HEARTBEAT_TTL, status
from streams.tables import PROGRESS, SITE_VISITS, VISITS
from streams.topics import dead_letter_topic, footprints_topic

__all__ = ["count_and_store"]

log = logging.getLogger(__name__)
_settings = get_settings()


def _mark(events: Sequence[EventT], update: Callable[..., dict[str, int]]) -> None:
    mark(PROGRESS, events, update)


def _applied(partitions: Iterable[int]) -> dict[int, int]:
    """The last written offset of each partition, as far as PROGRESS knows."""
    return applied(PROGRESS, partitions)


_topic_name = footprints_topic.get_topic_name()
guard = GapGuard(app, _topic_name)
watch = StallWatch(app, _topic_name)


async def process(events: Sequence[EventT], footprint_pass: FootprintPass) -> None:
    """One pass: dead-letter the invalid, claim in the record, count, write the other stores."""
    written = _applied({ev.message.partition for ev in events})
    events = await guard.contiguous(events, written)
    if not events:
        return
    decoded, bad = decode_many(events, unpack, "footprint")
    good = complete(decoded, bad)
    done = _done(events, written)
    for event, reason, item in bad:
        if id(event) not in done:
            await dead_letter(dead_letter_topic, event, reason, item)
    todo = _todo(good, done)

    # The in-flight mark must be durable before any store sees the batch.
    _mark(events, before_write)
    await app.producer.flush()

    # The record (PostgreSQL) decides which copy of each event is the one that counts.
    canonical = await footprint_pass.run(todo)
    # The batch's counts must be in their changelogs before the mark that says it is applied:
    # records of different changelog topics are not acknowledged in the order they were sent
    # (one may be retried while a leader moves), and a replay skips what the mark calls done.
    await app.producer.flush()
    _mark(events, after_write)

    status.processed += len(good) + len(bad)
    status.stored += len(canonical)
    status.duplicates += len(todo) - len(canonical)
    status.batches += 1
    status.last_batch_at = time.time()
    for event in last_events(events).values():  # a partition's events are in offset order
        tp = f"{event.message.topic}:{event.message.partition}"
        status.positions[tp] = max(status.positions.get(tp, -1), event.message.offset)


def _done(events: Sequence[EventT], written: Mapping[int, int]) -> set[int]:
    """The ``id`` of each event every store has already (a replay after a crash or a takeover):
    at or below its partition's ``applied`` mark (``written``, from ``_applied``)."""
    return {id(ev) for ev in events if ev.message.offset <= written.get(ev.message.partition, -1)}


def _todo(good: Sequence[tuple[EventT, AnyFootprint]], done: set[int]) -> list[Pair]:
    """The footprints to write: not done, and each copy of an event once.

    A copy is an event at one offset: a pack may repeat an event, and a record may come twice
    in one batch (read again around a seek), with the same footprints. The copies of an event
    at other offsets are told apart by the record. A message's footprints are next to each
    other in ``good``.
    """
    todo: list[Pair] = []
    read: set[tuple[int, int]] = set()  # (partition, offset) of the messages taken so far
    last: EventT | None = None
    skip = False
    seen: set[Any] | None = None  # the event ids of the current message, from its second on
    for ev, fp in good:
        if ev is not last:
            last, seen = ev, None
            where = (ev.message.partition, ev.message.offset)
            skip = id(ev) in done or where in read
            read.add(where)
            if not skip:
                todo.append((ev, fp))
            continue
        if skip:
            continue
        if seen is None:
            seen = {todo[-1][1].event_id}
        if fp.event_id not in seen:
            seen.add(fp.event_id)
            todo.append((ev, fp))
    return todo


def complete(
    good: Sequence[tuple[EventT, AnyFootprint]], bad: list[Bad], policy: TimePolicy | None = None
) -> list[tuple[EventT, AnyFootprint]]:
    """Give footprints without an id or a time those of the message they came in, and hold
    every footprint's time to the event-time policy, against when its message was sent.

    A footprint that cannot be completed or is dated outside the policy goes to ``bad`` with the
    reason; in a pack, alone, not with its neighbours. Messages with the backfill header are
    held to the hard bounds only (checked when decoded).
    """
    policy = policy or _settings.time_policy
    out: list[tuple[EventT, AnyFootprint]] = []
    last: EventT | None = None
    index = 0
    lo, hi = -math.inf, math.inf
    for ev, fp in good:
        msg = ev.message
        if ev is last:
            index += 1  # position in its pack
        else:
            index, last = 0, ev
            lo, hi = (
                (-math.inf, math.inf) if is_backfill(msg.headers) else policy.bounds(msg.timestamp)
            )
        reason = None
        if not fp.is_complete:
            try:
                fp = fp.complete(
                    timestamp=msg.timestamp,
                    topic=msg.topic,
                    partition=msg.partition,
                    offset=msg.offset,
                    index=index,
                )
            except ValueError as e:
                reason = str(e)
        if reason is None:
            t = fp.timestamp
            if lo <= t <= hi:
                out.append((ev, fp))
                continue
            assert fp.footprint_time is not None
            sent = datetime.fromtimestamp(msg.timestamp, UTC)
            why = policy.violation(fp.footprint_time, sent) or "outside the accepted times"
            reason = f"footprint_time: {why}"
        # In a pack only this footprint goes to the dead letters, not its neighbours.
        in_pack = packed(ev)
        where = f"item {index}: " if in_pack else ""
        bad.append((ev, f"invalid footprint: {where}{reason}", fp.to_bytes() if in_pack else None))
    return out


@app.agent(footprints_topic)
async def count_and_store(stream: StreamT) -> None:
    """Consume footprints in batches."""
    heap.hold_batches()
    await publish_status()  # alive from the start, not from the timer's first tick
    stores = build_stores(_settings)
    footprint_pass = FootprintPass(
        stores, partial(dead_letter, dead_letter_topic), VISITS, SITE_VISITS, stop=app
    )
    try:
        # take_ready is on the app's Stream class (streams/batching.py), not on StreamT.
        async for events in stream.take_ready(  # type: ignore[attr-defined]
            _settings.batch_size, _settings.batch_seconds, max_bytes=_settings.batch_max_bytes
        ):
            began = time.monotonic()
            watch.pass_started()
            try:
                with in_flight(events):
                    for run in passes(events, _settings.batch_max_bytes):
                        await process(run, footprint_pass)
            finally:
                watch.pass_ended({ev.message.partition for ev in events}, time.monotonic() - began)
    except WorkerStopping:
        pass  # the batch is held (streams/shutdown.py); Faust stops the agent next
    finally:
        await stores.close()


@app.timer(5.0)
async def restart_stalled_partitions() -> None:
    """Restart the fetch of a partition that has records waiting but delivers none."""
    await watch.check_assigned(_applied)


@app.timer(2.0)
async def heartbeat() -> None:
    """Publish this worker's status to Redis for the API."""
    await publish_status()


_status_client: aioredis.Redis | None = None


async def publish_status() -> None:
    """One heartbeat: this worker's status in Redis, for ``/api/stream/status``."""
    global _status_client
    url = _settings.redis_url
    if not url:
        return
    if _status_client is None:  # one client (and its pooled connection) for every heartbeat
        _status_client = aioredis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        await _status_client.set(status_key(status.worker_id), status.to_json(), ex=HEARTBEAT_TTL)
    except Exception as e:  # the status must never stop the worker
        log.debug("heartbeat failed: %s", e)
