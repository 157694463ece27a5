"""What the producer sends: footprints as keyed, timestamped records, grouped into packs.

A record is a footprint keyed by its link (per-link counts need no repartition) and stamped with
when it was accepted. ``packs`` groups records by the partition Kafka's default partitioner gives
their key, so that one message can carry the footprints of one partition
(``footprint.schema.pack``).
"""

from __future__ import annotations

import functools
import time

from aiokafka.partitioner import DefaultPartitioner

from footprint.schema import Footprint

__all__ = ["Record", "packs", "record_from_spool", "to_record"]

# key, value, timestamp ms, and whether it came from the spool segment being delivered
Record = tuple[bytes, bytes, int, bool]


def to_record(footprint: Footprint, from_spool: bool = False) -> Record:
    """Key by link (per-link counts need no repartition); Kafka timestamp = when accepted.

    The worker judges a footprint's time against its message's timestamp (the event-time
    policy), and the broker's time retention counts from it too. A footprint read back from the
    spool was accepted earlier, at a time no longer known: its own time stands in.
    """
    sent = footprint.timestamp if from_spool else time.time()
    return (footprint.link.encode(), footprint.to_bytes(), int(sent * 1000), from_spool)


def packs(
    records: list[Record], partitions: list[int], max_items: int, max_bytes: int
) -> list[tuple[int, list[Record]]]:
    """Group records by the partition their key maps to (Kafka's default partitioner), in
    order, into packs of at most ``max_items`` records and about ``max_bytes`` of values."""
    choices = tuple(partitions)
    by_partition: dict[int, list[list[Record]]] = {}
    sizes: dict[int, int] = {}
    for record in records:
        partition = _partition(record[0], choices)
        groups = by_partition.setdefault(partition, [[]])
        if len(groups[-1]) >= max_items or (
            groups[-1] and sizes[partition] + len(record[1]) > max_bytes
        ):
            groups.append([])
            sizes[partition] = 0
        groups[-1].append(record)
        sizes[partition] = sizes.get(partition, 0) + len(record[1]) + 1
    return [(p, group) for p, groups in by_partition.items() for group in groups]


@functools.lru_cache(maxsize=8192)
def _partition(key: bytes, partitions: tuple[int, ...]) -> int:
    # aiokafka's murmur2 is pure Python (2 µs a key); a site's links repeat.
    return DefaultPartitioner()(key, list(partitions), list(partitions))


def record_from_spool(value: bytes) -> Record:
    """The record of a footprint read back from the spool (its own time stands in)."""
    return to_record(Footprint.from_bytes(value), from_spool=True)
