"""The notifications agent: community events in, one inbox row per recipient, live fan-out.

Batches, not one commit per message: a pass stores every event of the batch in one transaction,
then publishes the deliveries; offsets are acknowledged after both. Invalid or unknown events
go to the notifications dead-letter topic with the reason. Each partition is read in order:
the last offset handled is recorded per partition (``NOTIFY_PROGRESS``) and a batch that skips
past the next one is cut and the consumer sought back (``GapGuard``), as for footprints: seen
with Faust on Apache Kafka as on Tansu after worker restarts.

A batch a store refuses (``StoreRefused``) is split until the refused events are alone
(``streams/isolate.py``); those go to the dead-letter topic with the store's reason and the
others are delivered. An event whose rows PostgreSQL stored but whose live delivery Redis
refused is dead-lettered too: replayed, its rows are re-published.
"""

from __future__ import annotations

import contextlib
import logging
import time

from faust.types import EventT, StreamT

from footprint.settings import get_settings
from schemas.community import CommunityEvent, parse_event
from streams.app import app
from streams.deadletter import dead_letter, decode
from streams.gaps import GapGuard, StallWatch
from streams.isolate import isolate
from streams.marks import applied, mark
from streams.notifications import NotificationStore
from streams.progress import after_write
from streams.retry import retry_forever
from streams.shutdown import WorkerStopping, in_flight
from streams.sinks.base import StoreRefused
from streams.status import status
from streams.tables import NOTIFY_PROGRESS
from streams.topics import notifications_dead_letter_topic, notifications_topic

__all__ = ["notify", "purge_old_notifications"]

log = logging.getLogger(__name__)
_settings = get_settings()


def _store() -> NotificationStore:
    return NotificationStore(
        _settings.require("postgres_url"),
        _settings.require("redis_url"),
        inbox_size=_settings.inbox_size,
        retention_days=_settings.notification_retention_days,
    )


async def deliver(store: NotificationStore, good: list[tuple[EventT, CommunityEvent]]) -> None:
    """Store a batch, then fan it out, retrying outages; dead-letter what a store refuses."""
    stored = await isolate(
        good,
        lambda chunk: retry_forever(
            "notifications-postgres", lambda: store.store([e for _, e in chunk]), stop=app
        ),
    )
    for (event, _), e in stored.refused:
        await refuse("notifications-postgres", event, e)
    rows = [row for part, _ in stored.results for row in part]
    unread: dict[str, int] = {}
    for _, counts in stored.results:
        unread.update(counts)  # a later part's counts include the earlier parts' rows
    sent = await isolate(
        rows,
        lambda chunk: retry_forever(
            "notifications-redis", lambda: store.fan_out(chunk, unread), stop=app
        ),
    )
    events = {str(e.event_id): event for event, e in good}
    refused = {str(row["payload"]["event_id"]): e for row, e in sent.refused}
    for event_id, e in refused.items():
        await refuse("notifications-redis", events[event_id], e)
    status.notifications += len(rows)


async def refuse(store: str, event: EventT, e: StoreRefused) -> None:
    """Dead-letter one event a store refused, with the store's reason."""
    log.warning("dead-lettering community event at offset %s: %s", event.message.offset, e.reason)
    await dead_letter(notifications_dead_letter_topic, event, e.reason)
    status.failed(store, "refused")


_topic_name = notifications_topic.get_topic_name()
guard = GapGuard(app, _topic_name)
watch = StallWatch(app, _topic_name)


async def process(events: list[EventT], store: NotificationStore) -> None:
    """One pass: the events that continue their partitions, dead letters, store, fan out."""
    events = await guard.contiguous(
        events, applied(NOTIFY_PROGRESS, {ev.message.partition for ev in events})
    )
    if not events:
        return
    good, bad = decode(events, parse_event, "community event")
    for event, reason, item in bad:
        await dead_letter(notifications_dead_letter_topic, event, reason, item)
    if good:
        await deliver(store, good)
    mark(NOTIFY_PROGRESS, events, after_write)
    status.notification_events += len(events)


@app.agent(notifications_topic)
async def notify(stream: StreamT) -> None:
    """Consume community events in batches."""
    store = _store()
    try:
        # take_events is on faust.Stream, not yet on the StreamT protocol.
        async for events in stream.take_events(  # type: ignore[attr-defined]
            _settings.batch_size, within=_settings.notification_batch_seconds
        ):
            began = time.monotonic()
            watch.pass_started()
            try:
                with in_flight(events):
                    await process(events, store)
            finally:
                watch.pass_ended({ev.message.partition for ev in events}, time.monotonic() - began)
    except WorkerStopping:
        pass  # the batch is held (streams/shutdown.py); Faust stops the agent next
    finally:
        with contextlib.suppress(Exception):
            await store.close()


@app.timer(5.0)
async def restart_stalled_notification_partitions() -> None:
    """Restart the fetch of a notifications partition that has records waiting but delivers none."""
    await watch.check_assigned(lambda partitions: applied(NOTIFY_PROGRESS, partitions))


@app.timer(3600.0, on_leader=True)
async def purge_old_notifications() -> None:
    """Delete notifications past the retention (``FOOTPRINT_NOTIFICATION_RETENTION_DAYS``)."""
    store = _store()
    try:
        removed = await store.purge()
        if removed:
            log.info(
                "purged %d notifications older than %s days",
                removed,
                _settings.notification_retention_days,
            )
    except Exception as e:  # the next run retries
        status.error(f"purge: {e}")
    finally:
        await store.close()
