"""In-memory stores behind the same contracts, for unit tests of the passes (``streams/pipeline``).

Each keeps what it was given as the real store would (one footprint per event id, one inbox row
per event and recipient) and can be told to fail as the real ones do: ``fail(n)`` makes the next
``n`` writes a ``StoreUnavailable``; ``refuse(id, …)`` makes every write holding one of those
event ids a ``StoreRefused`` that stores nothing, as a PostgreSQL transaction would.

    record = MemorySink("postgres")
    record.fail(2)                    # down for two attempts, then back
    record.refuse(bad_id, reason="value too long")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from schemas.community import CommunityEvent
from streams.sinks.base import Batch, Claim, Delivery, StoreRefused, StoreUnavailable

__all__ = ["MemoryFanOut", "MemoryInbox", "MemorySink", "named_recipient"]


class _Faults:
    """Outages and refusals to come, and every write attempted."""

    name: str

    def __init__(self) -> None:
        self.attempts = 0
        self.opened = False
        self._outages = 0
        self._refused: dict[str, str] = {}

    def fail(self, times: int = 1) -> None:
        """Make the next ``times`` writes fail as an outage."""
        self._outages += times

    def refuse(self, *event_ids: UUID | str, reason: str = "cannot take it") -> None:
        """Refuse, with ``reason``, every write holding one of these events."""
        self._refused.update((str(i), reason) for i in event_ids)

    def _check(self, event_ids: Iterable[UUID | str | None]) -> None:
        self.attempts += 1
        if self._outages:
            self._outages -= 1
            raise StoreUnavailable(self.name, "down (in memory)")
        for i in event_ids:
            reason = self._refused.get(str(i))
            if reason is not None:
                raise StoreRefused(self.name, reason)
        self.opened = True  # a write opens the store, as the real ones connect on first use

    async def open(self) -> None:
        """Nothing to connect to."""
        self.opened = True

    async def close(self) -> None:
        """Nothing to release."""
        self.opened = False


class MemorySink(_Faults):
    """A footprint store: a ``Sink``, and a ``Claimer`` that keeps the first copy of each event."""

    def __init__(self, name: str = "memory", *, keeps_footprints: bool = True) -> None:
        super().__init__()
        self.name = name
        self.keeps_footprints = keeps_footprints
        self.batches: list[Batch] = []  # every batch written, as given
        self.claims: dict[UUID, tuple[int, int]] = {}  # event id: (partition, offset) stored

    async def write(self, batch: Batch) -> None:
        """Remember the batch."""
        self._check(fp.event_id for fp in batch.footprints)
        self.batches.append(batch)

    async def claim(self, batch: Batch) -> tuple[set[Claim], set[UUID]]:
        """Keep the first copy of each event; the copy that counts, and the ids new here."""
        self._check(fp.event_id for fp in batch.footprints)
        sources = batch.sources or [(-1, -1)] * len(batch.footprints)
        created: set[UUID] = set()
        for fp, source in zip(batch.footprints, sources, strict=True):
            assert fp.event_id is not None
            if fp.event_id not in self.claims:
                self.claims[fp.event_id] = source
                created.add(fp.event_id)
        claims: set[Claim] = set()
        for fp in batch.footprints:
            assert fp.event_id is not None
            claims.add((fp.event_id, *self.claims[fp.event_id]))
        return claims, created

    def event_ids(self) -> list[UUID]:
        """The event id of every footprint written, repeats included."""
        return [fp.event_id for b in self.batches for fp in b.footprints if fp.event_id]


def named_recipient(event: CommunityEvent) -> list[str]:
    """The user a follow or a penalty names (the real inbox also looks up posts and followers)."""
    user = getattr(event, "followed_id", None) or getattr(event, "user_id", None)
    return [user] if user and user != event.actor_id else []


class MemoryInbox(_Faults):
    """The notifications' record: one row per (event, recipient), numbered as they come."""

    def __init__(
        self,
        name: str = "memory-inbox",
        *,
        recipients: Callable[[CommunityEvent], Sequence[str]] = named_recipient,
        retention_days: float = 7.0,
    ) -> None:
        super().__init__()
        self.name = name
        self.recipients = recipients
        self.retention = timedelta(days=retention_days)
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}

    async def write(self, events: Sequence[CommunityEvent]) -> Delivery:
        """Add the rows not there yet; the batch's rows and every recipient's unread count."""
        self._check(e.event_id for e in events)
        for event in events:
            for user in self.recipients(event):
                key = (str(event.event_id), user)
                if key not in self.rows:
                    self.rows[key] = {
                        "id": len(self.rows) + 1,
                        "user": user,
                        "noti_type": event.type,
                        "payload": event.model_dump(mode="json"),
                        "is_read": False,
                        "created_time": datetime.now(UTC).isoformat(),
                    }
        ids = {str(e.event_id) for e in events}
        rows = sorted((r for (e, _), r in self.rows.items() if e in ids), key=lambda r: r["id"])
        users = {r["user"] for r in rows}
        unread = {u: sum(r["user"] == u for r in self.rows.values()) for u in users}
        return Delivery(rows, unread)

    async def purge(self) -> int:
        """Drop the rows older than the retention."""
        oldest = datetime.now(UTC) - self.retention
        old = [
            key
            for key, row in self.rows.items()
            if datetime.fromisoformat(row["created_time"]) < oldest
        ]
        for key in old:
            del self.rows[key]
        return len(old)


class MemoryFanOut(_Faults):
    """The notifications' live side: every delivery written, in order."""

    def __init__(self, name: str = "memory-fan-out") -> None:
        super().__init__()
        self.name = name
        self.deliveries: list[tuple[dict[str, Any], int]] = []  # (row, recipient's unread)

    async def write(self, batch: Delivery) -> None:
        """Remember each row with its recipient's unread count."""
        self._check(row["payload"]["event_id"] for row in batch.rows)
        self.deliveries += [(row, batch.unread.get(row["user"], 0)) for row in batch.rows]
