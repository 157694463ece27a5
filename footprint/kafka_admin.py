"""Create the Kafka topics Footprint needs, with the partition counts it needs, before Faust."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError, for_code

__all__ = [
    "KafkaTopicError",
    "TopicPartitionMismatch",
    "TopicSpec",
    "ensure_topics",
    "ensure_topics_sync",
    "true_end_offsets",
]

log = logging.getLogger(__name__)


class KafkaTopicError(RuntimeError):
    """A topic could not be created or checked."""


class TopicPartitionMismatch(KafkaTopicError):
    """An existing topic has a different partition count than the one requested."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic to ensure: name, partition count, replication factor, topic configs."""

    name: str
    partitions: int
    replication_factor: int = 1
    config: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("topic name must not be empty")
        if self.partitions < 1 or self.replication_factor < 1:
            raise ValueError(f"topic {self.name!r}: partitions and replication factor must be >= 1")


async def _connect(bootstrap: str, within: float) -> AIOKafkaAdminClient:
    # The broker may still be starting (the embedded stack, a compose service): retry briefly.
    deadline = time.monotonic() + within
    while True:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="footprint-admin", request_timeout_ms=10_000
        )
        try:
            await admin.start()
            return admin
        except KafkaConnectionError as e:
            await admin.close()
            if time.monotonic() >= deadline:
                raise KafkaTopicError(
                    f"cannot reach the Kafka broker at {bootstrap} within {within:.0f}s: {e}"
                ) from e
            await asyncio.sleep(0.25)


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    # Only ever describe topics known to exist: a metadata request naming a missing topic makes
    # brokers with auto-create on (Tansu, Kafka's default) create it with their default count.
    if not names:
        return {}
    return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}


def _check_counts(wanted: Sequence[TopicSpec], counts: Mapping[str, int]) -> None:
    wrong = [
        (s, counts[s.name]) for s in wanted if s.name in counts and counts[s.name] != s.partitions
    ]
    if wrong:
        # Faust would stop later with PartitionsMismatch on a table's changelog; say it now.
        detail = "; ".join(
            f"topic {s.name!r} has {have} partitions, {s.partitions} requested" for s, have in wrong
        )
        raise TopicPartitionMismatch(
            f"{detail}. Delete the topic (its data goes with it) or set the partition count to "
            "match (FOOTPRINT_PARTITIONS)"
        )


async def ensure_topics(
    bootstrap: str, topics: Sequence[TopicSpec], *, connect_timeout: float = 15.0
) -> None:
    """Create the missing topics; raise TopicPartitionMismatch if one exists with another count."""
    names = [t.name for t in topics]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate topic names in {names}")
    admin = await _connect(bootstrap, connect_timeout)
    try:
        existing = set(await admin.list_topics())
        _check_counts(topics, await _partition_counts(admin, [n for n in names if n in existing]))
        missing = [t for t in topics if t.name not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [
                NewTopic(t.name, t.partitions, t.replication_factor, topic_configs=dict(t.config))
                for t in missing
            ]
        )
        raced: list[str] = []
        failures: list[str] = []
        for topic_error in response.topic_errors:
            name, code = topic_error[0], topic_error[1]
            if code == 0:
                log.info("created topic %s", name)
                continue
            error = for_code(code)
            if error is TopicAlreadyExistsError:
                raced.append(name)  # created by someone else since we listed: check its count
            else:
                message = topic_error[2] if len(topic_error) > 2 and topic_error[2] else ""
                failures.append(f"{name}: {error.__name__} {message}".strip())
        if failures:
            raise KafkaTopicError(f"cannot create topics at {bootstrap}: " + "; ".join(failures))
        _check_counts(topics, await _partition_counts(admin, raced))
    except KafkaError as e:
        raise KafkaTopicError(f"topic check at {bootstrap} failed: {e!r}") from e
    finally:
        await admin.close()


def ensure_topics_sync(
    bootstrap: str, topics: Sequence[TopicSpec], *, connect_timeout: float = 15.0
) -> None:
    """``ensure_topics`` for synchronous callers, also from inside a running event loop."""
    coro = ensure_topics(bootstrap, topics, connect_timeout=connect_timeout)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    # asyncio.run refuses to nest: give the coroutine a loop of its own on another thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


async def true_end_offsets(bootstrap: str, tps: Sequence[TopicPartition]) -> dict[Any, int]:
    """End offsets that are right on every broker.

    Tansu 0.6 answers ListOffsets(latest) with the base offset + 1 of the partition's last record
    batch, which is short by the batch's other records; a fetch's high watermark is right. This
    reads both, with a throwaway consumer, and returns the larger. On Apache Kafka they agree.
    """
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=10_000
    )
    await consumer.start()
    try:
        wanted = [TopicPartition(tp[0], tp[1]) for tp in tps]
        listed = await consumer.end_offsets(wanted)
        consumer.assign(wanted)
        for tp in wanted:
            consumer.seek(tp, listed[tp])
        await consumer.getmany(*wanted, timeout_ms=500, max_records=1)
        fixed = {tp: max(listed[tp], consumer.highwater(tp) or 0) for tp in wanted}
        return {orig: fixed[TopicPartition(orig[0], orig[1])] for orig in tps}
    finally:
        await consumer.stop()
