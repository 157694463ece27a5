"""``footprint backfill FILE``: import history, footprints older than the event-time policy.

    footprint backfill access-2025.jsonl
    zcat old/*.jsonl.gz | footprint backfill -

Each line is one footprint in any format the topic accepts (at least ``method`` and ``link``;
``footprint_time`` with any UTC offset). They go straight to the footprints topic with the
``footprint-backfill`` header, so the worker holds them to the hard bounds only (from 2000, at
most five minutes ahead) instead of ``FOOTPRINT_EVENT_MAX_AGE``. It needs the broker, not the
API: importing history is an operator's act, not something a visitor can do.

A line without an ``event_id`` gets one derived from its content and position, so importing
the same file twice stores each footprint once. Invalid lines are reported with their line
number and skipped; the exit status is 1 when there were any.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from footprint.ids import content_id
from footprint.schema import Footprint
from footprint.settings import Settings
from footprint.timepolicy import BACKFILL_HEADER

__all__ = ["BackfillResult", "backfill", "prepare"]

HEADERS = [(BACKFILL_HEADER, b"1")]


@dataclass
class BackfillResult:
    """What an import sent, and the lines it could not use (line number, reason)."""

    sent: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)


def prepare(number: int, line: bytes) -> Footprint:
    """The footprint of one input line, with a content-derived id when it has none."""
    fp = Footprint.from_bytes(line)
    if fp.event_id is None:
        ms = int(fp.timestamp * 1000) if fp.footprint_time is not None else 0
        fp = fp.model_copy(update={"event_id": content_id(ms, b"%d\0" % number + line)})
    return fp


async def backfill(
    settings: Settings, lines: Iterable[bytes], *, chunk: int = 5_000
) -> BackfillResult:
    """Send every valid line to the footprints topic, marked as history; wait for the acks."""
    result = BackfillResult()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=20
    )
    await producer.start()
    try:
        pending: list[asyncio.Future[object]] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                fp = prepare(number, line.strip())
            except (ValidationError, ValueError) as e:
                result.invalid.append((number, _reason(e)))
                continue
            pending.append(
                await producer.send(
                    settings.footprints_topic,
                    fp.to_bytes(),
                    key=fp.link.encode(),
                    headers=HEADERS,
                )
            )
            if len(pending) >= chunk:
                await asyncio.gather(*pending)
                result.sent += len(pending)
                pending.clear()
        await asyncio.gather(*pending)
        result.sent += len(pending)
    finally:
        await producer.stop()
    return result


def _reason(e: Exception) -> str:
    if isinstance(e, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in e.errors()
        )
    return str(e)


def main(settings: Settings, path: str, out: IO[str] = sys.stderr) -> int:
    """Run an import from ``path`` (``-``: standard input); print what happened."""
    try:
        with contextlib.ExitStack() as stack:
            source: IO[bytes] = (
                stack.enter_context(open(sys.stdin.fileno(), "rb", closefd=False))
                if path == "-"
                else stack.enter_context(open(path, "rb"))
            )
            result = asyncio.run(backfill(settings, source))
    except OSError as e:
        print(f"footprint backfill: cannot read {path}: {e.strerror}", file=out)
        return 2
    for number, reason in result.invalid[:100]:
        print(f"line {number}: {reason}", file=out)
    if len(result.invalid) > 100:
        print(f"… and {len(result.invalid) - 100} more invalid lines", file=out)
    print(
        f"sent {result.sent} footprints to {settings.footprints_topic} as history; "
        f"{len(result.invalid)} invalid lines skipped",
        file=out,
    )
    return 1 if result.invalid else 0
