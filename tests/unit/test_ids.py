"""footprint/ids.py: time-ordered event ids."""

from __future__ import annotations

import time
import uuid

from footprint.ids import uuid7
from schemas.community import FollowUser
from schemas.footprint import FootprintIn


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
