"""One producer's round trips to Kafka: start it, and send a batch of records as packs.

``footprint/producer.py`` owns the buffer, the spool and the retries; this module only talks to
the broker. A batch goes out as one message per partition and pack (``footprint.records.packs``,
``footprint.schema.pack``), and the answer says which records the broker did not acknowledge.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from footprint.kafka_admin import TopicSpec, ensure_topics
from footprint.records import Record, packs
from footprint.schema import pack

__all__ = ["send_packs", "start_producer"]


async def start_producer(
    bootstrap: str, spec: TopicSpec, linger_ms: int, request_timeout_ms: int
) -> AIOKafkaProducer:
    """A started producer, once the topic exists; raises when the broker cannot be reached."""
    await ensure_topics(bootstrap, [spec])
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=linger_ms,
        request_timeout_ms=request_timeout_ms,
        acks="all",
        max_batch_size=256 * 1024,
    )
    try:
        await producer.start()
    except Exception:
        with contextlib.suppress(Exception):
            await producer.stop()
        raise
    return producer


async def send_packs(
    producer: AIOKafkaProducer,
    topic: str,
    batch: list[Record],
    *,
    pack_items: int,
    pack_bytes: int,
    note_error: Callable[[BaseException], None],
    in_flight: list[Record],
) -> tuple[list[Record], int]:
    """Send ``batch``; return the records not acknowledged and how many were delivered.

    Cancelled mid-send, it leaves in ``in_flight`` (the caller's list, changed in place) only the
    records the broker has not acknowledged, and lets the cancellation through.
    """
    futures: list[asyncio.Future[object]] = []
    unsent: list[Record] = []
    grouped: list[tuple[int, list[Record]]] = []
    try:
        try:
            partitions = sorted(await producer.partitions_for(topic))
            grouped = packs(batch, partitions, pack_items, pack_bytes)
            for partition, records in grouped:
                value = records[0][1] if len(records) == 1 else pack([r[1] for r in records])
                ts = max(r[2] for r in records)
                futures.append(
                    await producer.send(topic, value, partition=partition, timestamp_ms=ts)
                )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            note_error(e)
            unsent = [r for _, records in grouped[len(futures) :] for r in records]
            if not grouped:
                unsent = list(batch)
        results = await asyncio.gather(*futures, return_exceptions=True)
    except asyncio.CancelledError:
        # Stopped mid-send: only what is not acknowledged goes back (the producer's _run).
        # Built whole before it replaces the list's contents: ``batch`` may be that list.
        in_flight[:] = [
            rec
            for i, (_, records) in enumerate(grouped or [(0, batch)])
            if i >= len(futures)
            or not futures[i].done()
            or futures[i].cancelled()
            or futures[i].exception() is not None
            for rec in records
        ]
        raise
    failed = [
        rec
        for (_, records), res in zip(grouped, results, strict=False)
        if isinstance(res, BaseException)
        for rec in records
    ]
    for res in results:
        if isinstance(res, BaseException):
            note_error(res)
            break
    sent = sum(len(records) for _, records in grouped[: len(futures)])
    return failed + unsent, sent - len(failed)
