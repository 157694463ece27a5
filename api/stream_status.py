"""Consumer status for ``/api/stream/status``: worker heartbeats plus committed offsets and lag.

Heartbeats come from Redis (workers publish them); offsets come from Kafka itself, read with
the worker's consumer group id without joining the group; the outbox backlog comes from
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import asdict
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from api.outbox import OutboxRelay
from footprint.kafka_admin import true_end_offsets
from footprint.keys import STATUS_PREFIX

__all__ = ["KafkaOffsets", "outbox_status", "recent_dead_letters", "worker_heartbeats"]


async def worker_heartbeats(redis: aioredis.Redis) -> list[dict[str, Any]]:
    """Every live worker's last heartbeat."""
    out = []
    async for key in redis.scan_iter(match=STATUS_PREFIX + "*", count=100):
        raw = await redis.get(key)
        if raw:
            beat = json.loads(raw)
            beat["age_seconds"] = round(time.time() - beat.get("heartbeat_at", 0), 3)
            out.append(beat)
    return sorted(out, key=lambda b: b.get("worker_id", ""))


async def outbox_status(relay: OutboxRelay) -> dict[str, Any]:
    """Events committed but not yet on the topic (all API processes), and this relay's record."""
    backlog = await relay.refresh_backlog()
    return {
        "backlog": backlog.count,
        "oldest_age_seconds": backlog.oldest_age_seconds,
        "relay": asdict(relay.stats),
    }


class KafkaOffsets:
    """Committed offset and lag per partition for one consumer group, on a lazily started client."""

    def __init__(self, bootstrap: str, group_id: str, topics: list[str]) -> None:
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.topics = topics
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=self.group_id,
                enable_auto_commit=False,
                request_timeout_ms=5000,
            )
            await asyncio.wait_for(consumer.start(), 5)
            self._consumer = consumer
        return self._consumer

    async def partitions(self) -> list[dict[str, Any]]:
        """Per topic/partition: committed offset, end offset and lag."""
        async with self._lock:
            try:
                consumer = await self._client()
                metadata = await consumer._client.fetch_all_metadata()  # noqa: SLF001
                tps = [
                    TopicPartition(topic, p)
                    for topic in self.topics
                    for p in sorted(metadata.partitions_for_topic(topic) or [])
                ]
                ends = await true_end_offsets(self.bootstrap, tps)
                rows = []
                for tp in tps:
                    committed = await consumer.committed(tp)
                    end = ends.get(tp, 0)
                    rows.append(
                        {
                            "topic": tp.topic,
                            "partition": tp.partition,
                            "committed": committed,
                            "end": end,
                            "lag": max(0, end - (committed or 0)),
                        }
                    )
                return rows
            except Exception:
                await self.close()
                raise

    async def close(self) -> None:
        """Stop the client."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()


async def recent_dead_letters(bootstrap: str, topic: str, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` records of a dead-letter topic, newest last."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=5000
    )
    await asyncio.wait_for(consumer.start(), 10)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            metadata = await consumer._client.fetch_all_metadata()  # noqa: SLF001
            parts = metadata.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        ends = await true_end_offsets(bootstrap, tps)
        starts = await consumer.beginning_offsets(tps)
        consumer.assign(tps)
        want = 0
        for tp in tps:
            first = max(starts[tp], ends[tp] - limit)
            consumer.seek(tp, first)
            want += ends[tp] - first
        records: list[Any] = []
        deadline = time.monotonic() + 5
        while len(records) < want and time.monotonic() < deadline:
            for batch in (await consumer.getmany(*tps, timeout_ms=300)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    records.sort(key=lambda r: r.timestamp)
    out = []
    for r in records[-limit:]:
        headers = {k: v.decode("utf-8", "replace") for k, v in (r.headers or ())}
        out.append(
            {
                "offset": r.offset,
                "timestamp": r.timestamp,
                "error": headers.get("error"),
                "source": {
                    "topic": headers.get("source-topic"),
                    "partition": headers.get("source-partition"),
                    "offset": headers.get("source-offset"),
                },
                "value": (r.value or b"").decode("utf-8", "replace")[:4096],
            }
        )
    return out
