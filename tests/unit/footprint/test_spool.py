"""footprint/spool.py: segments on disk, delivered oldest first, kept until done."""

from __future__ import annotations

from pathlib import Path

from footprint.spool import Spool


def _values(n: int, prefix: str = "v") -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(n)]


def test_spool_rotates_segments_and_delivers_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", segment_events=2)
    assert spool.take_oldest() is None
    spool.append([b"a"])
    spool.append([b"b"])  # same segment: it holds 2
    spool.append([b"c"])  # full: a new segment
    spool.append([b"d", b"e"])
    assert spool.count == 5
    assert len(spool.segments()) == 2

    taken = spool.take_oldest()
    assert taken is not None
    seg, values = taken
    assert values == [b"a", b"b"]
    spool.done(seg, len(values))
    assert spool.count == 3
    assert not seg.exists()

    taken = spool.take_oldest()
    assert taken is not None
    seg, values = taken
    assert values == [b"c", b"d", b"e"]
    # Appends while a segment is being delivered go to a new segment, not into it.
    spool.append([b"f"])
    spool.done(seg, len(values))
    taken = spool.take_oldest()
    assert taken is not None
    assert taken[1] == [b"f"]
    spool.done(taken[0], 1)
    assert spool.count == 0
    assert spool.take_oldest() is None


def test_spool_segment_stays_until_done(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append([b"x", b"y"])
    first = spool.take_oldest()
    again = spool.take_oldest()  # not yet acknowledged: offered again
    assert first == again
    assert spool.count == 2


def test_spool_survives_a_restart(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory, segment_events=3)
    spool.append(_values(3, "old"))
    spool.append(_values(2, "new"))
    assert len(spool.segments()) == 2

    restarted = Spool(directory, segment_events=3)
    assert restarted.count == 5
    taken = restarted.take_oldest()
    assert taken is not None
    assert taken[1] == _values(3, "old")
    restarted.done(taken[0], 3)
    # After a restart, new values never go into an old segment.
    restarted.append([b"after"])
    taken = restarted.take_oldest()
    assert taken is not None
    assert taken[1] == _values(2, "new")
    restarted.done(taken[0], 2)
    taken = restarted.take_oldest()
    assert taken is not None
    assert taken[1] == [b"after"]
    assert restarted.count == 1


def test_spool_on_a_missing_directory_is_empty(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "nope")
    assert spool.count == 0
    assert spool.segments() == []
    assert spool.take_oldest() is None
