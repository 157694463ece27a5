"""The notification pass against in-memory stores: outages, refusals and replays.

The inbox stands for PostgreSQL's ``user_notifications`` (one row per event and recipient),
the fan-out for Redis's recent lists and live channel. Asserted: which notifications exist,
which reach their recipients live and with which unread count, and the dead letters' reasons.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from schemas.community import CommunityEvent, FollowUser, PenaltyUser
from streams.pipeline.notifications import NotificationPass, Pair
from streams.sinks import NotificationStores
from streams.sinks.memory import MemoryFanOut, MemoryInbox
from tests.unit.streams.events import event


class Worker:
    def __init__(self) -> None:
        self.inbox = MemoryInbox("notifications-postgres")
        self.fan_out = MemoryFanOut("notifications-redis")
        self.letters: list[tuple[Any, str, bytes | None]] = []
        self.notification_pass = NotificationPass(
            NotificationStores(self.inbox, self.fan_out), self.dead_letter
        )

    async def dead_letter(self, ev: Any, reason: str, item: bytes | None) -> None:
        self.letters.append((ev, reason, item))

    def run(self, good: Sequence[Pair]) -> None:
        asyncio.run(self.notification_pass.run(good))

    def notified(self) -> list[tuple[str, str]]:
        """(recipient, event id) of every notification stored."""
        return sorted((r["user"], r["payload"]["event_id"]) for r in self.inbox.rows.values())

    def delivered(self) -> list[tuple[str, str, int]]:
        """(recipient, event id, unread count) of every live delivery, in order."""
        return [(r["user"], r["payload"]["event_id"], n) for r, n in self.fan_out.deliveries]


def read(events: Sequence[CommunityEvent]) -> list[Pair]:
    return [(event(e.to_bytes(), 0, i, "community-events"), e) for i, e in enumerate(events)]


def follows(n: int) -> list[CommunityEvent]:
    return [FollowUser(actor_id="alice", followed_id=f"user{i}") for i in range(n)]


def test_outages_of_both_stores_are_retried_and_every_recipient_is_notified_once() -> None:
    w = Worker()
    w.inbox.fail(2)
    w.fan_out.fail(3)
    events = follows(5)

    w.run(read(events))

    expected = sorted((f"user{i}", str(e.event_id)) for i, e in enumerate(events))
    assert w.notified() == expected
    assert sorted(w.delivered()) == [(u, e, 1) for u, e in expected]
    assert (w.inbox.attempts, w.fan_out.attempts) == (3, 4)
    assert w.letters == []


def test_an_event_the_inbox_refuses_is_dead_lettered_alone_and_the_others_delivered() -> None:
    w = Worker()
    events = [*follows(3), PenaltyUser(actor_id="mod", user_id="user1", reason="spam")]
    todo = read(events)
    w.inbox.refuse(events[2].event_id, reason="invalid byte sequence for encoding")

    w.run(todo)

    assert w.letters == [
        (todo[2][0], "notifications-postgres refused: invalid byte sequence for encoding", None)
    ]
    assert ("user2", str(events[2].event_id)) not in w.notified()
    assert len(w.notified()) == 3
    # user1 has two notifications; every delivery carries the count after the whole batch,
    # also when the batch was stored in parts around the refused event.
    assert [n for u, _, n in w.delivered() if u == "user1"] == [2, 2]
    assert {e for _, e, _ in w.delivered()} == {str(events[i].event_id) for i in (0, 1, 3)}


def test_an_event_the_fan_out_refuses_is_dead_lettered_and_stays_in_the_inbox() -> None:
    w = Worker()
    events = follows(4)
    todo = read(events)
    w.fan_out.refuse(events[1].event_id, reason="WRONGTYPE Operation against a key")

    w.run(todo)

    assert w.letters == [
        (todo[1][0], "notifications-redis refused: WRONGTYPE Operation against a key", None)
    ]
    assert ("user1", str(events[1].event_id)) in w.notified()  # the inbox shows it
    assert [u for u, _, _ in w.delivered()] == ["user0", "user2", "user3"]


def test_a_batch_delivered_again_creates_no_second_notification() -> None:
    w = Worker()
    events = follows(3)
    w.run(read(events))

    w.run(read(events))  # offsets not committed: the same events are read again

    assert len(w.notified()) == 3
    # Delivered again (clients drop a notification id they have), with the same unread count.
    ids = [r["id"] for r, _ in w.fan_out.deliveries]
    assert len(ids) == 6 and len(set(ids)) == 3
    assert {n for _, _, n in w.delivered()} == {1}
