"""footprint/ids.py: time-ordered event ids."""

from __future__ import annotations

import os
import time
import uuid

from footprint.ids import message_id, uuid7, uuid7_from, uuid7_text
from footprint.schema import FootprintIn
from schemas.community import FollowUser


def test_uuid7_carries_its_version_variant_and_creation_time() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after


def test_uuid7s_of_later_milliseconds_sort_after_and_never_repeat() -> None:
    first = uuid7()
    time.sleep(0.002)
    later = [uuid7() for _ in range(10_000)]
    assert all(first < v for v in later)
    assert len(set(later)) == len(later)


def test_events_minted_here_get_uuid7_and_client_ids_are_kept() -> None:
    assert FootprintIn(method="GET", link="/").event_id.version == 7
    assert FollowUser(actor_id="a", followed_id="b").event_id.version == 7
    mine = uuid.uuid4()
    assert FootprintIn(method="GET", link="/", event_id=mine).event_id == mine


def test_message_ids_are_deterministic_time_ordered_uuid8s() -> None:
    first = message_id(1_764_456_902_000, "footprints", 1, 7)
    assert first.version == 8 and first.variant == uuid.RFC_4122
    assert first.int >> 80 == 1_764_456_902_000
    assert message_id(1_764_456_902_000, "footprints", 1, 7) == first
    assert message_id(1_764_456_902_001, "footprints", 0, 0) > first
    others = {
        message_id(1_764_456_902_000, topic, partition, offset, index)
        for topic in ("footprints", "other")
        for partition in range(4)
        for offset in range(50)
        for index in range(3)
    }
    assert len(others) == 2 * 4 * 50 * 3


def test_uuid7_text_is_the_text_of_uuid7_from() -> None:
    for ms in (0, 1, 1_764_480_000_000, 2**48 - 1):
        for _ in range(200):
            random = os.urandom(10)
            assert uuid7_text(ms, random) == str(uuid7_from(ms, random))
