"""Publish community events to the notifications topic, from the API or from a host app.

A host app that has no HTTP hop to make::

    from api.notify import NotificationPublisher
    from schemas.community import FollowUser

    publisher = NotificationPublisher("localhost:9092")
    await publisher.start()
    await publisher.publish(FollowUser(actor_id="ann", followed_id="bob"))

``publish`` returns once the broker has acknowledged the event; the event id makes a retried
publish harmless. The API itself does not publish inside a request: its community actions write
their events to the outbox and ``api.outbox.OutboxRelay`` publishes them with ``publish_records``
after the action's transaction has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import NamedTuple

from aiokafka import AIOKafkaProducer

from footprint.kafka_admin import TopicSpec, ensure_topics
from schemas.community import CommunityEvent

__all__ = ["NotificationPublisher", "PublishError", "Record"]


class PublishError(RuntimeError):
    """The broker did not take the event."""


class Record(NamedTuple):
    """One message as it goes to the broker."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


class NotificationPublisher:
    """One producer for community events, keyed by actor so one actor's events stay in order."""

    def __init__(
        self,
        bootstrap: str,
        topic: str = "notifications",
        *,
        partitions: int = 4,
        replication_factor: int = 1,
        timeout: float = 10.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.spec = TopicSpec(topic, partitions, replication_factor)
        self.timeout = timeout
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect (lazily retried by ``publish`` if the broker is not up yet)."""
        # Bounded: an unreachable broker must not hold up the API's start.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._connect(), self.timeout)

    async def _connect(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                await ensure_topics(self.bootstrap, [self.spec])
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    acks="all",
                    linger_ms=2,
                    request_timeout_ms=int(self.timeout * 1000),
                )
                await producer.start()
                self._producer = producer
            return self._producer

    async def publish(self, event: CommunityEvent) -> None:
        """Send one event and wait for the broker's acknowledgement."""
        record = Record(self.topic, event.actor_id.encode(), event.to_bytes(), [])
        try:
            await self.publish_records([record])
        except PublishError as e:
            raise PublishError(f"could not publish {event.type} {event.event_id}: {e}") from e

    async def publish_records(self, records: Sequence[Record]) -> None:
        """Send records in order and wait until the broker has acknowledged every one.

        One deadline covers connecting and every acknowledgement. On failure the producer is
        closed (the next call reconnects) and some records may have been written anyway: the
        caller retries all of them, and consumers drop the copies by event id.
        """
        try:
            async with asyncio.timeout(self.timeout):
                producer = await self._connect()
                # aiokafka keeps one request in flight per partition, so records of one key
                # are written in the order sent.
                futures = [
                    await producer.send(r.topic, r.value, key=r.key, headers=r.headers or None)
                    for r in records
                ]
                await asyncio.gather(*futures)
        except Exception as e:
            await self.stop()
            raise PublishError(f"{type(e).__name__}: {e}") from e

    async def stop(self) -> None:
        """Close the producer."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
