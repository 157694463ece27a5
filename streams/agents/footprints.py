"""The footprint agent: validate, count in window tables, store in every sink, per batch.

Each pass takes up to ``FOOTPRINT_BATCH_SIZE`` events or waits ``FOOTPRINT_BATCH_SECONDS``,
whichever comes first. Offsets are acknowledged only after the pass returns, that is after the
sinks have written the batch: delivery is at-least-once and every step is idempotent
(tables by source offset, PostgreSQL and ClickHouse by event id, Redis by absolute values).
Invalid events go to the dead-letter topic with the reason; processing continues.

A store that refuses a batch (``StoreRefused``) has it split until the refused footprints are
alone (``streams/isolate.py``); those are dead-lettered with the store's reason, the rest is
stored. PostgreSQL, the system of record, is written first and decides what exists: a footprint
it refuses is stored and counted nowhere; one ClickHouse refuses stays in PostgreSQL and in the
window counts (the dead letter names ClickHouse).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from uuid import UUID

import redis.asyncio as aioredis
from faust.types import EventT, StreamT

from footprint.keys import status_key
from footprint.schema import Footprint, unpack
from footprint.settings import get_settings
from footprint.timepolicy import TimePolicy, is_backfill
from footprint.windows import WINDOWS
from streams.app import app
from streams.counting import DERIVED, Item, apply, parts, plan, split_link_key
from streams.deadletter import Bad, dead_letter, decode_many
from streams.gaps import GapGuard, StallWatch
from streams.isolate import isolate, isolate_batch
from streams.marks import applied, event_context, mark
from streams.metrics import timed, timed_write
from streams.progress import after_write, before_write, classify
from streams.retry import retry_forever
from streams.shutdown import WorkerStopping, in_flight
from streams.sinks import Batch, Claim, Claimer, Sink, Stores, WindowCount, build_stores
from streams.sinks.base import StoreRefused
from streams.status import HEARTBEAT_TTL, status
from streams.tables import PROGRESS, SITE_VISITS, VISITS
from streams.topics import dead_letter_topic, footprints_topic

__all__ = ["count_and_store"]

log = logging.getLogger(__name__)
_settings = get_settings()


def count(
    good: list[tuple[EventT, Footprint]],
) -> tuple[list[WindowCount], dict[tuple[str, int], set[str]]]:
    """Apply the batch to every window table; return the resulting absolute counts."""
    items = [
        Item(
            ev.message.partition,
            ev.message.offset,
            fp.link,
            fp.timestamp,
            fp.visitor_id,
            ev,
            fp.is_bot,
        )
        for ev, fp in good
    ]
    p = plan(items)
    counts: list[WindowCount] = []
    # WINDOWS lists a derived window after its parts: their tables hold this batch already.
    for window in WINDOWS:
        base = DERIVED.get(window)
        for tables, group, is_site in (
            (VISITS, p.links[window], False),
            (SITE_VISITS, p.site[window], True),
        ):
            for key, kp in group.items():
                name, (start, end) = key
                if base is not None:
                    table = tables[base]
                    value = sum(_count(table.get((name, r))) for r in parts(window, key[1]))
                else:
                    table = tables[window]
                    current = table.get(key)
                    new = apply(current, kp.offsets)
                    if new is not None:
                        with event_context(kp.ref):
                            table[key] = new
                        current = new
                    value = _count(current)
                counts.append(
                    WindowCount(
                        window,
                        start,
                        end,
                        value,
                        link=None if is_site else split_link_key(name)[1],
                        partition=kp.partition,
                        bots=is_site and name.endswith(":bots"),
                    )
                )
    return counts, p.visitors


def _count(value: list[int] | None) -> int:
    return value[0] if value else 0


async def write_with_retry(sink: Sink, batch: Batch) -> None:
    """Write until the sink accepts the batch: consumption waits rather than dropping data.

    Raises ``StoreRefused`` when the sink refuses the data itself.
    """
    await retry_forever(sink.name, lambda: timed_write(sink, batch), stop=app)


Pair = tuple[EventT, Footprint]


async def claim(record: Claimer, todo: Sequence[Pair]) -> tuple[set[Claim], set[UUID]]:
    """Claim ``todo`` in the record; dead-letter the footprints it refuses (claimed by none)."""
    found = await isolate(
        todo,
        lambda chunk: retry_forever(
            record.name,
            lambda: timed(record.name, record.claim(_batch(chunk))),
            stop=app,
        ),
    )
    await refuse(record.name, found.refused)
    claims: set[Claim] = set()
    created: set[UUID] = set()
    for c, n in found.results:
        claims |= c
        created |= n
    return claims, created


async def write_isolating(sink: Sink, batch: Batch, pairs: Sequence[Pair]) -> None:
    """Write the batch to a sink; dead-letter the footprints it refuses, store the others.

    ``pairs`` are the batch's (event, footprint), aligned with ``batch.footprints``.
    """
    if not sink.keeps_footprints:
        try:
            await write_with_retry(sink, batch)
        except StoreRefused as e:
            # Redis's values come from the tables: no footprint is to blame, and the rest of
            # the (non-transactional) pipeline has run. The next batch rewrites those values.
            status.failed(sink.name, "refused")
            status.error(e.reason)
            log.error("%s (a live count of this batch; its footprints are stored)", e.reason)
        return
    refused = await isolate_batch(batch, lambda part: write_with_retry(sink, part))
    await refuse(sink.name, [(pairs[i], e) for i, e in refused])


async def refuse(store: str, refused: Sequence[tuple[Pair, StoreRefused]]) -> None:
    """Dead-letter each footprint a store refused, alone, with the store's reason."""
    for (event, fp), e in refused:
        log.warning("dead-lettering footprint %s: %s", fp.event_id, e.reason)
        item = fp.to_bytes() if packed(event) else None  # a pack: this footprint alone
        await dead_letter(dead_letter_topic, event, e.reason, item)
        status.failed(store, "refused")


