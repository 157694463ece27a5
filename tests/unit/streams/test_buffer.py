"""``ByteBoundedQueue``: full by messages or by the bytes of their values; memory stays bounded."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mode.utils.queues import FlowControlEvent

from streams.buffer import ByteBoundedQueue, value_size


@dataclass
class Event:
    value: Any


def _queue(maxsize: int = 100, max_bytes: int = 10) -> ByteBoundedQueue:
    flow = FlowControlEvent()
    flow.resume()  # as a running worker's: puts wait for room only
    return ByteBoundedQueue(
        maxsize=maxsize, max_bytes=max_bytes, flow_control=flow, clear_on_resume=True
    )


def test_full_once_the_values_reach_max_bytes_and_free_again_as_they_are_taken() -> None:
    async def scenario() -> None:
        q = _queue(max_bytes=10)
        q.put_nowait(Event(b"12345"))
        assert not q.full()
        q.force_put_nowait(Event(b"123456"))  # Faust's way in: counted too
        assert q.bytes == 11 and q.full()
        assert q.get_nowait().value == b"12345"
        assert q.bytes == 6 and not q.full()
        assert (await q.get()).value == b"123456"
        assert q.bytes == 0 and q.empty()

    asyncio.run(scenario())


def test_full_by_messages_whatever_their_size() -> None:
    q = _queue(maxsize=2, max_bytes=10**9)
    q.put_nowait(Event(None))
    q.put_nowait(Event("not bytes"))
    assert q.full() and q.bytes == 0


def test_a_waiting_put_goes_in_when_bytes_are_taken_out() -> None:
    async def scenario() -> list[bytes]:
        q = _queue(max_bytes=4)
        q.put_nowait(Event(b"abcd"))
        put = asyncio.ensure_future(q.put(Event(b"ef")))
        await asyncio.sleep(0.01)
        assert not put.done(), "a put into a queue full of bytes went in"
        first = q.get_nowait()
        await asyncio.wait_for(put, 1)
        return [first.value, q.get_nowait().value]

    assert asyncio.run(scenario()) == [b"abcd", b"ef"]


def test_clear_forgets_the_bytes() -> None:
    q = _queue(max_bytes=4)
    q.put_nowait(Event(b"abcdef"))
    q.clear()
    assert q.bytes == 0 and not q.full()


def test_value_size() -> None:
    assert value_size(Event(b"abc")) == 3
    assert value_size(Event(None)) == value_size(Event({"a": 1})) == value_size(object()) == 0


_PROBE = """
import asyncio
from streams.topics import footprints_topic, notifications_topic

async def main():
    for topic in (footprints_topic, notifications_topic):
        queue = topic.clone(is_iterator=False).queue
        print(type(queue).__name__, queue.maxsize, queue.max_bytes)

asyncio.run(main())
"""


@pytest.mark.parametrize(("batch_size", "buffer"), [(30_000, 30_000), (500, 4096)])
def test_the_worker_buffers_a_batch_of_footprints_bounded_in_bytes(
    tmp_path: Path, batch_size: int, buffer: int
) -> None:
    """The footprint agent's buffer holds a batch (at least Faust's 4,096 messages), and every
    buffer of the worker is bounded by FOOTPRINT_BATCH_MAX_BYTES (App.topic would drop maxsize)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    env.update(
        FOOTPRINT_KAFKA_URL="kafka://127.0.0.1:1",
        FOOTPRINT_DATA_DIR=str(tmp_path),
        FOOTPRINT_BATCH_SIZE=str(batch_size),
        FOOTPRINT_BATCH_MAX_BYTES="2048",
    )
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == [
        f"ByteBoundedQueue {buffer} 2048",
        "ByteBoundedQueue 4096 2048",
    ]
