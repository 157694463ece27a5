"""The notification stores: the PostgreSQL inbox (the record) and the Redis fan-out after it.

Two stores, not one, because they fail apart and a pass treats them apart, as the footprint
pass treats PostgreSQL and the stores after it: the inbox stores a batch of community events
and answers what to deliver (``Delivery``); the fan-out then writes that delivery to Redis. An
outage of one is retried without writing the other again, and each refusal names its store.
Both follow ``streams/sinks/base.py``: ``open`` connects (the first write does too), ``close``
releases, and a failure is ``StoreUnavailable`` or ``StoreRefused``, classified by the
footprint sinks' classifiers of the same servers (``streams/sinks/postgres.py``,
``streams/sinks/redis.py``).

* ``PostgresInbox``: recipients are resolved by SQL (``INSERT … SELECT … ON CONFLICT DO
  NOTHING``), so a post by an author with many followers is one statement. A replayed event
  creates no second row; its rows are delivered again, and clients drop what they have already
  seen by id. It also purges rows past the retention.
* ``RedisFanOut``: a bounded, expiring recent list per user, and the live deliveries on the
  channel every API process subscribes to (``api/hub.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg
import redis.asyncio as aioredis
from psycopg.types.json import Jsonb
from redis.exceptions import RedisError

from footprint.inbox import NOTIFICATION_COLUMNS, as_dict, deliveries, delivery
from footprint.keys import NOTIFICATIONS_CHANNEL, inbox_key
from schemas.community import CommunityEvent
from streams.sinks.base import Delivery, StoreRefused, StoreUnavailable
from streams.sinks.postgres import classify as postgres_failure
from streams.sinks.redis import classify as redis_failure

__all__ = ["FAN_OUT_CHUNK", "RECIPIENTS", "PostgresInbox", "RedisFanOut"]


# Who is notified of each event type: never the actor.
RECIPIENTS: dict[str, str] = {
    "create_post": (
        "SELECT follower_id FROM follows "
        "WHERE followee_id = %(actor_id)s AND follower_id <> %(actor_id)s"
    ),
    "create_parent_comment": (
        "SELECT author_id FROM posts WHERE id = %(post_id)s AND author_id <> %(actor_id)s"
    ),
    "create_child_comment": (
        "SELECT author_id FROM comments "
        "WHERE id = %(parent_comment_id)s AND author_id <> %(actor_id)s"
    ),
    "follow_user": "SELECT %(followed_id)s::text WHERE %(followed_id)s <> %(actor_id)s",
    "penalty_user": "SELECT %(user_id)s::text WHERE %(user_id)s <> %(actor_id)s",
}

_INSERT = (
    'INSERT INTO user_notifications (event_id, "user", noti_type, payload) '
    "SELECT %(event_id)s, r.uid, %(type)s, %(payload)s FROM ({recipients}) AS r(uid) "
    'ON CONFLICT (event_id, "user") DO NOTHING'
)
_ROWS = (
    f"SELECT {NOTIFICATION_COLUMNS} FROM user_notifications WHERE event_id = ANY(%s) ORDER BY id"
)
# The unread counts of everyone the batch notified, from the batch's event ids: known before
# the rows are read, so every statement of a write goes to the server in one round trip.
# Counted user by user (a subquery per user, on the unread index), not by one join the
# planner would run as a scan of every unread row.
_UNREAD = (
    'SELECT u."user", (SELECT count(*) FROM user_notifications n '
    'WHERE n."user" = u."user" AND NOT n.is_read) '
    'FROM (SELECT DISTINCT "user" FROM user_notifications WHERE event_id = ANY(%s)) AS u'
)
_PURGE = "DELETE FROM user_notifications WHERE created_time < now() - make_interval(secs => %s)"


class PostgresInbox:
    """``user_notifications`` rows, the truth the API's inbox reads."""

    name = "notifications-postgres"

    def __init__(self, url: str, *, retention_days: float = 7.0) -> None:
        self.url = url
        self.retention_seconds = retention_days * 86_400
        self._conn: psycopg.AsyncConnection | None = None

    async def open(self) -> None:
        """Connect (again, after an outage closed the connection)."""
        if self._conn is not None and not self._conn.closed:
            return
        try:
            # Autocommit: a write's statements form one implicit transaction (see write).
            self._conn = await psycopg.AsyncConnection.connect(
                self.url, connect_timeout=5, autocommit=True
            )
        except psycopg.Error as e:
            raise StoreUnavailable(self.name, f"cannot connect: {e}") from e

    async def write(self, events: Sequence[CommunityEvent]) -> Delivery:
        """Insert one row per (event, recipient) in one transaction; the batch's rows.

        In pipeline mode, one round trip for the batch: the inserts and both reads reach the
        server together, ended by one Sync, and PostgreSQL runs what comes before a Sync outside
        a transaction block as one implicit transaction: all of it commits, or none of it."""
        await self.open()
        conn = self._conn
        assert conn is not None
        by_type: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            payload = event.model_dump(mode="json")
            by_type.setdefault(event.type, []).append({**payload, "payload": Jsonb(payload)})
        event_ids = ([e.event_id for e in events],)
        try:
            async with (
                conn.cursor() as insert,
                conn.cursor() as read_rows,
                conn.cursor() as read_unread,
            ):
                async with conn.pipeline():
                    for event_type, params in by_type.items():
                        sql = _INSERT.format(recipients=RECIPIENTS[event_type])
                        await insert.executemany(sql, params)
                    await read_rows.execute(_ROWS, event_ids)
                    await read_unread.execute(_UNREAD, event_ids)
                # The pipeline's end sent the Sync and read every result: committed.
                rows = [as_dict(r) for r in await read_rows.fetchall()]
                unread = {u: int(n) for u, n in await read_unread.fetchall()}
        except psycopg.Error as e:
            error = postgres_failure(e, self.name)
            if not isinstance(error, StoreRefused):  # after a refusal the session is usable
                await self.close()
            raise error from e
        return Delivery(rows, unread)

    async def purge(self) -> int:
        """Delete notifications older than the retention; return how many."""
        await self.open()
        assert self._conn is not None
        try:
            async with self._conn.transaction():
                cur = await self._conn.execute(_PURGE, (self.retention_seconds,))
                return cur.rowcount
        except psycopg.Error as e:
            await self.close()
            raise postgres_failure(e, self.name) from e

    async def close(self) -> None:
        """Close the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.shield(conn.close())


# Per key: add the notification (score = its id), keep the newest ARGV[1], expire after ARGV[2].
_INBOX_SCRIPT = """
local size, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[1 + 2 * i], ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYRANK', key, 0, -size - 1)
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
"""
FAN_OUT_CHUNK = 250


class RedisFanOut:
    """Redis recent lists (bounded, expiring) and live deliveries."""

    name = "notifications-redis"

    def __init__(self, url: str, *, inbox_size: int = 100, retention_days: float = 7.0) -> None:
        self.url = url
        self.inbox_size = inbox_size
        self.ttl = int(retention_days * 86_400)
        self._redis: aioredis.Redis | None = None

    async def open(self) -> None:
        """Create the client (connections are made on first use)."""
        if self._redis is None:
            self._redis = aioredis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)

    async def write(self, batch: Delivery) -> None:
        """Recent list per user and one live delivery per notification, in one pipeline.

        Both go in chunks: a script updates a chunk's recent lists in one command, and one
        message carries a chunk's deliveries (a post to 10,000 followers is 80 commands).
        """
        rows, unread = batch.rows, batch.unread
        if not rows:
            return
        await self.open()
        assert self._redis is not None
        pipe = self._redis.pipeline(transaction=False)
        for i in range(0, len(rows), FAN_OUT_CHUNK):
            chunk = rows[i : i + FAN_OUT_CHUNK]
            members = [m for row in chunk for m in (row["id"], delivery(row, row["user"], 0))]
            pipe.eval(
                _INBOX_SCRIPT,
                len(chunk),
                *(inbox_key(row["user"]) for row in chunk),
                self.inbox_size,
                self.ttl,
                *members,
            )
        for i in range(0, len(rows), FAN_OUT_CHUNK):
            chunk = rows[i : i + FAN_OUT_CHUNK]
            pipe.publish(
                NOTIFICATIONS_CHANNEL,
                deliveries([(row, row["user"], unread.get(row["user"], 0)) for row in chunk]),
            )
        try:
            await pipe.execute()
        except RedisError as e:
            raise redis_failure(e, self.name) from e

    async def close(self) -> None:
        """Close the client's connections."""
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()
