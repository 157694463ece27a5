"""Keep each partition's footprints contiguous: seek back when the consumer skips offsets.

See ``streams.progress`` for why a jump past ``applied + 1`` can happen and why the batch is
cut there. The guard seeks the consumer back to the first missing offset and drops what came
after it; the dropped events are read again after the seek. A jump is taken as real only when
the missing records no longer exist (the topic's retention removed them) or when several seeks,
seconds apart, each came back past the same offset.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from faust.types import TP, AppT, EventT

from streams.progress import cut_at_gaps
from streams.status import status

__all__ = ["GapGuard", "StallWatch"]

log = logging.getLogger(__name__)


@dataclass
class _Rewind:
    offset: int
    at: float
    attempts: int


@dataclass
class GapGuard:
    """Per-partition rewinds of one topic's consumer."""

    app: AppT
    topic: str
    retry_after: float = 2.0  # a seek under way is not repeated sooner than this
    max_attempts: int = 30  # a minute of seeks, for records that no longer arrive
    _rewinds: dict[int, _Rewind] = field(default_factory=dict)

    async def contiguous(
        self, events: Sequence[EventT], applied: Mapping[int, int]
    ) -> list[EventT]:
        """The events that continue their partition's written offsets, in order.

        A partition nothing was ever written from starts at its earliest offset: a worker that
        takes over a partition with no committed offset can be started at its end (seen after
        a takeover), which would skip everything before it unnoticed.
        """
        for partition, rewind in list(self._rewinds.items()):
            if applied.get(partition, -1) >= rewind.offset:
                del self._rewinds[partition]  # the missing offsets were read and written
        pairs = [(ev.message.partition, ev.message.offset) for ev in events]
        unknown = sorted({p for p, _ in pairs if applied.get(p, -1) < 0})
        if unknown:
            tps = [TP(self.topic, p) for p in unknown]
            earliest = await self.app.consumer.earliest_offsets(*tps)
            applied = {**applied, **{tp.partition: earliest.get(tp, 0) - 1 for tp in tps}}
        accepted: dict[int, int] = {}
        while True:
            keep, seek = cut_at_gaps(pairs, applied, accepted)
            taken = {}
            for p, o in seek.items():
                arrived = min(off for part, off in pairs if part == p and off > o)
                if await self._rewind(p, o, arrived):
                    taken[p] = o
            if not taken:
                return [events[i] for i in keep]
            accepted.update(taken)

    def _committed(self, tp: TP) -> int | None:
        # Faust's own record of the group's committed offset, for the log line only.
        committed = getattr(self.app.consumer, "_committed_offset", None)
        return committed.get(tp) if isinstance(committed, Mapping) else None

    async def _rewind(self, partition: int, offset: int, arrived: int) -> bool:
        """Seek ``partition`` back to ``offset``; True if the jump is to be taken instead."""
        tp = TP(self.topic, partition)
        if tp not in self.app.consumer.assignment():
            return False  # revoked while its records were in flight: the new owner reads them
        earliest = (await self.app.consumer.earliest_offsets(tp)).get(tp, 0)
        if offset < earliest:
            log.warning(
                "%s[%d]: offsets %d..%d were removed by retention before they were read",
                self.topic, partition, offset, earliest - 1,
            )  # fmt: skip
            self._rewinds.pop(partition, None)
            return True
        now = time.monotonic()
        previous = self._rewinds.get(partition)
        if previous and previous.offset == offset:
            if now - previous.at < self.retry_after:
                return False  # the seek is under way; drop what still arrives from before it
            if previous.attempts >= self.max_attempts:
                log.error(
                    "%s[%d]: offset %d never arrives after %d seeks; going on without it",
                    self.topic, partition, offset, previous.attempts,
                )  # fmt: skip
                del self._rewinds[partition]
                status.error(f"{self.topic}[{partition}]: offset {offset} skipped")
                return True
            attempts = previous.attempts + 1
        else:
            attempts = 1
        # Later seeks are expected while records fetched before the first one drain.
        log.log(
            logging.WARNING if attempts == 1 else logging.INFO,
            "%s[%d]: offset %d arrived but %d is the next to write; seeking back (seek %d; "
            "group committed offset %s)",
            self.topic, partition, arrived, offset, attempts, self._committed(tp),
        )  # fmt: skip
        # Faust's seek_wait runs in the consumer's thread; Consumer.seek would change the
        # fetcher's state from this one, racing its fetch (seen: KeyError in aiokafka's
        # fetched_records, which stopped the worker).
        await self.app.consumer.seek_wait({tp: offset})
        self._rewinds[partition] = _Rewind(offset, now, attempts)
        status.rewinds += 1
        return False


