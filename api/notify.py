"""Publish community events to the notifications topic, from the API or from a host app.

A host app that has no HTTP hop to make::

    from api.notify import NotificationPublisher
    from schemas.community import FollowUser

    publisher = NotificationPublisher("localhost:9092")
    await publisher.start()
    await publisher.publish(FollowUser(actor_id="ann", followed_id="bob"))

``publish`` returns once the broker has acknowledged the event, so an action that succeeds has
its notification on its way; the event id makes a retried publish harmless.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaProducer

from footprint.kafka_admin import TopicSpec, ensure_topics
from schemas.community import CommunityEvent

__all__ = ["NotificationPublisher", "PublishError"]


class PublishError(RuntimeError):
    """The broker did not take the event."""


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
        with contextlib.suppress(Exception):
            await self._connect()

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
        try:
            producer = await asyncio.wait_for(self._connect(), self.timeout)
            await asyncio.wait_for(
                producer.send_and_wait(self.topic, event.to_bytes(), key=event.actor_id.encode()),
                self.timeout,
            )
        except Exception as e:
            await self.stop()
            raise PublishError(f"could not publish {event.type} {event.event_id}: {e}") from e

    async def stop(self) -> None:
        """Close the producer."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
