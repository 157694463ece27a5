"""The footprint pass's store steps: claim in the record, count, write the other stores.

``FootprintPass.run`` takes a batch's valid footprints still to write, each with its event:

1. The record (PostgreSQL, a ``Claimer``) stores them and says which copy of each event counts:
   a producer's retry can put a second copy at another offset, and that copy counts nowhere.
   A footprint the record refuses is stored and counted nowhere.
2. The copies that count are applied to the window tables (idempotent by source offset, so a
   replayed batch is not counted twice), giving absolute counts.
3. Every other store is written with those footprints and counts. One that keeps footprints
   (ClickHouse) has a refused batch split until the refused footprints are alone
   (``streams/isolate.py``); those stay in the record and the counts.

A refused footprint is dead-lettered alone with the refusing store's reason. An outage is
retried until the store is back (``streams/retry.py``): consumption waits, nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from faust.types import EventT

from footprint.keys import live_member
from footprint.windows import WINDOWS
from footprint.wire import AnyFootprint
from streams.counting import DERIVED, Item, apply, parts, plan, split_link_key
from streams.isolate import isolate, isolate_batch
from streams.marks import event_context
from streams.metrics import timed, timed_write
from streams.pipeline import DeadLetter
from streams.retry import retry_forever
from streams.shutdown import Stoppable
from streams.sinks import Batch, Claim, Sink, StoreRefused, Stores, WindowCount
from streams.status import status

__all__ = ["FootprintPass", "Pair", "make_batch", "packed"]

log = logging.getLogger(__name__)

Pair = tuple[EventT, AnyFootprint]
Visitors = dict[tuple[str, int], set[str]]  # visitor ids per (window, range start)


@dataclass
class FootprintPass:
    """The stores, the window tables (per window, Faust tables or dicts) and the dead letters."""

    stores: Stores
    dead_letter: DeadLetter
    visits: Mapping[str, Any]
    site_visits: Mapping[str, Any]
    # The Faust app: a retry's backoff ends when the worker stops (streams/shutdown.py).
    stop: Stoppable | None = None

    async def run(self, todo: Sequence[Pair]) -> list[Pair]:
        """Claim, count and write ``todo``; the pairs whose copy counts (stored and counted)."""
        claims, created = await self.claim(todo)
        canonical = [
            (ev, fp)
            for ev, fp in todo
            if (fp.event_id, ev.message.partition, ev.message.offset) in claims
        ]
        counts, visitors = self.count(canonical)
        batch = make_batch(canonical)
        batch.counts, batch.visitors = counts, visitors
        # A copy that counts but was stored before this pass (a replay after a crash or a
        # takeover) may have reached ClickHouse too: ClickHouse checks those before inserting.
        # The claims hold one copy per event, so when this pass created as many events as
        # count, it created every one of them (the usual case: no id to look up).
        batch.in_doubt = (
            frozenset()
            if len(created) == len(canonical)
            else frozenset(
                fp.event_id for _, fp in canonical if fp.event_id and fp.event_id not in created
            )
        )
        await asyncio.gather(
            *(self.write_isolating(sink, batch, canonical) for sink in self.stores.others)
        )
        return canonical

    async def claim(self, todo: Sequence[Pair]) -> tuple[set[Claim], set[UUID]]:
        """Claim ``todo`` in the record; dead-letter the footprints it refuses (claimed by none)."""
        record = self.stores.record
        found = await isolate(
            todo,
            lambda chunk: retry_forever(
                record.name,
                lambda: timed(record.name, record.claim(make_batch(chunk))),
                stop=self.stop,
            ),
        )
        await self.refuse(record.name, found.refused)
        claims: set[Claim] = set()
        created: set[UUID] = set()
        for c, n in found.results:
            claims |= c
            created |= n
        return claims, created

    def count(self, good: Sequence[Pair]) -> tuple[list[WindowCount], Visitors]:
        """Apply the footprints to every window table; return the resulting absolute counts."""
        items = [
            Item(
                ev.message.partition,
                ev.message.offset,
                live_member(fp.link, fp.name),
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
                (self.visits, p.links[window], False),
                (self.site_visits, p.site[window], True),
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
                            # A Faust table sends the write to the event's changelog partition.
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

    async def write_isolating(self, sink: Sink, batch: Batch, pairs: Sequence[Pair]) -> None:
        """Write the batch to a sink; dead-letter the footprints it refuses, store the others.

        ``pairs`` are the batch's (event, footprint), aligned with ``batch.footprints``.
        """
        if not sink.keeps_footprints:
            try:
                await self.write_with_retry(sink, batch)
            except StoreRefused as e:
                # Redis's values come from the tables: no footprint is to blame, and the rest of
                # the (non-transactional) pipeline has run. The next batch rewrites those values.
                status.failed(sink.name, "refused")
                status.error(e.reason)
                log.error("%s (a live count of this batch; its footprints are stored)", e.reason)
            return
        refused = await isolate_batch(batch, lambda part: self.write_with_retry(sink, part))
        await self.refuse(sink.name, [(pairs[i], e) for i, e in refused])

    async def write_with_retry(self, sink: Sink, batch: Batch) -> None:
        """Write until the sink accepts the batch: consumption waits rather than dropping data.

        Raises ``StoreRefused`` when the sink refuses the data itself.
        """
        await retry_forever(sink.name, lambda: timed_write(sink, batch), stop=self.stop)

    async def refuse(self, store: str, refused: Sequence[tuple[Pair, StoreRefused]]) -> None:
        """Dead-letter each footprint a store refused, alone, with the store's reason."""
        for (event, fp), e in refused:
            log.warning("dead-lettering footprint %s: %s", fp.event_id, e.reason)
            item = fp.to_bytes() if packed(event) else None  # a pack: this footprint alone
            await self.dead_letter(event, e.reason, item)
            status.failed(store, "refused")


def _count(value: list[int] | None) -> int:
    return value[0] if value else 0


def packed(event: EventT) -> bool:
    """Whether the message is a pack (a JSON array): a dead letter then holds one item."""
    return isinstance(event.value, bytes) and event.value.lstrip()[:1] == b"["


def make_batch(pairs: Sequence[Pair]) -> Batch:
    """The footprints of ``pairs`` with the (partition, offset) each was read from."""
    return Batch(
        footprints=[fp for _, fp in pairs],
        sources=[(ev.message.partition, ev.message.offset) for ev, _ in pairs],
    )
