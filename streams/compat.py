"""Broker quirks the worker works around, each explained where it is applied."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from footprint.kafka_admin import true_end_offsets

__all__ = ["use_fetch_max_wait", "use_true_highwaters"]


def use_true_highwaters(bootstrap: str) -> None:
    """Make table recovery read changelogs to their real end.

    Faust recovers a table by reading its changelog up to the partition's high watermark, which
    it takes from ListOffsets. Tansu 0.6 under-reports it after a multi-record batch, so recovery
    would stop early and the last table updates before a crash would be lost.
    """
    original = AIOKafkaConsumerThread._highwaters
    if getattr(original, "footprint_patched", False):
        return

    async def _highwaters(self: Any, partitions: list[Any]) -> Mapping[Any, int]:
        listed = dict(await original(self, partitions))
        if self.consumer.in_transaction:
            return listed
        with contextlib.suppress(Exception):  # keep Faust's answer if the check fails
            fixed = await true_end_offsets(bootstrap, list(partitions))
            for tp, end in fixed.items():
                listed[tp] = max(listed.get(tp) or 0, end)
        return listed

    _highwaters.footprint_patched = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._highwaters = _highwaters  # type: ignore[method-assign]


def use_fetch_max_wait(milliseconds: int) -> None:
    """Make the worker's fetches wait at most ``milliseconds`` for records.

    Faust creates its consumer with ``fetch_max_wait_ms=1500``. Apache Kafka answers a fetch as
    soon as records arrive, so that only bounds an idle poll; Tansu answers when the wait ends,
    so every record would wait for it (measured: p50 390 ms from produce to consume at 1500 ms,
    15 ms at 100, 5 ms at 10). Shorter waits cost idle CPU in the worker and the broker; the
    default (100 ms) is the balance, see FOOTPRINT_FETCH_MAX_WAIT_MS in the README.
    """
    original = AIOKafkaConsumerThread._create_worker_consumer
    if getattr(original, "footprint_patched", False):
        return

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = milliseconds  # read by the consumer's start()
        return consumer

    _create_worker_consumer.footprint_patched = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
