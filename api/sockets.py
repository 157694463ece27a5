"""Caps on open WebSockets, per user and in all, for one API process.

Every socket holds a task, a queue or a subscription and a file descriptor: without a bound, one
client opening sockets in a loop takes the process down for everyone. ``/ws`` counts per user
(the token's subject), ``/ws/live`` per user too (a stats credential). A socket over
a cap is accepted and closed at once with a code and a reason the client can show: 1008 (policy)
when its user has too many open, 1013 (try again later) when the process is full.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

__all__ = ["POLICY_VIOLATION", "TRY_AGAIN_LATER", "Refusal", "SocketCaps"]

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


@dataclass(frozen=True)
class Refusal:
    """Why a socket was not admitted: the close code and reason to send."""

    code: int
    reason: str


class SocketCaps:
    """Counts open sockets per ``(endpoint, who)`` and in all; refuses those over a cap."""

    def __init__(self, per_user: int, total: int) -> None:
        self.per_user = per_user
        self.total = total
        self._open: Counter[tuple[str, str]] = Counter()
        self.refused = 0

    @property
    def open(self) -> int:
        """Open sockets in this process, every endpoint."""
        return self._open.total()

    def count(self, endpoint: str) -> int:
        """Open sockets of one endpoint."""
        return sum(n for (e, _), n in self._open.items() if e == endpoint)

    def acquire(self, endpoint: str, who: str) -> Refusal | None:
        """Count one more socket of ``who`` on ``endpoint``, or say why not (nothing counted)."""
        if self.open >= self.total:
            self.refused += 1
            return Refusal(TRY_AGAIN_LATER, f"server full ({self.total} sockets): try again later")
        if self._open[endpoint, who] >= self.per_user:
            self.refused += 1
            return Refusal(
                POLICY_VIOLATION, f"too many sockets ({self.per_user}) open: close one first"
            )
        self._open[endpoint, who] += 1
        return None

    def release(self, endpoint: str, who: str) -> None:
        """Forget one socket counted by ``acquire``."""
        key = (endpoint, who)
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]
