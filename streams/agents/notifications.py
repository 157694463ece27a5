"""The notifications agent: community events in, one inbox row per recipient, live fan-out.

Batches, not one commit per message: a pass stores every event of the batch in one transaction,
then publishes the deliveries; offsets are acknowledged after both. Invalid or unknown events
go to the notifications dead-letter topic with the reason. Each partition is read in order:
the last offset handled is recorded per partition (``NOTIFY_PROGRESS``) and a batch that skips
past the next one is cut and the consumer sought back (``GapGuard``), as for footprints: seen
with Faust on Apache Kafka as on Tansu after worker restarts.

Storing in the PostgreSQL inbox and fanning out to Redis, with refused events dead-lettered
alone with the store's reason, is ``streams/pipeline/notifications.py``; this module is the
Faust shell around it.
"""

from __future__ import annotations

import logging
import time
from functools import partial

from faust.types import EventT, StreamT

from footprint.settings import get_settings
from schemas.community import parse_event
from streams.app import app
from streams.deadletter import dead_letter, decode
from streams.gaps import GapGuard, StallWatch
from streams.marks import applied, mark
from streams.pipeline.notifications import NotificationPass
from streams.progress import after_write
from streams.shutdown import WorkerStopping, in_flight
from streams.sinks import build_notification_stores
from streams.status import status
from streams.tables import NOTIFY_PROGRESS
from streams.topics import notifications_dead_letter_topic, notifications_topic

__all__ = ["notify", "purge_old_notifications"]

log = logging.getLogger(__name__)
_settings = get_settings()


_topic_name = notifications_topic.get_topic_name()
guard = GapGuard(app, _topic_name)
watch = StallWatch(app, _topic_name)


async def process(events: list[EventT], notification_pass: NotificationPass) -> None:
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
        await notification_pass.run(good)
    mark(NOTIFY_PROGRESS, events, after_write)
    status.notification_events += len(events)


@app.agent(notifications_topic)
async def notify(stream: StreamT) -> None:
    """Consume community events in batches."""
    stores = build_notification_stores(_settings)
    notification_pass = NotificationPass(
        stores, partial(dead_letter, notifications_dead_letter_topic), stop=app
    )
    try:
        # A pass starts when its first event arrives (streams/batching.py).
        async for events in stream.take_ready(  # type: ignore[attr-defined]
            _settings.notification_batch_size, linger=_settings.notification_batch_seconds
        ):
            began = time.monotonic()
            watch.pass_started()
            try:
                with in_flight(events):
                    await process(events, notification_pass)
            finally:
                watch.pass_ended({ev.message.partition for ev in events}, time.monotonic() - began)
    except WorkerStopping:
        pass  # the batch is held (streams/shutdown.py); Faust stops the agent next
    finally:
        await stores.close()


@app.timer(5.0)
async def restart_stalled_notification_partitions() -> None:
    """Restart the fetch of a notifications partition that has records waiting but delivers none."""
    await watch.check_assigned(lambda partitions: applied(NOTIFY_PROGRESS, partitions))


@app.timer(3600.0, on_leader=True)
async def purge_old_notifications() -> None:
    """Delete notifications past the retention (``FOOTPRINT_NOTIFICATION_RETENTION_DAYS``)."""
    stores = build_notification_stores(_settings)
    try:
        removed = await stores.inbox.purge()
        if removed:
            log.info(
                "purged %d notifications older than %s days",
                removed,
                _settings.notification_retention_days,
            )
    except Exception as e:  # the next run retries
        status.error(f"purge: {e}")
    finally:
        await stores.close()
