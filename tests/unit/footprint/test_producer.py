"""footprint/producer.py: the bounded buffer, spilling to the spool, never loses a footprint."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from footprint.producer import FootprintProducer
from footprint.schema import Footprint
from footprint.spool import Spool
from tests.unit.footprint.samples import sample_footprint

UNREACHABLE = "127.0.0.1:1"


# --- producer: buffer and spill --------------------------------------------------------------


def test_offer_beyond_max_buffer_spills_to_spool(tmp_path: Path) -> None:
    producer = FootprintProducer(
        UNREACHABLE, "footprints", max_buffer=3, spool_dir=tmp_path / "spool"
    )
    footprints = [sample_footprint(i) for i in range(8)]
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
        producer.offer(sample_footprint(i))
    assert producer.pending == 2
    assert producer.stats.offered == 4
    assert producer.stats.spooled == 0


def test_offer_never_blocks() -> None:
    producer = FootprintProducer(UNREACHABLE, "footprints", max_buffer=100_000)
    fp = sample_footprint()
    started = time.perf_counter()
    for _ in range(10_000):
        producer.offer(fp)
    assert time.perf_counter() - started < 2.0
    assert producer.pending == 10_000


def test_pending_counts_a_spool_left_by_a_previous_process(tmp_path: Path) -> None:
    Spool(tmp_path / "spool").append([sample_footprint(i).to_bytes() for i in range(4)])
    producer = FootprintProducer(UNREACHABLE, "footprints", spool_dir=tmp_path / "spool")
    assert producer.pending == 4


# --- producer: stop with the broker down -----------------------------------------------------


def test_stop_with_unreachable_broker_spools_the_buffer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool_dir = tmp_path / "spool"
    footprints = [sample_footprint(i) for i in range(5)]

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
        producer.offer(sample_footprint())
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
    footprints = [sample_footprint(i) for i in range(3)]
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
    footprints = [sample_footprint(i) for i in range(3)]

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


def test_flush_waits_for_a_batch_in_flight() -> None:
    """A batch taken from the buffer and sent is pending until the broker acknowledges it:
    flush() returns once it is delivered, not while it is on its way."""
    answer = asyncio.Event()

    async def slow(_producer: object, batch: list) -> list:  # acknowledged when the test says
        await answer.wait()
        producer.stats.delivered += len(batch)
        return []

    producer = _with_fake_broker(FootprintProducer(UNREACHABLE, "footprints"), slow)

    async def scenario() -> tuple[int, bool, bool, int]:
        await producer.start()
        producer.offer(sample_footprint(1))
        await asyncio.sleep(0.05)  # the delivery task has taken the batch and waits on it
        pending = producer.pending
        early = await producer.flush(timeout=0.2)
        answer.set()
        flushed = await producer.flush(timeout=5)
        await producer.stop(timeout=1)
        return pending, early, flushed, producer.stats.delivered

    assert asyncio.run(scenario()) == (1, False, True, 1)


def test_a_spool_segment_being_delivered_is_pending_once(tmp_path: Path) -> None:
    """Its values are in the buffer (or on their way) and still in the spool's file until the
    broker has them all: each is pending once, not twice."""
    spool_dir = tmp_path / "spool"
    Spool(spool_dir).append([sample_footprint(i).to_bytes() for i in range(3)])
    in_flight = asyncio.Event()

    async def hang(_producer: object, batch: list) -> list:  # the broker never answers
        in_flight.set()
        await asyncio.Event().wait()
        return batch

    async def scenario() -> tuple[int, int]:
        producer = _with_fake_broker(
            FootprintProducer(UNREACHABLE, "footprints", spool_dir=spool_dir), hang
        )
        before = producer.pending
        await producer.start()
        await asyncio.wait_for(in_flight.wait(), 5)
        during = producer.pending
        await producer.stop(timeout=0.1)
        return before, during

    assert asyncio.run(scenario()) == (3, 3)


def test_delivered_spool_segment_is_removed(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    Spool(spool_dir).append([sample_footprint(i).to_bytes() for i in range(3)])
    sent: list[bytes] = []

    async def accept(_producer: object, batch: list) -> list:
        sent.extend(value for _, value, *_ in batch)
        return []

    async def scenario() -> FootprintProducer:
        producer = _with_fake_broker(
            FootprintProducer(UNREACHABLE, "footprints", spool_dir=spool_dir), accept
        )
        await producer.start()
        producer.offer(sample_footprint(9))
        assert await producer.flush(timeout=2)
        await producer.stop(timeout=0.2)
        return producer

    producer = asyncio.run(scenario())
    assert len(sent) == 4
    assert producer.pending == 0
    assert Spool(spool_dir).count == 0
    assert _spooled_ids(spool_dir) == []
