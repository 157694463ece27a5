"""What the worker reports about itself: kept in memory, published to Redis every few seconds.

The API's ``/api/stream/status`` reads these heartbeats (the worker may run in another process
or on another host) and adds committed offsets and lag from Kafka.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field

__all__ = ["FAILURE_KINDS", "WorkerStatus", "status"]

HEARTBEAT_TTL = 15
# How a store write failed (streams/sinks/base.py, streams/retry.py): the store is down, the
# store refused some items (dead-lettered), or the worker's own code raised.
FAILURE_KINDS = ("unavailable", "refused", "bug")


@dataclass
class WorkerStatus:
    """Counters and the last error of this worker process."""

    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    started_at: float = field(default_factory=time.time)
    processed: int = 0
    stored: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    rewinds: int = 0
    notification_events: int = 0
    notifications: int = 0
    batches: int = 0
    last_batch_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    # The last bug (an exception that is neither kind of store failure), with where it was raised.
    last_bug: str | None = None
    last_bug_at: float | None = None
    # Per store: "ok", "unavailable" (retrying an outage) or "bug" (retrying after a bug).
    sinks: dict[str, str] = field(default_factory=dict)
    # Per store and FAILURE_KINDS: failed attempts (unavailable, bug) and refused items.
    failures: dict[str, dict[str, int]] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)

    def error(self, message: str) -> None:
        """Remember the latest error."""
        self.last_error = message
        self.last_error_at = time.time()

    def failed(self, store: str, kind: str, n: int = 1) -> None:
        """Count ``n`` failures of one kind at one store."""
        counts = self.failures.setdefault(store, dict.fromkeys(FAILURE_KINDS, 0))
        counts[kind] += n

    def bug(self, message: str) -> None:
        """Remember the latest bug (also the latest error)."""
        self.error(message)
        self.last_bug = message
        self.last_bug_at = self.last_error_at

    def to_json(self) -> str:
        """The heartbeat payload."""
        return json.dumps({**asdict(self), "heartbeat_at": time.time()})


status = WorkerStatus()
