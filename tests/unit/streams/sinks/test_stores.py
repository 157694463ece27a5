"""streams/sinks: the pass's two steps have their own contracts, built from the settings."""

from __future__ import annotations

from pathlib import Path

from streams.sinks import Claimer, Sink, build_stores
from streams.sinks.clickhouse import ClickHouseSink
from streams.sinks.postgres import PostgresSink
from streams.sinks.redis import RedisSink
from tests.unit.offline import offline_settings


def test_the_record_claims_and_the_other_stores_are_written_after_it(tmp_path: Path) -> None:
    stores = build_stores(offline_settings(tmp_path))
    assert isinstance(stores.record, PostgresSink) and isinstance(stores.record, Claimer)
    assert [type(s) for s in stores.others] == [ClickHouseSink, RedisSink]
    assert all(isinstance(s, Sink) for s in stores.others)
    # Which stores a refused batch is split for: those that keep footprints one by one.
    assert [s.keeps_footprints for s in stores.others] == [True, False]
