"""streams/counting.py and footprint/windows.py: window counts that survive crashes and replays."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footprint.keys import links_key, totals_key
from footprint.windows import WINDOWS, live_range, ranges, retention_seconds, window_start
from streams.counting import DERIVED, Item, apply, parts, plan, split_link_key

# Hypothesis caches in ./.hypothesis by default: keep the working tree clean.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "footprint-hypothesis")
)

T0 = 1_800_000_000.0  # a minute (and hour) boundary: 2027-01-15T08:00:00Z
SIZES = {"1m": 60, "5m": 300, "1h": 3600}

Table = dict[tuple[str, tuple[float, float]], list[int]]


# --- windows ---------------------------------------------------------------------------------


def test_window_sizes() -> None:
    assert T0 % 3600 == 0
    assert ranges("1m", T0 + 30) == [(T0, T0 + 59.9)]
    assert ranges("1h", T0 + 1800) == [(T0, T0 + 3599.9)]


def test_hopping_5m_puts_one_event_in_five_ranges() -> None:
    starts = [window_start(r) for r in ranges("5m", T0 + 30)]
    assert starts == [int(T0) - 240, int(T0) - 180, int(T0) - 120, int(T0) - 60, int(T0)]


def test_live_range_5m_is_last_four_full_minutes_plus_current() -> None:
    t = T0 + 7 * 60 + 42.5  # 42.5 s into minute 7
    start, end = live_range("5m", t)
    current_minute = T0 + 7 * 60
    assert start == current_minute - 4 * 60
    assert start <= t <= end
    assert end == pytest.approx(current_minute + 60, abs=0.2)


def test_live_range_tumbling_is_the_current_window() -> None:
    t = T0 + 3 * 60 + 1
    assert live_range("1m", t) == (T0 + 180, T0 + 239.9)
    assert live_range("1h", t) == (T0, T0 + 3599.9)


@settings(max_examples=100, deadline=None, database=None)
@given(
    t=st.floats(min_value=1e9, max_value=4e9, allow_nan=False), window=st.sampled_from(list(SIZES))
)
def test_live_range_is_one_of_the_ranges(t: float, window: str) -> None:
    rs = ranges(window, t)
    live = live_range(window, t)
    assert window_start(live) in {window_start(r) for r in rs}
    assert window_start(live) == min(window_start(r) for r in rs)
    step = 60 if window == "5m" else SIZES[window]
    assert len(rs) == SIZES[window] // step
    for r in rs:
        # Every range starts on a step boundary and covers the event (Faust ends are size - 0.1).
        assert r[0] % step == 0
        assert r[0] <= t < r[0] + SIZES[window]


def test_redis_keys_and_retention() -> None:
    start = window_start(live_range("5m", T0))
    assert links_key("5m", start, 3) == f"footprint:live:5m:{start}:links:3"
    assert totals_key("1m", 60) == "footprint:live:1m:60:totals"
    # A window stays readable for two hours beyond its size.
    assert retention_seconds("1m") == 60 + 7200
    assert retention_seconds("1h") == 3600 + 7200


# --- plan ------------------------------------------------------------------------------------


def test_plan_groups_per_link_and_per_partition() -> None:
    items = [
        Item(0, 10, "/a", T0 + 1, "v1"),
        Item(0, 11, "/a", T0 + 2, "v2"),
        Item(0, 12, "/b", T0 + 3, "v1"),
        Item(1, 5, "/c", T0 + 4, "v3"),
        Item(0, 13, "/a", T0 + 65, "v1"),  # next minute
    ]
    p = plan(items)
    minute0 = (T0, T0 + 59.9)
    minute1 = (T0 + 60, T0 + 119.9)
    hour = (T0, T0 + 3599.9)

    assert p.links["1m"][("0:/a", minute0)].offsets == [10, 11]
    assert p.links["1m"][("0:/a", minute1)].offsets == [13]
    assert p.links["1m"][("0:/b", minute0)].offsets == [12]
    assert p.links["1m"][("1:/c", minute0)].partition == 1
    assert p.links["1h"][("0:/a", hour)].offsets == [10, 11, 13]

    assert p.site["1m"][("0", minute0)].offsets == [10, 11, 12]
    assert p.site["1m"][("1", minute0)].offsets == [5]
    assert p.site["1h"][("0", hour)].offsets == [10, 11, 12, 13]
    assert p.site["1h"][("0", hour)].partition == 0

    # 5m: each event is in 5 hopping ranges; the one at T0+65 is in the range starting at T0+60.
    a_5m = {r: kp.offsets for (link, r), kp in p.links["5m"].items() if link == "0:/a"}
    assert len(a_5m) == 6
    assert a_5m[(T0 + 60, T0 + 359.9)] == [13]
    assert a_5m[(T0, T0 + 299.9)] == [10, 11, 13]

    assert p.visitors[("1m", int(T0))] == {"v1", "v2", "v3"}
    assert p.visitors[("1m", int(T0) + 60)] == {"v1"}
    assert p.visitors[("1h", int(T0))] == {"v1", "v2", "v3"}


def test_plan_skips_empty_visitor_ids() -> None:
    p = plan([Item(0, 0, "/a", T0, "")])
    assert p.visitors == {}
    assert p.links["1m"][("0:/a", (T0, T0 + 59.9))].offsets == [0]


def test_plan_keeps_the_last_event_ref_for_changelog_routing() -> None:
    p = plan([Item(2, 0, "/a", T0, ref="first"), Item(2, 1, "/a", T0, ref="second")])
    assert p.links["1m"][("2:/a", (T0, T0 + 59.9))].ref == "second"


def _plan_event_by_event(items: list[Item]) -> dict[str, object]:
    """The plan's meaning, event by event: what each (window, key, range) holds."""
    links: dict[tuple[str, str, tuple[float, float]], list[int]] = {}
    site: dict[tuple[str, str, tuple[float, float]], list[int]] = {}
    visitors: dict[tuple[str, int], set[str]] = {}
    for item in items:
        for window in WINDOWS:
            for r in ranges(window, item.timestamp):
                if item.is_bot:
                    site.setdefault((window, f"{item.partition}:bots", r), []).append(item.offset)
                    continue
                key = f"{item.partition}:{item.link}"  # one partition's offsets per key
                links.setdefault((window, key, r), []).append(item.offset)
                site.setdefault((window, str(item.partition), r), []).append(item.offset)
                if item.visitor_id:
                    visitors.setdefault((window, int(round(r[0]))), set()).add(item.visitor_id)
    return {
        "links": {k: sorted(v) for k, v in links.items()},
        "site": {k: sorted(v) for k, v in site.items()},
        "visitors": visitors,
    }


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.sampled_from(["/a", "/b", "/c"]),
            st.floats(0, 7200),
            st.sampled_from(["", "v1", "v2"]),
            st.booleans(),
        ),
        max_size=60,
    )
)
def test_plan_groups_exactly_as_event_by_event(
    events: list[tuple[int, str, float, str, bool]],
) -> None:
    # Offsets ascend per partition, as they arrive; packs repeat an offset.
    items = [
        Item(p, (i // 3) * 4 + p, link, T0 + t, v, is_bot=bot)
        for i, (p, link, t, v, bot) in enumerate(events)
    ]
    got = plan(items)
    flat = {
        "links": {(w, k, r): kp.offsets for w, g in got.links.items() for (k, r), kp in g.items()},
        "site": {(w, k, r): kp.offsets for w, g in got.site.items() for (k, r), kp in g.items()},
        "visitors": got.visitors,
    }
    assert flat == _plan_event_by_event(items)
    for group in (got.site, got.links):
        partitions = {(w, k, r): kp.partition for w, g in group.items() for (k, r), kp in g.items()}
        assert all(int(k.split(":")[0]) == p for (_, k, _), p in partitions.items())


# --- apply -----------------------------------------------------------------------------------


def test_apply_counts_from_nothing() -> None:
    assert apply(None, [3, 4, 7]) == [3, 7]


def test_apply_same_offsets_again_is_a_no_op() -> None:
    current = apply(None, [0, 1, 2])
    assert current == [3, 2]
    assert apply(current, [0, 1, 2]) is None
    assert apply(current, [1, 2]) is None


def test_apply_overlapping_batch_counts_only_new_offsets() -> None:
    assert apply([5, 9], [8, 9, 10, 11]) == [7, 11]
    assert apply([5, 9], [10]) == [6, 10]


# --- crash and replay ------------------------------------------------------------------------


def _process(table: Table, batch: list[Item]) -> None:
    """What the agent does with one batch: plan, then apply every key of every window."""
    p = plan(batch)
    for window in WINDOWS:
        for group, kind in ((p.links[window], "link"), (p.site[window], "site")):
            for (name, r), kp in group.items():
                key = (f"{window}|{kind}|{name}", r)
                new = apply(table.get(key), kp.offsets)
                if new is not None:
                    table[key] = new


def _true_counts(items: list[Item]) -> Counter[tuple[str, tuple[float, float]]]:
    expected: Counter[tuple[str, tuple[float, float]]] = Counter()
    for item in items:
        for window in WINDOWS:
            for r in ranges(window, item.timestamp):
                expected[(f"{window}|link|{item.link}", r)] += 1
                expected[(f"{window}|site|{item.partition}", r)] += 1
    return expected


def _counts(table: Table) -> Counter[tuple[str, tuple[float, float]]]:
    """Per window range: each link's count summed over the partitions, and each site key's."""
    counts: Counter[tuple[str, tuple[float, float]]] = Counter()
    for (name, r), value in table.items():
        window, kind, key = name.split("|", 2)
        if kind == "link":
            key = split_link_key(key)[1]
        counts[(f"{window}|{kind}|{key}", r)] += value[0]
    return counts


def _log(n: int = 100, partitions: int = 1) -> list[list[Item]]:
    """Per partition, the events in offset order; a link's events spread over the partitions."""
    logs: list[list[Item]] = [[] for _ in range(partitions)]
    for i in range(n):
        part = i % partitions
        link = f"/p/{i % 7}"
        logs[part].append(Item(part, len(logs[part]), link, T0 + i * 7.3))
    return logs


def test_crash_after_apply_then_replay_from_committed_offset() -> None:
    (log,) = _log(100)
    table: Table = {}
    committed = 0
    # Offsets 0..49 are applied and committed; 50..59 are applied, then the worker crashes
    # before committing. The table (restored from its changelog) keeps that state.
    for start in range(0, 60, 10):
        _process(table, log[start : start + 10])
        if start + 10 <= 50:
            committed = start + 10
    assert committed == 50
    assert sum(v[0] for k, v in table.items() if k[0].startswith("1h|site")) == 60
    # Replay from the committed offset, with different batch boundaries, to the end.
    pos = committed
    while pos < len(log):
        _process(table, log[pos : pos + 13])
        pos += 13
    assert _counts(table) == _true_counts(log)


def test_replay_everything_twice_counts_once() -> None:
    (log,) = _log(100)
    table: Table = {}
    _process(table, log)
    snapshot = dict(table)
    for start in range(0, 100, 25):
        _process(table, log[start : start + 25])
    assert table == snapshot
    assert _counts(table) == _true_counts(log)
    one_hour = [v[0] for k, v in table.items() if k[0] == "1h|site|0"]
    assert sum(one_hour) == 100


EVENTS = st.lists(
    st.tuples(
        st.integers(0, 2),  # partition
        st.integers(0, 4),  # link number (any link on any partition: no key, any partitioner)
        st.floats(0, 200),  # seconds since the previous event
        st.integers(1, 2),  # offset step (offsets may have gaps: compaction, markers)
    ),
    min_size=1,
    max_size=80,
)
CRASHES = st.lists(
    st.tuples(
        st.integers(1, 10),  # batches processed before the crash
        st.integers(0, 100),  # replay from this % of the last committed position
    ),
    max_size=4,
)


@settings(max_examples=100, deadline=None, database=None)
@given(
    events=EVENTS,
    batch_sizes=st.lists(st.integers(1, 12), min_size=1, max_size=8),
    commit_every=st.integers(1, 3),
    crashes=CRASHES,
)
def test_property_crashes_and_replays_never_change_counts(
    events: list[tuple[int, int, float, int]],
    batch_sizes: list[int],
    commit_every: int,
    crashes: list[tuple[int, int]],
) -> None:
    logs: list[list[Item]] = [[], [], []]
    t = T0
    for part, link, gap, step in events:
        t += gap
        prev = logs[part][-1].offset if logs[part] else -1
        logs[part].append(Item(part, prev + step, f"/p/{link}", t))

    table: Table = {}
    committed = [0, 0, 0]  # index into each partition's log
    sizes = iter(batch_sizes * 1000)
    for crash_after, rewind in [*crashes, (None, 100)]:
        pos = list(committed)
        done = 0
        while any(pos[p] < len(logs[p]) for p in range(3)):
            if crash_after is not None and done == crash_after:
                break  # crash: table state kept (changelog), uncommitted progress lost
            # A batch takes up to k events from each partition, each partition in order.
            k = next(sizes)
            batch = [item for p in range(3) for item in logs[p][pos[p] : pos[p] + k]]
            pos = [min(len(logs[p]), pos[p] + k) for p in range(3)]
            _process(table, batch)
            done += 1
            if done % commit_every == 0 or crash_after is None:
                committed = list(pos)
        # Sometimes the replay starts further back than the last commit (reset, lag).
        committed = [c * rewind // 100 for c in committed]

    everything = [item for log in logs for item in log]
    assert _counts(table) == _true_counts(everything)


def test_bots_are_counted_apart_and_are_not_visitors() -> None:
    items = [
        Item(0, 0, "/a", 1_000_000.0, "v1"),
        Item(0, 1, "/a", 1_000_001.0, "crawler", is_bot=True),
        Item(0, 2, "/b", 1_000_002.0, "crawler", is_bot=True),
    ]
    p = plan(items)
    for window in ("1m", "5m", "1h"):
        assert {link for link, _ in p.links[window]} == {"0:/a"}
        site = {key: kp.offsets for (key, _), kp in p.site[window].items()}
        assert site == {"0": [0], "0:bots": [1, 2]}
    assert all(ids == {"v1"} for ids in p.visitors.values())


def test_a_derived_window_is_made_of_its_minutes() -> None:
    assert DERIVED == {"5m": "1m"}
    r = ranges("5m", T0)[0]  # the range that ends with T0's minute
    assert parts("5m", r) == tuple(ranges("1m", r[0] + 60 * i)[0] for i in range(5))
    assert parts("5m", r)[-1] == ranges("1m", T0)[0]


def test_a_derived_window_counts_exactly_as_its_own_table_would() -> None:
    # The worker keeps no 5m table: a 5m count is the sum of the 1m counts of its minutes.
    logs = _log(300, partitions=2)
    table: Table = {}
    for log in logs:
        for start in range(0, len(log), 17):
            _process(table, log[start : start + 17])
    checked = 0
    for (name, r), value in table.items():
        window, rest = name.split("|", 1)
        if window == "5m":
            summed = sum(table.get((f"1m|{rest}", m), [0])[0] for m in parts("5m", r))
            assert summed == value[0], (name, r)
            checked += 1
    assert checked > 50
