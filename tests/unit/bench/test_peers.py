"""The window counts Quix Streams is checked against come from the records as sent."""

from __future__ import annotations

import time

from bench.peers import expected_windows
from bench.traffic import footprints
from footprint.records import to_record


def test_expected_windows_follow_the_timestamps_the_records_were_sent_with() -> None:
    items = footprints(4, end=time.time())
    # Sent across a minute boundary: two records in each minute.
    minute = 1_796_091_600_000
    records = [
        (key, value, ts, spooled)
        for (key, value, _, spooled), ts in zip(
            map(to_record, items), (minute - 2, minute - 1, minute, minute + 1), strict=True
        )
    ]
    expected = expected_windows(items, records)
    assert sum(expected.values()) == 4
    assert {start for _, start in expected} == {minute - 60_000, minute}
    for fp, (_, _, ts, _) in zip(items, records, strict=True):
        assert expected[(fp.link, ts // 60_000 * 60_000)] >= 1
