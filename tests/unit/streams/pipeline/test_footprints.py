"""The footprint pass against in-memory stores: outages, refusals, duplicates and replays.

The stores are ``streams.sinks.memory`` stores standing for PostgreSQL (the record),
ClickHouse and Redis; the window tables are dictionaries. What is asserted is what a user
would see: which footprints each store holds, the visit counts, the dead letters' reasons.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from footprint.schema import Footprint
from footprint.windows import WINDOWS
from streams.counting import DERIVED
from streams.pipeline.footprints import FootprintPass, Pair
from streams.sinks import Stores
from streams.sinks.memory import MemorySink
from tests.unit.streams.events import event

MINUTE = datetime(2025, 6, 1, 12, 0, 30, tzinfo=UTC)


class Worker:
    """One pass's stores, tables and dead letters, kept across passes as a worker keeps them."""

    def __init__(self) -> None:
        self.postgres = MemorySink("postgres")
        self.clickhouse = MemorySink("clickhouse")
        self.redis = MemorySink("redis", keeps_footprints=False)
        self.letters: list[tuple[Any, str, bytes | None]] = []
        self.visits: dict[str, dict[Any, Any]] = {w: {} for w in WINDOWS if w not in DERIVED}
        self.site_visits: dict[str, dict[Any, Any]] = {w: {} for w in WINDOWS if w not in DERIVED}
        self.footprint_pass = FootprintPass(
            Stores(self.postgres, (self.clickhouse, self.redis)),
            self.dead_letter,
            self.visits,
            self.site_visits,
        )

    async def dead_letter(self, ev: Any, reason: str, item: bytes | None) -> None:
        self.letters.append((ev, reason, item))

    def run(self, todo: Sequence[Pair]) -> list[Pair]:
        return asyncio.run(self.footprint_pass.run(todo))

    def visits_of(self, link: str, window: str = "1m") -> int:
        """The link's visits in the window, summed over partitions, as the live API shows them."""
        return sum(
            value[0] for (key, _), value in self.visits[window].items() if key.endswith(f":{link}")
        )

    def live(self, link: str, window: str = "1m") -> int:
        """The link's count in Redis: the last absolute value written per partition."""
        last: dict[int | None, int] = {}
        for batch in self.redis.batches:
            for c in batch.counts:
                if c.window == window and c.link == link:
                    last[c.partition] = c.count
        return sum(last.values())


def footprints(n: int, link: str = "/a") -> list[Footprint]:
    return [
        Footprint(event_id=uuid.uuid4(), method="GET", link=link, footprint_time=MINUTE)
        for _ in range(n)
    ]


def read(fps: Sequence[Footprint], partition: int = 0, first: int = 0) -> list[Pair]:
    """Each footprint in a message of its own, at consecutive offsets."""
    return [(event(fp.to_bytes(), partition, first + i), fp) for i, fp in enumerate(fps)]


def test_outages_of_every_store_are_retried_and_nothing_is_lost() -> None:
    w = Worker()
    w.postgres.fail(2)
    w.clickhouse.fail(3)
    w.redis.fail(1)
    fps = footprints(10)

    stored = w.run(read(fps))

    assert [fp for _, fp in stored] == fps
    assert set(w.postgres.claims) == {fp.event_id for fp in fps}
    assert w.clickhouse.event_ids() == [fp.event_id for fp in fps]  # each once, in order
    assert w.visits_of("/a") == w.live("/a") == 10
    assert (w.postgres.attempts, w.clickhouse.attempts, w.redis.attempts) == (3, 4, 2)
    assert w.letters == []


def test_a_footprint_clickhouse_refuses_is_dead_lettered_alone_and_stored_everywhere_else() -> None:
    w = Worker()
    fps = footprints(10)
    todo = read(fps)
    w.clickhouse.refuse(fps[3].event_id, reason="Cannot parse input")

    w.run(todo)

    assert w.letters == [(todo[3][0], "clickhouse refused: Cannot parse input", None)]
    others = [fp.event_id for i, fp in enumerate(fps) if i != 3]
    assert sorted(w.clickhouse.event_ids()) == sorted(others)  # each once
    # The system of record has it, so it counts, in the tables and in Redis.
    assert set(w.postgres.claims) == {fp.event_id for fp in fps}
    assert w.visits_of("/a") == w.live("/a") == 10


