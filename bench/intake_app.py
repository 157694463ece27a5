"""Faust's intake alone: the worker's app, footprint topic and batches, and no pass.

``faust -A bench.intake_app worker`` runs ``streams.app`` as the worker does (its patches, its
topic buffers, ``take_ready`` batches acknowledged when the next is asked for) with one agent
that only counts the events handed to it: what Faust's per-message path costs on a topic,
the ceiling of any pass over it. Used by ``bench.worker.run_intake``: once
``FOOTPRINT_BENCH_INTAKE_N`` events are taken, it writes the ``time.monotonic()`` of its first
and last batch as JSON to ``FOOTPRINT_BENCH_INTAKE_OUT``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from faust.types import StreamT

from footprint import heap
from footprint.settings import get_settings
from streams.app import app
from streams.topics import footprints_topic

# The worker's own agents are not discovered: this agent is the only one on the topic.
app.conf.autodiscover = False

_settings = get_settings()
_N = int(os.environ["FOOTPRINT_BENCH_INTAKE_N"])
_OUT = Path(os.environ["FOOTPRINT_BENCH_INTAKE_OUT"])


def _write(text: str) -> None:
    """Write the report whole: the runner reads it as soon as the file exists."""
    partial = _OUT.with_suffix(".part")
    partial.write_text(text)
    partial.replace(_OUT)


@app.agent(footprints_topic)
async def intake(stream: StreamT) -> None:
    """Take the topic in the worker's batches; report when N events are taken."""
    heap.hold_batches()  # as the worker's agent
    taken, batches, first, reported = 0, 0, None, False
    async for events in stream.take_ready(  # type: ignore[attr-defined]
        _settings.batch_size, _settings.batch_seconds, max_bytes=_settings.batch_max_bytes
    ):
        now = time.monotonic()
        first = now if first is None else first
        taken += len(events)
        batches += 1
        if taken >= _N and not reported:
            reported = True
            report = {"first": first, "last": now, "events": taken, "batches": batches}
            _write(json.dumps(report))