def _mark(events: Sequence[EventT], update: Callable[..., dict[str, int]]) -> None:
    mark(PROGRESS, events, update)


def _applied(partitions: Iterable[int]) -> dict[int, int]:
    """The last written offset of each partition, as far as PROGRESS knows."""
    return applied(PROGRESS, partitions)


_topic_name = footprints_topic.get_topic_name()
guard = GapGuard(app, _topic_name)
watch = StallWatch(app, _topic_name)


async def process(events: Sequence[EventT], stores: Stores) -> None:
    """One pass: dead-letter the invalid, claim in the record, count, write the other stores."""
    events = await guard.contiguous(events, _applied({ev.message.partition for ev in events}))
    if not events:
        return
    good, bad = decode_many(events, unpack, "footprint")
    good = complete(good, bad)
    states = {
        id(ev): classify(ev.message.offset, PROGRESS.get(str(ev.message.partition)))
        for ev in events
    }
    for event, reason, item in bad:
        if states[id(event)] != "done":
            await dead_letter(dead_letter_topic, event, reason, item)
    todo, seen = [], set()
    for ev, fp in good:
        copy = (fp.event_id, ev.message.partition, ev.message.offset)
        if states[id(ev)] != "done" and copy not in seen:  # a pack may repeat an event
            seen.add(copy)
            todo.append((ev, fp))

    # The in-flight mark must be durable before any store sees the batch.
    _mark(events, before_write)
    await app.producer.flush()

    # The record (PostgreSQL) decides which copy of each event is the one: a producer's retry
    # can put a second copy at another offset, and that copy must count nowhere.
    claims, created = await claim(stores.record, todo)
    canonical = [
        (ev, fp)
        for ev, fp in todo
        if (fp.event_id, ev.message.partition, ev.message.offset) in claims
    ]
    counts, visitors = count(canonical)
    batch = _batch(canonical)
    batch.counts, batch.visitors = counts, visitors
    # A copy that counts but was stored before this pass (a replay after a crash or a takeover)
    # may have reached ClickHouse too: ClickHouse checks those before inserting.
    batch.in_doubt = frozenset(
        fp.event_id for _, fp in canonical if fp.event_id and fp.event_id not in created
    )
    await asyncio.gather(*(write_isolating(sink, batch, canonical) for sink in stores.others))
    _mark(events, after_write)

    status.processed += len(good) + len(bad)
    status.stored += len(canonical)
    status.duplicates += len(todo) - len(canonical)
    status.batches += 1
    status.last_batch_at = time.time()
    for event in events:
        tp = f"{event.message.topic}:{event.message.partition}"
        status.positions[tp] = max(status.positions.get(tp, -1), event.message.offset)


def complete(
    good: list[tuple[EventT, Footprint]], bad: list[Bad], policy: TimePolicy | None = None
) -> list[tuple[EventT, Footprint]]:
    """Give footprints without an id or a time those of the message they came in, and hold
    every footprint's time to the event-time policy, against when its message was sent.

    A footprint that cannot be completed or is dated outside the policy goes to ``bad`` with the
    reason; in a pack, alone, not with its neighbours. Messages with the backfill header are
    held to the hard bounds only (checked when decoded).
    """
    policy = policy or _settings.time_policy
    out: list[tuple[EventT, Footprint]] = []
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


def packed(event: EventT) -> bool:
    """Whether the message is a pack (a JSON array): a dead letter then holds one item."""
    return isinstance(event.value, bytes) and event.value.lstrip()[:1] == b"["


def _batch(pairs: Sequence[tuple[EventT, Footprint]]) -> Batch:
    return Batch(
        footprints=[fp for _, fp in pairs],
        sources=[(ev.message.partition, ev.message.offset) for ev, _ in pairs],
    )


@app.agent(footprints_topic)
async def count_and_store(stream: StreamT) -> None:
    """Consume footprints in batches."""
    # A batch of packs allocates tens of thousands of objects: with CPython's default
    # thresholds the cyclic collector would run many times per batch over the whole heap
    # (Faust's included). Startup objects are frozen out of it, and it runs less often.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    await publish_status()  # alive from the start, not from the timer's first tick
    stores = build_stores(_settings)
    try:
        # take_events is on faust.Stream, not yet on the StreamT protocol.
        async for events in stream.take_events(  # type: ignore[attr-defined]
            _settings.batch_size, within=_settings.batch_seconds
        ):
            began = time.monotonic()
            watch.pass_started()
            try:
                with in_flight(events):
                    await process(events, stores)
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
