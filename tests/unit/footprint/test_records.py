"""footprint/records.py: records keyed by link, stamped when accepted, packed per partition."""

from __future__ import annotations

import time

from aiokafka.partitioner import DefaultPartitioner

from footprint.records import packs, to_record
from footprint.schema import Footprint
from tests.unit.footprint.samples import sample_footprint


def test_to_record_keys_by_link_stamped_when_accepted() -> None:
    fp = sample_footprint(5)  # dated 2026-11-22
    before = int(time.time() * 1000)
    key, value, ts, from_spool = to_record(fp)
    assert not from_spool
    assert key == b"/posts/5"
    assert Footprint.from_bytes(value) == fp
    # The worker's event-time policy compares the footprint's time with this.
    assert before <= ts <= int(time.time() * 1000)


def test_to_record_from_the_spool_keeps_the_event_time() -> None:
    fp = sample_footprint(5)
    _, _, ts, from_spool = to_record(fp, from_spool=True)
    assert from_spool
    assert ts == int(fp.footprint_time.timestamp() * 1000)


def test_packs_follow_the_keyed_partition_and_keep_order() -> None:
    records = [to_record(sample_footprint(n % 7)) for n in range(200)]
    grouped = packs(records, [0, 1, 2, 3], max_items=1000, max_bytes=10**9)
    assert sorted(len(g) for _, g in grouped) and sum(len(g) for _, g in grouped) == 200
    assert len({p for p, _ in grouped}) == len(grouped), "one pack per partition"
    expected = DefaultPartitioner()
    for partition, group in grouped:
        # the partition a keyed message of that link would go to: per-link counts stay local
        assert {expected(r[0], [0, 1, 2, 3], [0, 1, 2, 3]) for r in group} == {partition}
        assert group == [r for r in records if r in group]


def test_packs_are_bounded_in_items_and_bytes() -> None:
    records = [to_record(sample_footprint(0)) for _ in range(25)]  # one link: one partition
    by_items = packs(records, [0, 1], max_items=10, max_bytes=10**9)
    assert [len(g) for _, g in by_items] == [10, 10, 5]
    size = len(records[0][1])
    by_bytes = packs(records, [0, 1], max_items=1000, max_bytes=size * 4 + 10)
    assert [len(g) for _, g in by_bytes] == [4, 4, 4, 4, 4, 4, 1]
    assert [r for _, g in by_bytes for r in g] == records
