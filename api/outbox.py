"""The transactional outbox: events are written with the action, published after it commits.

A community action calls ``enqueue`` inside its PostgreSQL transaction: the event lands in the
``outbox`` table (sql/postgres/003_outbox.sql) with the action's rows or not at all. The
``OutboxRelay`` (one task per API process, started by the lifespan) then publishes the rows and
deletes them in one transaction, after the broker has acknowledged them::

    async with pool.connection() as conn, conn.transaction():
        ...  # the action's own writes
        await enqueue(conn, "notifications", event)
    relay.wake()  # publish now rather than at the next poll

The relay is woken right after a commit in its own process, by ``LISTEN/NOTIFY`` for commits
in other processes, and by a periodic poll should both be missed. Several relays can share one
outbox: each claims rows with ``FOR UPDATE SKIP LOCKED`` and publishes a key's rows only when
no older row of that key is held by another relay, so one key's events reach the topic in order.
While the broker refuses them the rows stay and are retried with backoff. A relay that dies
after the broker's acknowledgement but before its delete publishes the rows again: the event id,
fixed when the row was written, lets the consumer drop the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from api.notify import NotificationPublisher, Record
from schemas.community import CommunityEvent

__all__ = [
    "CHANNEL",
    "Backlog",
    "OutboxRelay",
    "OutboxRow",
    "RelayStats",
    "backlog",
    "enqueue",
    "publishable",
]

log = logging.getLogger(__name__)

CHANNEL = "footprint_outbox"
_MIN_BACKOFF = 0.2
# Another relay holds an older row of one of our keys: look again soon, it is being published.
_HELD_BACK_WAIT = 0.05

_INSERT = "INSERT INTO outbox (event_id, topic, key, value, headers) VALUES (%s, %s, %s, %s, %s)"
# NOTIFY is transactional: other processes hear it at commit, and never for a rollback.
_NOTIFY = "SELECT pg_notify(%s, '')"
_CLAIM = (
    "SELECT id, event_id, topic, key, value, headers FROM outbox "
    "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
)
# Rows of our keys that we did not claim: locked by another relay, or newer than our batch.
_OTHERS = "SELECT key, min(id) FROM outbox WHERE key = ANY(%s) AND NOT id = ANY(%s) GROUP BY key"
_DELETE = "DELETE FROM outbox WHERE id = ANY(%s)"
_BACKLOG = (
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 FROM outbox"
)


class OutboxRow(NamedTuple):
    """One claimed outbox row."""

    id: int
    event_id: UUID
    topic: str
    key: bytes | None
    value: bytes
    headers: list[list[str]]


@dataclass(frozen=True)
class Backlog:
    """Events written but not yet acknowledged by the broker."""

    count: int
    oldest_age_seconds: float


@dataclass
class RelayStats:
    """What one relay has done, for /api/stream/status and /metrics."""

    published: int = 0
    failed_attempts: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_published_at: float | None = None


async def enqueue(
    conn: AsyncConnection,
    topic: str,
    event: CommunityEvent,
    headers: Sequence[tuple[str, str]] = (),
) -> None:
    """Write ``event`` to the outbox in the caller's transaction; it is published after commit."""
    await conn.execute(
        _INSERT,
        (
            event.event_id,
            topic,
            event.actor_id.encode(),  # the key: one actor's events stay in order
            event.to_bytes(),
            Jsonb([list(h) for h in headers]),
        ),
    )
    await conn.execute(_NOTIFY, (CHANNEL,))


async def backlog(conn: AsyncConnection) -> Backlog:
    """How many events wait in the outbox, and how long the oldest has waited."""
    row = await (await conn.execute(_BACKLOG)).fetchone()
    assert row is not None
    return Backlog(int(row[0]), round(float(row[1]), 3))


def publishable(claimed: Sequence[OutboxRow], others: Mapping[bytes, int]) -> list[OutboxRow]:
    """The claimed rows that may go now: per key, those older than any row held elsewhere.

    ``others`` maps a key to the smallest id of its rows this relay did not claim. A key whose
    older row another relay is publishing waits, or the topic would get that key out of order.
    """
    return [r for r in claimed if r.key is None or r.id < others.get(r.key, r.id + 1)]


