"""Prometheus metrics of the Faust worker, read at scrape time from what the worker already keeps.

The agents update ``streams.status.status`` (events processed, dead-lettered, notifications,
sink states) and Faust's monitor tracks offsets; a custom collector turns both into metrics when
scraped, so no agent code touches Prometheus. With ``FOOTPRINT_WORKER_METRICS_PORT`` set, the
worker serves them on ``http://<host>:<port>/metrics`` (``streams/agents/metrics.py``); under
``footprint run`` the API's ``/metrics`` includes them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from streams.sinks.base import Batch, Sink
from streams.status import FAILURE_KINDS, WorkerStatus, status

__all__ = [
    "SINK_WRITE_SECONDS",
    "PartitionOffsets",
    "WorkerCollector",
    "monitor_offsets",
    "register_worker_metrics",
    "timed",
    "timed_write",
    "worker_registry",
]

T = TypeVar("T")

# Registered into each registry that exposes it (the worker's, or the API's under `run`).
SINK_WRITE_SECONDS = Histogram(
    "footprint_worker_sink_write_seconds",
    "Time to write one batch to a sink (successful writes).",
    ["sink"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,
)


async def timed(sink: str, operation: Awaitable[T]) -> T:
    """Await a sink's write (or claim), observed in ``SINK_WRITE_SECONDS`` when it succeeds."""
    start = time.perf_counter()
    result = await operation
    SINK_WRITE_SECONDS.labels(sink).observe(time.perf_counter() - start)
    return result


async def timed_write(sink: Sink, batch: Batch) -> None:
    """``sink.write(batch)``, timed."""
    await timed(sink.name, sink.write(batch))


@dataclass(frozen=True)
class PartitionOffsets:
    """Where the worker's consumer stands on one partition: ``end`` and ``committed`` offsets."""

    topic: str
    partition: int
    end: int
    committed: int

    @property
    def lag(self) -> int:
        """Messages in the partition not yet committed."""
        return max(0, self.end - self.committed)


def monitor_offsets(monitor: Any) -> list[PartitionOffsets]:
    """Offsets from Faust's monitor (``app.monitor``), for partitions it has seen messages of."""
    # dict(...) copies in one step under the GIL: the scrape runs in another thread.
    ends = dict(monitor.tp_end_offsets or {})
    committed = dict(monitor.tp_committed_offsets or {})
    read = dict(monitor.tp_read_offsets or {})
    out = []
    for tp, end in ends.items():
        done = committed.get(tp)
        if done is None and read.get(tp) is not None:
            done = read[tp] + 1  # nothing committed yet: what has been read is the best guess
        if end is not None and done is not None:
            out.append(PartitionOffsets(tp.topic, tp.partition, end, done))
    return sorted(out, key=lambda p: (p.topic, p.partition))


class WorkerCollector:
    """Turns a ``WorkerStatus`` (and optionally consumer offsets) into metrics at scrape time."""

    def __init__(
        self,
        worker: WorkerStatus = status,
        offsets: Callable[[], Iterable[PartitionOffsets]] | None = None,
    ) -> None:
        self.worker = worker
        self.offsets = offsets

    def collect(self) -> Iterator[Metric]:
        """The current values."""
        s = self.worker
        info = InfoMetricFamily("footprint_worker", "This worker process.")
        info.add_metric([], {"worker_id": s.worker_id})
        yield info
        yield GaugeMetricFamily(
            "footprint_worker_start_time_seconds", "When the worker started.", value=s.started_at
        )
        for name, value, doc in (
            ("events_processed", s.processed, "Footprint events consumed (valid or not)."),
            ("events_stored", s.stored, "Valid footprints written to every sink."),
            ("dead_lettered", s.dead_lettered, "Invalid events sent to a dead-letter topic."),
            ("duplicates", s.duplicates, "Re-delivered footprints recognised and not stored."),
            ("notification_events", s.notification_events, "Community events consumed."),
            ("notifications", s.notifications, "Notifications stored (one per recipient)."),
            ("batches", s.batches, "Footprint batches processed."),
            ("rewinds", s.rewinds, "Seeks back to an offset the consumer skipped past."),
        ):
            yield CounterMetricFamily(f"footprint_worker_{name}", doc, value=value)
        if s.last_batch_at is not None:
            yield GaugeMetricFamily(
                "footprint_worker_last_batch_timestamp_seconds",
                "When the last footprint batch was processed.",
                value=s.last_batch_at,
            )
        if s.last_error_at is not None:
            yield GaugeMetricFamily(
                "footprint_worker_last_error_timestamp_seconds",
                "When the worker last reported an error.",
                value=s.last_error_at,
            )
        sinks = GaugeMetricFamily(
            "footprint_worker_sink_up", "1 when the sink's last write succeeded.", labels=["sink"]
        )
        states = GaugeMetricFamily(
            "footprint_worker_sink_state",
            "1 for the sink's current state: ok, unavailable (an outage, retrying) or bug "
            "(the worker's own code failed, retrying).",
            labels=["sink", "state"],
        )
        for sink, state in sorted(s.sinks.copy().items()):
            sinks.add_metric([sink], 1.0 if state == "ok" else 0.0)
            for name in ("ok", "unavailable", "bug"):
                states.add_metric([sink, name], 1.0 if state == name else 0.0)
        yield sinks
        yield states
        failures = CounterMetricFamily(
            "footprint_worker_sink_failures",
            "Store write failures by kind: unavailable (attempts retried), refused (items "
            "dead-lettered), bug (attempts retried after an exception of the worker's code).",
            labels=["sink", "kind"],
        )
        for sink, counts in sorted(s.failures.copy().items()):
            for kind in FAILURE_KINDS:
                failures.add_metric([sink, kind], counts.get(kind, 0))
        yield failures
        if s.last_bug_at is not None:
            yield GaugeMetricFamily(
                "footprint_worker_last_bug_timestamp_seconds",
                "When the worker's own code last failed writing to a store.",
                value=s.last_bug_at,
            )
        positions = GaugeMetricFamily(
            "footprint_worker_processed_offset",
            "Offset of the last footprint processed, per partition.",
            labels=["topic", "partition"],
        )
        for tp, offset in sorted(s.positions.copy().items()):
            topic, _, partition = tp.rpartition(":")
            positions.add_metric([topic, partition], offset)
        yield positions
        if self.offsets is not None:
            yield from self._lag()

    def _lag(self) -> Iterator[Metric]:
        assert self.offsets is not None
        lag = GaugeMetricFamily(
            "footprint_worker_consumer_lag",
            "Messages not yet committed by this worker, per assigned partition.",
            labels=["topic", "partition"],
        )
        end = GaugeMetricFamily(
            "footprint_worker_end_offset",
            "Last known end offset (high watermark), per partition.",
            labels=["topic", "partition"],
        )
        for p in self.offsets():
            labels = [p.topic, str(p.partition)]
            lag.add_metric(labels, p.lag)
            end.add_metric(labels, p.end)
        yield lag
        yield end


def register_worker_metrics(
    registry: CollectorRegistry,
    worker: WorkerStatus = status,
    offsets: Callable[[], Iterable[PartitionOffsets]] | None = None,
) -> None:
    """Add the worker's metrics to ``registry``."""
    registry.register(WorkerCollector(worker, offsets))
    registry.register(SINK_WRITE_SECONDS)


def worker_registry(
    offsets: Callable[[], Iterable[PartitionOffsets]] | None = None,
) -> CollectorRegistry:
    """A registry with the worker's metrics and the process's (CPU, memory, GC)."""
    registry = CollectorRegistry()
    register_worker_metrics(registry, status, offsets)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
