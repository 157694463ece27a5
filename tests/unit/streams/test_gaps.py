"""streams/gaps.py: seeking back over skipped offsets, and restarting a stalled partition.

The consumer is a stand-in recording what the guards ask of it (pure decision logic).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from streams import gaps
from streams.gaps import GapGuard, StallWatch

TOPIC = "footprints"


def sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


class Consumer:
    def __init__(self, partitions: int = 4, ends: dict[int, int] | None = None) -> None:
        self.assigned = {TP(TOPIC, p) for p in range(partitions)} | {TP("other", 0)}
        self.ends = ends or {}
        self.earliest = dict.fromkeys(range(partitions), 0)
        self.seeks: list[tuple[int, int]] = []
        self.resumed: list[int] = []
        self.flow_active = True

    def assignment(self) -> set[TP]:
        return self.assigned

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks += [(tp.partition, offset) for tp, offset in partitions.items()]

    def resume_partitions(self, tps: set[TP]) -> None:
        self.resumed += [tp.partition for tp in tps]

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.ends.get(tp.partition, 0) for tp in tps}

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.earliest[tp.partition] for tp in tps}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(gaps.time, "monotonic", c)
    return c


def _app(consumer: Consumer) -> Any:
    return SimpleNamespace(consumer=consumer, rebalancing=False)


def _events(*pairs: tuple[int, int]) -> list[Any]:
    return [SimpleNamespace(message=SimpleNamespace(partition=p, offset=o)) for p, o in pairs]


@sync
async def test_a_jump_drops_the_rest_of_that_partition_and_seeks_back_once(clock: Clock) -> None:
    consumer = Consumer()
    guard = GapGuard(_app(consumer), TOPIC)
    events = _events((3, 78), (1, 5), (3, 92), (1, 6))
    kept = await guard.contiguous(events, {3: 77, 1: 4})
    assert [(e.message.partition, e.message.offset) for e in kept] == [(3, 78), (1, 5), (1, 6)]
    # 92 came, 79 is next: seek there, and drop what still arrives from before the seek.
    assert await guard.contiguous(_events((3, 93)), {3: 78}) == []
    assert consumer.seeks == [(3, 79)]
    clock.now += 3  # the seek did not bring 79: seek again
    assert await guard.contiguous(_events((3, 94)), {3: 78}) == []
    assert consumer.seeks == [(3, 79), (3, 79)]
    kept = await guard.contiguous(_events((3, 79), (3, 80)), {3: 78})
    assert len(kept) == 2


@sync
async def test_a_partition_never_written_starts_at_its_earliest_offset(clock: Clock) -> None:
    consumer = Consumer()
    consumer.earliest[3] = 40  # retention removed 0..39
    guard = GapGuard(_app(consumer), TOPIC)
    # Taken over with no committed offset, the consumer started at the partition's end.
    assert await guard.contiguous(_events((3, 1661), (3, 1662)), {}) == []
    assert consumer.seeks == [(3, 40)]
    kept = await guard.contiguous(_events((3, 40), (3, 41)), {3: -1})  # in flight, not applied
    assert len(kept) == 2


@sync
async def test_records_removed_by_retention_are_a_gap_taken(clock: Clock) -> None:
    consumer = Consumer()
    consumer.earliest[0] = 500
    guard = GapGuard(_app(consumer), TOPIC)
    kept = await guard.contiguous(_events((0, 500), (0, 501)), {0: 99})
    assert len(kept) == 2 and consumer.seeks == []


@sync
async def test_a_missing_offset_that_never_comes_is_given_up_after_several_seeks(
    clock: Clock,
) -> None:
    consumer = Consumer()
    guard = GapGuard(_app(consumer), TOPIC, max_attempts=3)
    for _ in range(3):
        assert await guard.contiguous(_events((2, 50)), {2: 10}) == []
        clock.now += 3
    assert len(consumer.seeks) == 3
    assert len(await guard.contiguous(_events((2, 50)), {2: 10})) == 1


@sync
async def test_events_of_a_partition_no_longer_assigned_are_dropped_without_a_seek(
    clock: Clock,
) -> None:
    consumer = Consumer(partitions=2)
    guard = GapGuard(_app(consumer), TOPIC)
    consumer.assigned.discard(TP(TOPIC, 1))
    assert await guard.contiguous(_events((1, 9)), {1: 2}) == []
    assert consumer.seeks == []


@sync
async def test_a_quiet_partition_with_records_waiting_is_resumed_and_sought(clock: Clock) -> None:
    consumer = Consumer(ends={0: 100, 1: 50, 2: 7, 3: 0})
    watch = StallWatch(_app(consumer), TOPIC, after=10)
    assert await watch.check({0: 99, 1: 20, 2: -1}) == []  # a new assignment starts afresh
    clock.now += 5
    watch.pass_started()
    watch.pass_ended({0}, took=0.1)
    clock.now += 6
    # 0 delivered lately; 1 waits from 21; 2 was never written and waits from 0; 3 is empty.
    assert sorted(await watch.check({0: 99, 1: 20, 2: -1})) == [1, 2]
    assert sorted(consumer.seeks) == [(1, 21), (2, 0)]
    assert sorted(consumer.resumed) == [1, 2]
    assert await watch.check({0: 99, 1: 20, 2: -1}) == [], "the restarted ones get time again"


@sync
async def test_nothing_is_restarted_while_a_pass_runs_or_after_a_long_one(clock: Clock) -> None:
    consumer = Consumer(ends={0: 100})
    watch = StallWatch(_app(consumer), TOPIC, after=10)
    await watch.check({0: 10})
    clock.now += 30
    watch.pass_started()  # e.g. a store outage: nothing is fetched meanwhile, by design
    assert await watch.check({0: 10}) == []
    watch.pass_ended({1}, took=30)
    assert await watch.check({0: 10}) == []
    assert consumer.seeks == []
    clock.now += 11
    assert await watch.check({0: 10}) == [0]
