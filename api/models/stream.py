"""``/api/stream``: status (``api/routes/stream.py``, ``api/stream_status.py``) and dead letters."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.models.common import Answer

__all__ = [
    "DeadLetter",
    "DeadLetterSource",
    "DeadLetters",
    "OutboxStatus",
    "PartitionLag",
    "ProducerStatus",
    "RelayStatus",
    "StreamStatus",
    "WorkerHeartbeat",
]


class WorkerHeartbeat(BaseModel):
    """A worker's last heartbeat (``streams/status.py``'s WorkerStatus), as it published it."""

    # Published by the worker process, maybe of another release: a field it adds is passed on.
    model_config = ConfigDict(extra="allow")

    worker_id: str = Field(description="host:pid of the worker process.")
    started_at: float = Field(description="When it started (Unix seconds).")
    processed: int = Field(description="Footprints taken from the topic, good and bad.")
    stored: int = Field(description="Footprints written to the stores.")
    dead_lettered: int = Field(description="Messages sent to a dead-letter topic.")
    duplicates: int = Field(description="Footprints dropped as replays of stored ones.")
    rewinds: int = Field(description="Seeks back to an offset not yet written.")
    notification_events: int = Field(description="Community events processed.")
    notifications: int = Field(description="Notifications created for recipients.")
    batches: int = Field(description="Batches written.")
    last_batch_at: float | None = Field(description="When the last batch was written.")
    last_error: str | None = Field(description="The latest error.")
    last_error_at: float | None = Field(description="When it happened (Unix seconds).")
    last_bug: str | None = Field(description="The latest bug (neither outage nor refusal).")
    last_bug_at: float | None = Field(description="When it happened (Unix seconds).")
    sinks: dict[str, str] = Field(description="Per store: ok, unavailable or bug.")
    failures: dict[str, dict[str, int]] = Field(
        description="Per store and kind (unavailable, refused, bug): failed attempts or items."
    )
    positions: dict[str, int] = Field(description="Per topic:partition, the last offset processed.")
    heartbeat_at: float = Field(description="When this heartbeat was published (Unix seconds).")
    age_seconds: float = Field(description="How old the heartbeat is now.")


class PartitionLag(Answer):
    """The workers' consumer group on one partition."""

    topic: str = Field(description="The topic.")
    partition: int = Field(description="The partition.")
    committed: int | None = Field(description="The group's committed offset; null if none.")
    end: int = Field(description="The partition's end offset.")
    lag: int = Field(description="Messages not yet committed: end - committed.")


class ProducerStatus(Answer):
    """This API process's footprint producer (``footprint/producer.py``'s ProducerStats)."""

    offered: int = Field(description="Footprints handed to the producer.")
    delivered: int = Field(description="Footprints the broker acknowledged.")
    failed_sends: int = Field(description="Sends that failed (retried).")
    spooled: int = Field(description="Footprints written to the disk spool.")
    connected: bool = Field(description="Whether it reaches the broker now.")
    last_error: str | None = Field(description="The latest error.")
    pending: int = Field(description="Footprints not yet acknowledged (memory and disk).")


class RelayStatus(Answer):
    """This API process's outbox relay (``api/outbox.py``'s RelayStats)."""

    published: int = Field(description="Events published to the notifications topic.")
    failed_attempts: int = Field(description="Publishing attempts that failed (retried).")
    last_error: str | None = Field(description="The latest error.")
    last_error_at: float | None = Field(description="When it happened (Unix seconds).")
    last_published_at: float | None = Field(description="When events were last published.")


class OutboxStatus(Answer):
    """Community events committed but not yet on the notifications topic."""

    backlog: int = Field(description="Events waiting, all API processes together.")
    oldest_age_seconds: float = Field(description="How long the oldest has waited.")
    relay: RelayStatus


class StreamStatus(Answer):
    """Whether a worker is alive, how far behind it is, what failed last, what waits."""

    worker_alive: bool = Field(description="Whether a worker sent a heartbeat in the last 10 s.")
    workers: list[WorkerHeartbeat] = Field(description="Every worker's last heartbeat.")
    processed: int = Field(description="Sum over the workers.")
    dead_lettered: int = Field(description="Sum over the workers.")
    duplicates_dropped: int = Field(description="Sum of the workers' duplicates.")
    notification_events: int = Field(description="Sum over the workers.")
    notifications: int = Field(description="Sum over the workers.")
    partitions: list[PartitionLag] = Field(description="Offsets and lag per topic partition.")
    lag: int = Field(description="Sum of the partitions' lag.")
    last_error: str | None = Field(description="The most recent error of any worker.")
    stores: dict[str, str] = Field(
        description="Per store, the worst state among live workers: ok, unavailable or bug."
    )
    last_bug: str | None = Field(description="The most recent bug of any worker.")
    producer: ProducerStatus
    outbox: OutboxStatus | None = Field(description="Null when PostgreSQL could not be read.")
    refused_unknown_site: int = Field(
        description="Footprints this API process refused because their site is not registered."
    )
    errors: dict[str, str] = Field(
        description="Per source that could not be read (postgres, redis, kafka): why."
    )
    checked_at: float = Field(description="When this answer was made (Unix seconds).")


class DeadLetterSource(Answer):
    """Where a dead letter was read, from its headers (text as the worker wrote it)."""

    topic: str | None = Field(description="The topic it came from.")
    partition: str | None = Field(description="Its partition.")
    offset: str | None = Field(description="Its offset there.")


class DeadLetter(Answer):
    """A message the worker could not process, with why."""

    offset: int = Field(description="Its offset on the dead-letter topic.")
    timestamp: int = Field(description="When it was dead-lettered (Unix milliseconds).")
    error: str | None = Field(description="Why it was refused.")
    source: DeadLetterSource
    value: str = Field(description="The original value as text, at most 4096 characters.")


class DeadLetters(Answer):
    """The most recent dead letters of one topic, newest last."""

    topic: str = Field(description="The dead-letter topic read.")
    entries: list[DeadLetter]