@dataclass
class StallWatch:
    """Notice a partition that has records waiting but delivers none, and restart its fetch.

    Faust can leave a partition it was just given unfetched after a rebalance (seen when a
    worker takes over the partitions of one that was killed): the worker looks healthy and idle
    while that partition's backlog grows. Every check, a partition that holds records past its
    next unwritten offset, yet has delivered nothing for ``after`` seconds while the agent was
    free to take it, is resumed and sought to that offset.
    """

    app: AppT
    topic: str
    after: float = 10.0
    _busy: bool = False
    _delivered: dict[int, float] = field(default_factory=dict)
    _assigned: frozenset[TP] = frozenset()

    def pass_started(self) -> None:
        self._busy = True

    def pass_ended(self, partitions: set[int], took: float) -> None:
        """A pass ended; ``partitions`` delivered events to it. A long pass (a store outage)
        held every partition back, so none counts as quiet from before it."""
        self._busy = False
        now = time.monotonic()
        if took > self.after / 2:
            partitions = partitions | set(self._delivered)
        for partition in partitions:
            self._delivered[partition] = now

    async def check_assigned(self, applied_of: Callable[[list[int]], Mapping[int, int]]) -> None:
        """``check`` the partitions assigned now (from a timer): a failure is logged, never
        raised, because the watch must never stop the worker."""
        try:
            assigned = [
                tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.topic
            ]
            await self.check(applied_of(assigned))
        except Exception as e:
            log.warning("%s: stall check failed: %s: %s", self.topic, type(e).__name__, e)

    async def check(self, applied: Mapping[int, int]) -> list[int]:
        """Restart the fetch of every stalled partition; return their numbers."""
        app = self.app
        if self._busy or app.rebalancing or not getattr(app.consumer, "flow_active", True):
            return []
        assigned = frozenset(tp for tp in app.consumer.assignment() if tp.topic == self.topic)
        now = time.monotonic()
        if assigned != self._assigned:  # a new assignment: every partition starts afresh
            self._assigned = assigned
            self._delivered = {tp.partition: now for tp in assigned}
            return []
        quiet = [tp for tp in assigned if now - self._delivered.get(tp.partition, now) > self.after]
        if not quiet:
            return []
        ends = await app.consumer.highwaters(*quiet)
        unknown = [tp for tp in quiet if applied.get(tp.partition, -1) < 0]
        earliest = await app.consumer.earliest_offsets(*unknown) if unknown else {}
        stalled = []
        for tp in quiet:
            nxt = applied.get(tp.partition, -1) + 1 or earliest.get(tp, 0)
            end = ends.get(tp) or 0
            if end <= nxt:
                continue
            log.warning(
                "%s[%d]: %d records wait from offset %d but none arrived for %.0fs; "
                "resuming the partition and seeking to that offset",
                self.topic, tp.partition, end - nxt, nxt, now - self._delivered[tp.partition],
            )  # fmt: skip
            app.consumer.resume_partitions({tp})
            await app.consumer.seek_wait({tp: nxt})  # in the consumer's thread (see above)
            self._delivered[tp.partition] = now
            status.rewinds += 1
            stalled.append(tp.partition)
        return stalled
