"""The progress marks that make store writes exactly-once across crashes."""

from __future__ import annotations

from streams.progress import after_write, before_write, classify, cut_at_gaps


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


def test_a_batch_that_continues_every_partition_is_kept_whole() -> None:
    offsets = [(0, 10), (1, 5), (0, 11), (1, 6), (0, 12)]
    assert cut_at_gaps(offsets, {0: 9, 1: 4}) == ([0, 1, 2, 3, 4], {})


def test_replayed_offsets_are_kept_for_the_done_check() -> None:
    # After a seek back, offsets at or below applied come again; they are not a jump.
    assert cut_at_gaps([(0, 3), (0, 4), (0, 5)], {0: 4}) == ([0, 1, 2], {})


def test_a_jump_past_the_next_offset_cuts_that_partition_only() -> None:
    offsets = [(3, 78), (2, 40), (3, 92), (3, 93), (2, 41)]
    keep, seek = cut_at_gaps(offsets, {3: 77, 2: 39})
    assert keep == [0, 1, 4]
    assert seek == {3: 79}


def test_a_batch_starting_past_the_next_offset_is_dropped_for_that_partition() -> None:
    keep, seek = cut_at_gaps([(3, 92), (3, 93), (1, 0)], {3: 77})
    assert keep == [2]
    assert seek == {3: 78}


def test_without_progress_any_start_is_taken() -> None:
    # A new partition, or one whose first batch is still in flight (applied -1).
    assert cut_at_gaps([(0, 500), (0, 501)], {}) == ([0, 1], {})
    assert cut_at_gaps([(0, 500), (0, 502)], {0: -1}) == ([0], {0: 501})


def test_an_accepted_jump_is_taken_and_later_ones_still_cut() -> None:
    offsets = [(0, 50), (0, 51), (0, 60)]
    assert cut_at_gaps(offsets, {0: 9}, accepted={0: 10}) == ([0, 1], {0: 52})