def test_a_footprint_the_record_refuses_is_stored_and_counted_nowhere() -> None:
    w = Worker()
    fps = footprints(10)
    todo = read(fps)
    w.postgres.refuse(fps[7].event_id, reason="value too long for type character varying(2048)")

    stored = w.run(todo)

    assert w.letters == [
        (todo[7][0], "postgres refused: value too long for type character varying(2048)", None)
    ]
    assert fps[7] not in [fp for _, fp in stored]
    assert fps[7].event_id not in w.postgres.claims
    assert fps[7].event_id not in w.clickhouse.event_ids()
    assert len(w.clickhouse.event_ids()) == 9
    assert w.visits_of("/a") == w.live("/a") == 9


def test_a_refused_footprint_of_a_pack_is_dead_lettered_as_itself_not_the_pack() -> None:
    w = Worker()
    fps = footprints(4)
    pack = event(b"[" + b",".join(fp.to_bytes() for fp in fps) + b"]", 0, 0)
    w.clickhouse.refuse(fps[2].event_id, reason="TOO_LARGE_STRING_SIZE")

    w.run([(pack, fp) for fp in fps])

    assert w.letters == [(pack, "clickhouse refused: TOO_LARGE_STRING_SIZE", fps[2].to_bytes())]
    assert len(w.clickhouse.event_ids()) == 3


def test_the_record_decides_which_copy_of_an_event_counts() -> None:
    w = Worker()
    fps = footprints(3)
    w.run(read(fps, partition=1))
    # A producer's retry put second copies of fps[0] and fps[1] on partition 0, beside a new
    # footprint.
    new = footprints(1)[0]
    copies = read([fps[0], fps[1], new], partition=0, first=40)

    stored = w.run(copies)

    assert [fp for _, fp in stored] == [new]
    assert w.clickhouse.event_ids() == [fp.event_id for fp in [*fps, new]]
    assert w.postgres.claims[fps[0].event_id] == (1, 0)  # still the first copy
    assert w.visits_of("/a") == w.live("/a") == 4


def test_two_copies_in_one_batch_count_once() -> None:
    w = Worker()
    fp = footprints(1)[0]

    stored = w.run([*read([fp], first=0), *read([fp], first=1)])

    assert len(stored) == 1 and stored[0][0].message.offset == 0
    assert w.clickhouse.event_ids() == [fp.event_id]
    assert w.visits_of("/a") == 1


def test_a_batch_delivered_again_after_a_crash_is_not_counted_twice() -> None:
    w = Worker()
    fps = footprints(5) + footprints(3, link="/b")
    todo = read(fps)
    w.run(todo)

    again = w.run(todo)  # offsets not committed: the same messages are read again

    assert len(again) == 8  # the same copies count, as before
    assert w.visits_of("/a") == w.live("/a") == 5
    assert w.visits_of("/b") == w.live("/b") == 3
    assert w.visits_of("/a", "1h") == w.live("/a", "1h") == 5
    assert w.live("/a", "5m") == 5  # summed from the 1-minute table
    # ClickHouse is told that every footprint may be there already (it checks before inserting).
    assert w.clickhouse.batches[-1].in_doubt == {fp.event_id for fp in fps}
    assert w.clickhouse.batches[0].in_doubt == frozenset()


def test_a_live_count_redis_refuses_dead_letters_no_footprint() -> None:
    w = Worker()
    fps = footprints(4)
    w.redis.refuse(fps[0].event_id, reason="WRONGTYPE Operation against a key")

    w.run(read(fps))

    assert w.letters == []  # no footprint is to blame for a count
    assert len(w.clickhouse.event_ids()) == 4
    assert w.visits_of("/a") == 4
