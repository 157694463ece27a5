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


def _run(child: str) -> str:
    """Run ``child`` with the worker's settings; its last line of output."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    with tempfile.TemporaryDirectory() as data:
        env = {**base, **VALID, "FOOTPRINT_DATA_DIR": data, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", child], cwd=data, env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_the_applied_mark_follows_a_flush_after_the_stores_and_counts() -> None:
    # A replay skips what the "applied" mark calls done: the mark must not reach its changelog
    # before the batch's window counts reach theirs (records of different changelog topics
    # are not acknowledged in send order), so the producer is flushed in between.
    order = json.loads(_run(CHILD))
    assert order == [
        "mark before_write",
        "flush",
        "stores: 3 footprints",
        "flush",
        "mark after_write",
    ]


TODO_CHILD = r"""
import json
from uuid import UUID

import streams.agents.footprints as agent
from tests.unit.streams.events import Message, Event

class Fp:  # what the choice reads of a footprint
    def __init__(self, n):
        self.event_id = UUID(int=n)

single = Event(b"{}", Message(0, 5))
pack = Event(b"[]", Message(0, 6))
again = Event(b"{}", Message(0, 5))  # the record at (0, 5) read again in the same batch
other = Event(b"{}", Message(0, 7))  # another copy of event 1, at another offset
written = Event(b"{}", Message(1, 3))  # every store has it: (1, 3) <= applied
doubt = Event(b"{}", Message(1, 4))  # in flight when the worker stopped: written again
agent.PROGRESS = {"1": {"applied": 3, "inflight": 4}}
good = [
    (single, Fp(1)),
    (pack, Fp(1)), (pack, Fp(2)), (pack, Fp(1)), (pack, Fp(3)), (pack, Fp(2)),
    (again, Fp(1)),
    (other, Fp(1)),
    (written, Fp(4)),
    (doubt, Fp(5)),
]
events = [single, pack, again, other, written, doubt]
done = agent._done(events, agent._applied({ev.message.partition for ev in events}))
todo = agent._todo(good, done)
print(json.dumps({
    "done": [ev.message.offset for ev in (single, pack, again, other, written, doubt)
             if id(ev) in done],
    "todo": [[ev.message.partition, ev.message.offset, fp.event_id.int] for ev, fp in todo],
}))
"""


def test_each_copy_of_an_event_is_written_once_and_done_events_not_at_all() -> None:
    result = json.loads(_run(TODO_CHILD))
    assert result["done"] == [3]
    assert result["todo"] == [
        [0, 5, 1],
        [0, 6, 1],  # a pack's repeats of an event are dropped, its other events kept
        [0, 6, 2],
        [0, 6, 3],
        [0, 7, 1],  # the same event at another offset: the record decides which counts
        [1, 4, 5],
    ]
