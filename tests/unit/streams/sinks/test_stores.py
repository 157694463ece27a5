"""streams/sinks: the passes' two steps have their own contracts, built from the settings."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from schemas.community import FollowUser
from streams.sinks import (
    Claimer,
    Delivery,
    FanOut,
    Inbox,
    Sink,
    Store,
    StoreUnavailable,
    build_notification_stores,
    build_stores,
)
from streams.sinks.clickhouse import ClickHouseSink
from streams.sinks.memory import MemoryFanOut, MemoryInbox, MemorySink
from streams.sinks.notifications import PostgresInbox, RedisFanOut
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


def test_the_inbox_is_the_notifications_record_and_the_fan_out_comes_after(
    tmp_path: Path,
) -> None:
    stores = build_notification_stores(offline_settings(tmp_path))
    assert isinstance(stores.inbox, PostgresInbox) and isinstance(stores.inbox, Inbox)
    assert isinstance(stores.fan_out, RedisFanOut) and isinstance(stores.fan_out, FanOut)
    assert isinstance(stores.inbox, Store) and isinstance(stores.fan_out, Store)


def test_the_in_memory_stores_keep_the_same_contracts() -> None:
    sink = MemorySink()
    assert isinstance(sink, Sink) and isinstance(sink, Claimer)
    assert isinstance(MemoryInbox(), Inbox) and isinstance(MemoryFanOut(), FanOut)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_notification_stores_report_a_server_that_is_not_there_as_an_outage() -> None:
    port = closed_port()
    event = FollowUser(actor_id="alice", followed_id="bob")
    inbox = PostgresInbox(f"postgresql://footprint@127.0.0.1:{port}/footprint")
    fan_out = RedisFanOut(f"redis://127.0.0.1:{port}/0")
    row = {"id": 1, "user": "bob", "payload": event.model_dump(mode="json")}

    with pytest.raises(StoreUnavailable, match="^notifications-postgres: cannot connect"):
        asyncio.run(inbox.write([event]))
    with pytest.raises(StoreUnavailable, match="^notifications-redis: ConnectionError"):
        asyncio.run(fan_out.write(Delivery([row], {"bob": 1})))
    asyncio.run(fan_out.close())
