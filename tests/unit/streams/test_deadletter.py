"""streams/deadletter.py: how a batch splits into values to keep and messages to dead-letter."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

from footprint.schema import Footprint, pack, unpack
from streams.deadletter import decode_many


def _event(value: Any) -> Any:
    return SimpleNamespace(value=value)


def _fp(link: str) -> Footprint:
    return Footprint(event_id=uuid4(), method="GET", link=link, footprint_time=datetime.now(UTC))


def test_packs_and_single_footprints_are_kept_with_their_message() -> None:
    a, b, c = _fp("/a"), _fp("/b"), _fp("/c")
    first, second = _event(pack([a.to_bytes(), b.to_bytes()])), _event(c.to_bytes())
    good, bad = decode_many([first, second], unpack, "footprint")
    assert good == [(first, a), (first, b), (second, c)]
    assert bad == []


def test_only_the_invalid_item_of_a_pack_is_dead_lettered_and_its_valid_items_kept() -> None:
    a, b = _fp("/a"), _fp("/b")
    other_visitors = b'{"link": "no-slash", "user_id": "alice"}'
    mixed = _event(pack([a.to_bytes(), other_visitors, b.to_bytes()]))
    good, bad = decode_many([mixed], unpack, "footprint")
    assert good == [(mixed, a), (mixed, b)]
    [(event, reason, item)] = bad
    assert event is mixed
    assert item == b'{"link":"no-slash","user_id":"alice"}'  # this item alone, not a's or b's
    assert reason.startswith("invalid footprint: item 1: method: Field required; link: String")


def test_undecodable_and_invalid_messages_say_why() -> None:
    events = [_event(b"not json"), _event(b"[]"), _event(None), _event(b'{"link": "/x"}')]
    good, bad = decode_many(events, unpack, "footprint")
    assert good == []
    reasons = [reason for _, reason, _ in bad]
    assert [item for _, _, item in bad] == [None] * 4  # whole messages: their own bytes
    assert reasons[0] == "invalid footprint: value: Invalid JSON: expected ident at line 1 column 2"
    assert reasons[1] == "undecodable: ValueError: an empty pack of footprints"
    assert reasons[2] == "undecodable: TypeError: value is NoneType, not bytes"
    assert reasons[3] == "invalid footprint: method: Field required"
