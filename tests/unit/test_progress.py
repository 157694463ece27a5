"""The progress marks that make store writes exactly-once across crashes."""

from __future__ import annotations

from streams.progress import after_write, before_write, classify


def test_fresh_partition_has_everything_fresh() -> None:
    assert classify(0, None) == "fresh"
    assert classify(10, {}) == "fresh"


def test_a_crash_mid_write_leaves_that_batch_in_doubt_and_the_rest_fresh() -> None:
    progress = after_write(None, 99)  # batch 0..99 fully written
    progress = before_write(progress, 199)  # batch 100..199 started, then the crash
    assert [classify(o, progress) for o in (0, 99)] == ["done", "done"]
    assert [classify(o, progress) for o in (100, 150, 199)] == ["in_doubt"] * 3
    assert classify(200, progress) == "fresh"


def test_marks_never_move_backwards() -> None:
    progress = after_write(None, 500)
    assert before_write(progress, 300) == {"applied": 500, "inflight": 500}
    assert after_write(progress, 200) == {"applied": 500, "inflight": 500}
    assert classify(400, progress) == "done"
