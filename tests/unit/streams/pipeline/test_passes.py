"""streams.pipeline.passes: a batch of packs is written in runs of bounded size, in order."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from streams.pipeline import passes


def _batch(*sizes: int) -> list[Any]:
    return [
        SimpleNamespace(value=b"x" * size, message=SimpleNamespace(offset=i))
        for i, size in enumerate(sizes)
    ]


def _runs(batch: list[Any], limit: int) -> list[list[int]]:
    return [[ev.message.offset for ev in run] for run in passes(batch, limit)]


def test_runs_keep_the_order_and_stay_within_the_limit() -> None:
    batch = _batch(400, 400, 400, 100, 900, 50)
    assert _runs(batch, 1000) == [[0, 1], [2, 3], [4, 5]]
    assert [ev for run in passes(batch, 1000) for ev in run] == batch


def test_a_message_larger_than_the_limit_is_a_run_of_its_own_never_split() -> None:
    assert _runs(_batch(10, 5000, 10), 1000) == [[0], [1], [2]]


def test_a_batch_within_the_limit_is_one_pass_and_an_empty_one_none() -> None:
    assert _runs(_batch(10, 20, 30), 1000) == [[0, 1, 2]]
    assert _runs([], 1000) == []
