"""The middleware keeps the site up and the footprints safe while the broker is unreachable."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from fastapi.testclient import TestClient

from footprint.middleware import FootprintMiddleware
from footprint.producer import FootprintProducer
from footprint.stack import KafkaServer, free_port
from tests.integration.traffic import host_app

pytestmark = pytest.mark.integration


async def _consume(bootstrap: str, topic: str, want: int, timeout: float = 60) -> list[dict]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out: list[dict] = []
    try:
        async with asyncio.timeout(timeout):
            while len(out) < want:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for r in records:  # packs of footprints, or single ones
                        value = json.loads(r.value)
                        out.extend(value if isinstance(value, list) else [value])
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return out


def test_requests_succeed_without_broker_and_footprints_arrive_later(tmp_path: Path) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    # A small memory bound so part of the backlog goes through the disk spool too.
    producer = FootprintProducer(
        bootstrap, "outage", max_buffer=50, spool_dir=tmp_path / "spool", request_timeout_ms=1000
    )
    app = host_app()
    app.add_middleware(FootprintMiddleware, producer=producer)

    with TestClient(app) as client:
        client.portal.call(producer.start)  # type: ignore[union-attr]
        statuses = [client.get(f"/posts/{i % 7}").status_code for i in range(300)]
        assert statuses == [200] * 300
        # The captured requests are built in the background: do it now rather than wait.
        client.portal.call(producer.collect)  # type: ignore[union-attr]
        assert producer.stats.delivered == 0
        assert producer.pending == 300
        assert producer.stats.spooled == 250

        broker = KafkaServer(tmp_path / "kafka", port=port).start()
        try:
            flushed = client.portal.call(producer.flush, 60)  # type: ignore[union-attr]
            assert flushed, producer.stats
            received = asyncio.run(_consume(bootstrap, "outage", 300))
        finally:
            client.portal.call(producer.stop)  # type: ignore[union-attr]
            broker.stop()

    ids = [m["event_id"] for m in received]
    assert len(ids) == 300 and len(set(ids)) == 300
    assert sorted(m["link"] for m in received) == sorted(f"/posts/{i % 7}" for i in range(300))
    assert not list((tmp_path / "spool").glob("*.jsonl")), "delivered spool segments are removed"
