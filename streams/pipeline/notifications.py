"""The notification pass's store steps: the inbox stores a batch, then the fan-out delivers it.

``NotificationPass.run`` takes a batch's valid community events, each with its Faust event.
The inbox (the record) stores one row per recipient and answers the rows and unread counts;
the fan-out then writes those rows to each recipient's recent list and live channel. An outage
of either is retried until the store is back (``streams/retry.py``): nothing is dropped. A
batch a store refuses is split until the refused events are alone (``streams/isolate.py``);
each is dead-lettered with the store's reason, and the others are stored and delivered. An
event whose rows the inbox stored but whose delivery the fan-out refused is dead-lettered too:
replayed, its rows are delivered again (the inbox creates none twice).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from faust.types import EventT

from schemas.community import CommunityEvent
from streams.isolate import isolate
from streams.metrics import timed
from streams.pipeline import DeadLetter
from streams.retry import retry_forever
from streams.shutdown import Stoppable
from streams.sinks import Delivery, NotificationStores, StoreRefused
from streams.status import status

__all__ = ["NotificationPass"]

log = logging.getLogger(__name__)

Pair = tuple[EventT, CommunityEvent]


@dataclass
class NotificationPass:
    """The inbox and fan-out, and where refused events go."""

    stores: NotificationStores
    dead_letter: DeadLetter
    # The Faust app: a retry's backoff ends when the worker stops (streams/shutdown.py).
    stop: Stoppable | None = None

    async def run(self, good: Sequence[Pair]) -> Delivery:
        """Store the batch, then fan it out; what was delivered (the rows of every event that
        neither store refused)."""
        inbox, fan_out = self.stores.inbox, self.stores.fan_out
        stored = await isolate(
            good,
            lambda chunk: retry_forever(
                inbox.name,
                lambda: timed(inbox.name, inbox.write([e for _, e in chunk])),
                stop=self.stop,
            ),
        )
        for (event, _), e in stored.refused:
            await self.refuse(inbox.name, event, e)
        whole = Delivery()
        for part in stored.results:
            whole.rows += part.rows
            whole.unread.update(part.unread)  # a later part's counts include the earlier rows
        sent = await isolate(
            whole.rows,
            lambda rows: retry_forever(
                fan_out.name,
                lambda: timed(fan_out.name, fan_out.write(whole.part(rows))),
                stop=self.stop,
            ),
        )
        events = {str(e.event_id): event for event, e in good}
        refused = {str(row["payload"]["event_id"]): e for row, e in sent.refused}
        for event_id, e in refused.items():
            await self.refuse(fan_out.name, events[event_id], e)
        status.notifications += len(whole.rows)  # rows created, delivered live or not
        return whole.part([r for r in whole.rows if str(r["payload"]["event_id"]) not in refused])

    async def refuse(self, store: str, event: EventT, e: StoreRefused) -> None:
        """Dead-letter one event a store refused, with the store's reason."""
        log.warning(
            "dead-lettering community event at offset %s: %s", event.message.offset, e.reason
        )
        await self.dead_letter(event, e.reason, None)
        status.failed(store, "refused")
