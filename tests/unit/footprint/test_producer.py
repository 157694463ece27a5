"""footprint/producer.py: the bounded buffer and the disk spool never lose a footprint."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka.partitioner import DefaultPartitioner

from footprint.producer import FootprintProducer, Spool, packs, to_record
from footprint.schema import Footprint

UNREACHABLE = "127.0.0.1:1"


def _fp(n: int = 0) -> Footprint:
    return Footprint(
        event_id=uuid4(),
        method="GET",
        link=f"/posts/{n}",
        footprint_time=datetime(2026, 11, 22, 9, 30, n % 60, tzinfo=UTC),
    )


def _values(n: int, prefix: str = "v") -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(n)]


# --- spool -----------------------------------------------------------------------------------


def test_spool_rotates_segments_and_delivers_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", segment_events=2)
    assert spool.take_oldest() is None
    spool.append([b"a"])
    spool.append([b"b"])  # same segment: it holds 2
    spool.append([b"c"])  # full: a new segment
    spool.append([b"d", b"e"])
    assert spool.count == 5
    assert len(spool.segments()) == 2

    taken = spool.take_oldest()
    assert taken is not None
    seg, values = taken
    assert values == [b"a", b"b"]
    spool.done(seg, len(values))
    assert spool.count == 3
    assert not seg.exists()

    taken = spool.take_oldest()
    assert taken is not None
    seg, values = taken
    assert values == [b"c", b"d", b"e"]
    # Appends while a segment is being delivered go to a new segment, not into it.
    spool.append([b"f"])
    spool.done(seg, len(values))
    taken = spool.take_oldest()
    assert taken is not None
    assert taken[1] == [b"f"]
    spool.done(taken[0], 1)
    assert spool.count == 0
    assert spool.take_oldest() is None


def test_spool_segment_stays_until_done(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append([b"x", b"y"])
    first = spool.take_oldest()
    again = spool.take_oldest()  # not yet acknowledged: offered again
    assert first == again
    assert spool.count == 2


def test_spool_survives_a_restart(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory, segment_events=3)
    spool.append(_values(3, "old"))
    spool.append(_values(2, "new"))
    assert len(spool.segments()) == 2

    restarted = Spool(directory, segment_events=3)
    assert restarted.count == 5
    taken = restarted.take_oldest()
    assert taken is not None
    assert taken[1] == _values(3, "old")
    restarted.done(taken[0], 3)
    # After a restart, new values never go into an old segment.
    restarted.append([b"after"])
    taken = restarted.take_oldest()
    assert taken is not None
    assert taken[1] == _values(2, "new")
    restarted.done(taken[0], 2)
    taken = restarted.take_oldest()
    assert taken is not None
    assert taken[1] == [b"after"]
    assert restarted.count == 1


def test_spool_on_a_missing_directory_is_empty(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "nope")
    assert spool.count == 0
    assert spool.segments() == []
    assert spool.take_oldest() is None


# --- producer: buffer and spill --------------------------------------------------------------


def test_to_record_keys_by_link_stamped_when_accepted() -> None:
    fp = _fp(5)  # dated 2026-11-22
    before = int(time.time() * 1000)
    key, value, ts, from_spool = to_record(fp)
    assert not from_spool
    assert key == b"/posts/5"
    assert Footprint.from_bytes(value) == fp
    # The worker's event-time policy compares the footprint's time with this.
    assert before <= ts <= int(time.time() * 1000)


def test_to_record_from_the_spool_keeps_the_event_time() -> None:
    fp = _fp(5)
    _, _, ts, from_spool = to_record(fp, from_spool=True)
    assert from_spool
    assert ts == int(fp.footprint_time.timestamp() * 1000)


def test_offer_beyond_max_buffer_spills_to_spool(tmp_path: Path) -> None:
    producer = FootprintProducer(
        UNREACHABLE, "footprints", max_buffer=3, spool_dir=tmp_path / "spool"
    )
    footprints = [_fp(i) for i in range(8)]
    for fp in footprints:
        producer.offer(fp)
    assert producer.stats.offered == 8
    assert producer.stats.spooled == 5
    assert producer.pending == 8
    # The first 3 wait in memory, the other 5 on disk, in order.
    in_memory = [Footprint.from_bytes(v).event_id for _, v, *_ in producer._buffer]
    assert in_memory == [fp.event_id for fp in footprints[:3]]
    on_disk = []
    for seg in producer.spool.segments():  # type: ignore[union-attr]
        on_disk += [Footprint.from_bytes(line).event_id for line in seg.read_bytes().splitlines()]
    assert on_disk == [fp.event_id for fp in footprints[3:]]


def test_offer_without_spool_drops_beyond_max_buffer() -> None:
    producer = FootprintProducer(UNREACHABLE, "footprints", max_buffer=2)
    for i in range(4):
        producer.offer(_fp(i))
    assert producer.pending == 2
    assert producer.stats.offered == 4
    assert producer.stats.spooled == 0


def test_offer_never_blocks() -> None:
    producer = FootprintProducer(UNREACHABLE, "footprints", max_buffer=100_000)
    fp = _fp()
    started = time.perf_counter()
    for _ in range(10_000):
        producer.offer(fp)
    assert time.perf_counter() - started < 2.0
    assert producer.pending == 10_000


def test_pending_counts_a_spool_left_by_a_previous_process(tmp_path: Path) -> None:
    Spool(tmp_path / "spool").append([_fp(i).to_bytes() for i in range(4)])
    producer = FootprintProducer(UNREACHABLE, "footprints", spool_dir=tmp_path / "spool")
    assert producer.pending == 4


# --- producer: stop with the broker down -----------------------------------------------------


def test_stop_with_unreachable_broker_spools_the_buffer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool_dir = tmp_path / "spool"
    footprints = [_fp(i) for i in range(5)]

    async def scenario() -> FootprintProducer:
        producer = FootprintProducer(
            UNREACHABLE, "footprints", spool_dir=spool_dir, request_timeout_ms=500
        )
        await producer.start()
        for fp in footprints:
            producer.offer(fp)
        # Until the delivery task has tried, and failed, to connect (aiokafka goes on trying
        # for seconds before the producer hears of it: the stop must cut that short).
        while not any("Unable connect" in r.getMessage() for r in caplog.records):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await asyncio.wait_for(producer.stop(timeout=0.3), 5)
        return producer

    started = time.monotonic()
    producer = asyncio.run(scenario())
    assert time.monotonic() - started < 5
    assert producer.stats.delivered == 0
    assert producer.stats.connected is False
    assert producer.stats.spooled == 5
    assert len(producer._buffer) == 0
    assert producer.pending == 5

    # The next process (same spool dir) has them pending, the same events, in order.
    restarted = FootprintProducer(UNREACHABLE, "footprints", spool_dir=spool_dir)
    assert restarted.pending == 5
    assert restarted.spool is not None
    taken = restarted.spool.take_oldest()
    assert taken is not None
    assert [Footprint.from_bytes(v).event_id for v in taken[1]] == [
        fp.event_id for fp in footprints
    ]


def test_flush_times_out_with_unreachable_broker(tmp_path: Path) -> None:
    async def scenario() -> tuple[bool, int]:
        producer = FootprintProducer(UNREACHABLE, "footprints", spool_dir=tmp_path / "spool")
        await producer.start()
        producer.offer(_fp())
        flushed = await producer.flush(timeout=0.2)
        await producer.stop(timeout=0.1)
        return flushed, producer.pending

    flushed, pending = asyncio.run(scenario())
    assert flushed is False
    assert pending == 1


# --- producer: a broker that goes away mid-delivery (a fake in place of aiokafka) -------------


class _FakeKafka:
    """Stands in for a connected AIOKafkaProducer; the test decides what ``_send`` does."""

    async def stop(self) -> None:
        return None


def _with_fake_broker(producer: FootprintProducer, send) -> FootprintProducer:  # noqa: ANN001
    async def connect() -> _FakeKafka:
        producer.stats.connected = True
        return _FakeKafka()

    producer._connect = connect  # type: ignore[method-assign]
    producer._send = send  # type: ignore[method-assign]
    return producer


def _spooled_ids(spool_dir: Path) -> list[str]:
    spool = Spool(spool_dir)
    return [
        str(Footprint.from_bytes(line).event_id)
        for seg in spool.segments()
        for line in seg.read_bytes().splitlines()
        if line
    ]


def test_stop_does_not_duplicate_spooled_events_that_failed_to_send(tmp_path: Path) -> None:
    """Events taken from the spool, then refused by the broker, must be on disk once, not twice.

    Duplicates would be produced twice after the restart, and the live windows count by source
    offset, not by event id: every duplicate would be a visit counted twice.
    """
    spool_dir = tmp_path / "spool"
    footprints = [_fp(i) for i in range(3)]
    Spool(spool_dir).append([fp.to_bytes() for fp in footprints])

    refused = asyncio.Event()

    async def refuse(_producer: object, batch: list) -> list:  # the broker acks nothing
        refused.set()
        return batch

    async def scenario() -> None:
        producer = _with_fake_broker(
            FootprintProducer(UNREACHABLE, "footprints", spool_dir=spool_dir), refuse
        )
        await producer.start()
        await asyncio.wait_for(refused.wait(), 5)  # the spool segment was taken and refused
        await producer.stop(timeout=0.2)

    asyncio.run(scenario())
    restarted = FootprintProducer(UNREACHABLE, "footprints", spool_dir=spool_dir)
    assert sorted(_spooled_ids(spool_dir)) == sorted(str(fp.event_id) for fp in footprints)
    assert restarted.pending == 3


def test_stop_keeps_a_batch_whose_send_never_completed(tmp_path: Path) -> None:
    """A batch in flight when stop() gives up was not acknowledged: it must reach the spool."""
    spool_dir = tmp_path / "spool"
    footprints = [_fp(i) for i in range(3)]

    in_flight = asyncio.Event()

    async def hang(_producer: object, batch: list) -> list:  # the broker never answers
        in_flight.set()
        await asyncio.Event().wait()
        return batch

    async def scenario() -> None:
        producer = _with_fake_broker(
            FootprintProducer(UNREACHABLE, "footprints", spool_dir=spool_dir), hang
        )
        await producer.start()
        for fp in footprints:
            producer.offer(fp)
        await asyncio.wait_for(in_flight.wait(), 5)
        await producer.stop(timeout=0.2)

    asyncio.run(scenario())
    restarted = FootprintProducer(UNREACHABLE, "footprints", spool_dir=spool_dir)
    assert sorted(_spooled_ids(spool_dir)) == sorted(str(fp.event_id) for fp in footprints)
    assert restarted.pending == 3


def test_delivered_spool_segment_is_removed(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    Spool(spool_dir).append([_fp(i).to_bytes() for i in range(3)])
    sent: list[bytes] = []

    async def accept(_producer: object, batch: list) -> list:
        sent.extend(value for _, value, *_ in batch)
        return []

    async def scenario() -> FootprintProducer:
        producer = _with_fake_broker(
            FootprintProducer(UNREACHABLE, "footprints", spool_dir=spool_dir), accept
        )
        await producer.start()
        producer.offer(_fp(9))
        assert await producer.flush(timeout=2)
        await producer.stop(timeout=0.2)
        return producer

    producer = asyncio.run(scenario())
    assert len(sent) == 4
    assert producer.pending == 0
    assert Spool(spool_dir).count == 0
    assert _spooled_ids(spool_dir) == []


# --- packs -----------------------------------------------------------------------------------


def test_packs_follow_the_keyed_partition_and_keep_order() -> None:
    records = [to_record(_fp(n % 7)) for n in range(200)]
    grouped = packs(records, [0, 1, 2, 3], max_items=1000, max_bytes=10**9)
    assert sorted(len(g) for _, g in grouped) and sum(len(g) for _, g in grouped) == 200
    assert len({p for p, _ in grouped}) == len(grouped), "one pack per partition"
    expected = DefaultPartitioner()
    for partition, group in grouped:
        # the partition a keyed message of that link would go to: per-link counts stay local
        assert {expected(r[0], [0, 1, 2, 3], [0, 1, 2, 3]) for r in group} == {partition}
        assert group == [r for r in records if r in group]


def test_packs_are_bounded_in_items_and_bytes() -> None:
    records = [to_record(_fp(0)) for _ in range(25)]  # one link: one partition
    by_items = packs(records, [0, 1], max_items=10, max_bytes=10**9)
    assert [len(g) for _, g in by_items] == [10, 10, 5]
    size = len(records[0][1])
    by_bytes = packs(records, [0, 1], max_items=1000, max_bytes=size * 4 + 10)
    assert [len(g) for _, g in by_bytes] == [4, 4, 4, 4, 4, 4, 1]
    assert [r for _, g in by_bytes for r in g] == records