class OutboxRelay:
    """Publishes committed outbox rows to the broker, in id order, once acknowledged deleted."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        publisher: NotificationPublisher,
        conninfo: str,
        *,
        batch_size: int = 500,
        poll_seconds: float = 5.0,
        retry_max_seconds: float = 10.0,
    ) -> None:
        self.pool = pool
        self.publisher = publisher
        self.conninfo = conninfo
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.retry_max_seconds = retry_max_seconds
        self.stats = RelayStats()
        self.last_backlog: Backlog | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def topic(self) -> str:
        """The notifications topic the community actions write to."""
        return self.publisher.topic

    async def add(self, conn: AsyncConnection, event: CommunityEvent) -> None:
        """``enqueue`` a community event for the notifications topic."""
        await enqueue(conn, self.topic, event)

    def wake(self) -> None:
        """Publish now: call right after a transaction that enqueued has committed."""
        self._wake.set()

    async def start(self) -> None:
        """Start the relay loop and its LISTEN connection."""
        self._tasks = [
            asyncio.create_task(self._run(), name="outbox-relay"),
            asyncio.create_task(self._listen(), name="outbox-listen"),
        ]

    async def stop(self) -> None:
        """Stop both tasks; unpublished rows stay in the outbox for the next relay."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def relay_once(self) -> tuple[int, int]:
        """One pass: claim, publish, delete. Returns (published, held back for another relay).

        Raises ``PublishError`` (the rows stay) when the broker does not acknowledge them.
        """
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(_CLAIM, (self.batch_size,))
            claimed = [OutboxRow(*r) for r in await cur.fetchall()]
            if not claimed:
                return 0, 0
            keys = list({r.key for r in claimed if r.key is not None})
            cur = await conn.execute(_OTHERS, (keys, [r.id for r in claimed]))
            ready = publishable(claimed, {bytes(k): i for k, i in await cur.fetchall()})
            if not ready:
                return 0, len(claimed)
            await self.publisher.publish_records(
                [
                    Record(r.topic, r.key, r.value, [(k, v.encode()) for k, v in r.headers])
                    for r in ready
                ]
            )
            # Deleted in the claim's transaction, after the acknowledgement: a crash before the
            # commit leaves the rows for a second publish, never loses one.
            await conn.execute(_DELETE, ([r.id for r in ready],))
        self.stats.published += len(ready)
        self.stats.last_published_at = time.time()
        return len(ready), len(claimed) - len(ready)

    async def refresh_backlog(self) -> Backlog:
        """Read the backlog now (kept for the metrics collector, which cannot await)."""
        async with self.pool.connection(timeout=5) as conn:
            self.last_backlog = await backlog(conn)
        return self.last_backlog

    async def _run(self) -> None:
        backoff = _MIN_BACKOFF
        while True:
            self._wake.clear()
            try:
                published, held_back = await self.relay_once()
            except Exception as e:
                # The broker (or PostgreSQL) is away: keep the rows and try again later. New
                # commits do not cut the pause short; they would only hammer a dead broker.
                self.stats.failed_attempts += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                self.stats.last_error_at = time.time()
                log.warning("outbox relay failed, retrying in %.1fs: %s", backoff, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.retry_max_seconds)
                continue
            backoff = _MIN_BACKOFF
            if published == self.batch_size:
                continue  # a full batch: more may be waiting
            timeout = _HELD_BACK_WAIT if held_back else self.poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _listen(self) -> None:
        """Wake the relay on every NOTIFY from another process's commit."""
        backoff = _MIN_BACKOFF
        while True:
            try:
                async with await AsyncConnection.connect(
                    self.conninfo, autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    backoff = _MIN_BACKOFF
                    self.wake()  # commits made while we were not listening
                    async for _ in conn.notifies():
                        self.wake()
            except Exception as e:
                # The poll keeps the relay going meanwhile.
                log.warning("outbox LISTEN lost, reconnecting in %.1fs: %s", backoff, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.retry_max_seconds)
