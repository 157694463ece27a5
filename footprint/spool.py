"""The producer's spool: footprints waiting on local disk while the broker is unreachable.

One JSON value per line, in segment files delivered oldest first; a segment is deleted (or
rewritten atomically with what is left) only once the broker has acknowledged its values.
"""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["Spool"]


class Spool:
    """Footprints waiting on disk, one JSON value per line, in segments delivered oldest first."""

    def __init__(self, directory: Path, segment_events: int = 10_000) -> None:
        self.directory = directory
        self.segment_events = segment_events
        self._current: Path | None = None
        self._current_count = 0
        self.count = sum(1 for _ in self._lines()) if directory.exists() else 0

    def _lines(self):  # noqa: ANN202 - internal generator
        for segment in self.segments():
            with segment.open("rb") as f:
                yield from f

    def segments(self) -> list[Path]:
        """Segment files, oldest first."""
        if not self.directory.exists():
            return []
        return sorted(self.directory.glob("spool-*.jsonl"))

    def append(self, values: list[bytes]) -> None:
        """Write values to the newest segment, starting a new one when it is full."""
        if not values:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._current is None or self._current_count >= self.segment_events:
            self._current = self.directory / f"spool-{time.time_ns():020d}.jsonl"
            self._current_count = 0
        with self._current.open("ab") as f:
            f.write(b"\n".join(values) + b"\n")
        self._current_count += len(values)
        self.count += len(values)

    def take_oldest(self) -> tuple[Path, list[bytes]] | None:
        """The oldest segment and its values; it stays on disk until ``done()``."""
        for segment in self.segments():
            if segment == self._current:
                self._current = None  # stop appending to a segment being delivered
            values = [line.rstrip(b"\n") for line in segment.read_bytes().splitlines() if line]
            return segment, values
        return None

    def done(self, segment: Path, count: int) -> None:
        """Forget a segment whose values were all delivered."""
        segment.unlink(missing_ok=True)
        self.count = max(0, self.count - count)

    def rewrite(self, segment: Path, count: int, remaining: list[bytes]) -> None:
        """Keep only the undelivered values of a segment (atomically), or drop it if none."""
        if not remaining:
            self.done(segment, count)
            return
        tmp = segment.with_suffix(".tmp")
        tmp.write_bytes(b"\n".join(remaining) + b"\n")
        tmp.replace(segment)
        self.count = max(0, self.count - count + len(remaining))
