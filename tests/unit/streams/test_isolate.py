"""Finding the items a store refuses by bisection, against in-memory stores."""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from footprint.schema import Footprint
from streams.isolate import isolate, isolate_batch
from streams.sinks.base import Batch, StoreRefused


class PoisonStore:
    """Stores a whole write, or nothing when it holds a poison item (like a transaction)."""

    def __init__(self, poison: set[int]) -> None:
        self.poison = poison
        self.stored: list[int] = []
        self.writes = 0

    async def write(self, items: Sequence[int]) -> int:
        self.writes += 1
        bad = self.poison.intersection(items)
        if bad:
            raise StoreRefused("fake", f"cannot take {min(bad)}")
        self.stored.extend(items)
        return len(items)


def test_three_poison_items_among_1000_are_found_in_o_k_log_n_writes() -> None:
    rng = random.Random(7)
    items = list(range(1000))
    poison = set(rng.sample(items, 3))
    store = PoisonStore(poison)

    found = asyncio.run(isolate(items, store.write))

    assert {item for item, _ in found.refused} == poison
    assert all(f"cannot take {item}" == e.message for item, e in found.refused)
    assert sorted(store.stored) == sorted(set(items) - poison)  # each good item exactly once
    assert sum(found.results) == 997
    assert found.writes == store.writes
    assert store.writes <= 1 + 2 * 3 * math.ceil(math.log2(1000))  # 61, not 1000


@pytest.mark.parametrize("seed", range(20))
def test_any_placement_of_poison_items_is_isolated_exactly(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 300)
    items = list(range(n))
    poison = set(rng.sample(items, rng.randint(0, min(n, 8))))
    store = PoisonStore(poison)

    found = asyncio.run(isolate(items, store.write))

    assert sorted(item for item, _ in found.refused) == sorted(poison)
    assert sorted(store.stored) == sorted(set(items) - poison)


def test_a_clean_batch_is_one_write_and_an_empty_one_none() -> None:
    store = PoisonStore(set())
    assert asyncio.run(isolate(list(range(500)), store.write)).writes == 1
    assert asyncio.run(isolate([], store.write)).writes == 0
    assert store.writes == 1


def test_an_exception_that_is_not_a_refusal_is_not_taken_for_one() -> None:
    async def buggy(items: Sequence[int]) -> None:
        raise KeyError("a bug of ours")

    with pytest.raises(KeyError):
        asyncio.run(isolate([1, 2, 3], buggy))


class MonthlyStore:
    """Like the ClickHouse sink: inserts month by month, so a refusal can leave earlier months
    in; the in-doubt footprints of a batch are checked before inserting."""

    def __init__(self, poison: set[uuid.UUID]) -> None:
        self.poison = poison
        self.rows: list[uuid.UUID] = []

    async def write(self, batch: Batch) -> None:
        held = set(self.rows)
        todo = [
            fp
            for fp in batch.footprints
            if fp.event_id not in batch.in_doubt or fp.event_id not in held
        ]
        months: dict[int, list[Footprint]] = {}
        for fp in todo:
            assert fp.footprint_time is not None
            months.setdefault(fp.footprint_time.month, []).append(fp)
        for month in sorted(months):
            if self.poison & {fp.event_id for fp in months[month]}:
                raise StoreRefused("monthly", "no")
            self.rows += [fp.event_id for fp in months[month]]


def test_a_partly_stored_refused_batch_stores_each_good_footprint_once() -> None:
    footprints = [
        Footprint(
            event_id=uuid.uuid4(),
            method="GET",
            link=f"/p/{i}",
            footprint_time=datetime(2024, 1 + i % 6, 1, tzinfo=UTC),
        )
        for i in range(120)
    ]
    poison = {footprints[100].event_id, footprints[17].event_id}  # months 5 and 6
    store = MonthlyStore(poison)

    refused = asyncio.run(isolate_batch(Batch(footprints=footprints), store.write))

    assert sorted(i for i, _ in refused) == [17, 100]
    good = [fp.event_id for fp in footprints if fp.event_id not in poison]
    assert sorted(store.rows) == sorted(good), "every good footprint once, months 1-4 included"
