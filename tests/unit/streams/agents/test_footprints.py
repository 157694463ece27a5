"""The footprint agent's pass, in the order its writes must become durable.

The Faust app is built when ``streams.agents.footprints`` is imported (settings read, Faust's
classes patched by ``streams/compat.py``), so the pass runs in a child process of its own,
with stand-ins for the stores, the gap guard and the progress marks; no server is reached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.unit.footprint.samples import VALID

ROOT = Path(__file__).resolve().parents[4]

CHILD = r"""
import asyncio, json, time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import streams.agents.footprints as agent
from footprint.schema import Footprint
from tests.unit.streams.events import Message, Event

order = []

async def flush():
    order.append("flush")

class Pass:
    async def run(self, todo):
        order.append(f"stores: {len(todo)} footprints")
        return list(todo)

async def contiguous(events, applied):
    return list(events)

agent.app.producer.flush = flush
agent._mark = lambda events, update: order.append(f"mark {update.__name__}")
agent.guard.contiguous = contiguous

now = time.time()
fps = [
    Footprint(event_id=uuid4(), method="GET", link=f"/p/{i}",
              footprint_time=datetime.fromtimestamp(now, UTC) - timedelta(seconds=i))
    for i in range(3)
]
events = [Event(fp.to_bytes(), Message(0, i, timestamp=now)) for i, fp in enumerate(fps)]
asyncio.run(agent.process(events, Pass()))
print(json.dumps(order))
"""


def test_the_applied_mark_follows_a_flush_after_the_stores_and_counts() -> None:
    # A replay skips what the "applied" mark calls done: the mark must not reach its changelog
    # before the batch's window counts reach theirs (records of different changelog topics
    # are not acknowledged in send order), so the producer is flushed in between.
    base = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    with tempfile.TemporaryDirectory() as data:
        env = {**base, **VALID, "FOOTPRINT_DATA_DIR": data, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", CHILD], cwd=data, env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    order = json.loads(done.stdout.strip().splitlines()[-1])
    assert order == [
        "mark before_write",
        "flush",
        "stores: 3 footprints",
        "flush",
        "mark after_write",
    ]
