"""Which claimed outbox rows a relay may publish without putting a key out of order."""

from __future__ import annotations

from uuid import uuid4

from api.outbox import OutboxRow, publishable


def row(id_: int, key: bytes | None) -> OutboxRow:
    return OutboxRow(id_, uuid4(), "notifications", key, b"{}", [])


def test_rows_whose_keys_are_held_nowhere_else_all_go() -> None:
    claimed = [row(1, b"ann"), row(2, b"bob"), row(3, b"ann")]
    assert publishable(claimed, {}) == claimed


def test_a_key_waits_while_an_older_row_of_it_is_held_by_another_relay() -> None:
    # Another relay claimed ann's row 1; we got rows 2 and 5 of ann, and bob's row 3.
    claimed = [row(2, b"ann"), row(3, b"bob"), row(5, b"ann")]
    assert [r.id for r in publishable(claimed, {b"ann": 1})] == [3]


def test_a_key_goes_up_to_its_first_row_held_elsewhere() -> None:
    # We hold ann's rows 1 and 4, another relay holds 2: only 1 may go before 2.
    claimed = [row(1, b"ann"), row(4, b"ann")]
    assert [r.id for r in publishable(claimed, {b"ann": 2})] == [1]


def test_newer_rows_outside_the_batch_do_not_hold_anything_back() -> None:
    claimed = [row(1, b"ann"), row(2, b"ann")]
    assert [r.id for r in publishable(claimed, {b"ann": 900})] == [1, 2]


def test_rows_without_a_key_have_no_order_to_keep() -> None:
    claimed = [row(7, None), row(8, b"ann")]
    assert [r.id for r in publishable(claimed, {b"ann": 3})] == [7]
