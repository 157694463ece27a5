"""streams/sinks/redis.py's plan: when window keys expire, what is skipped, what is trimmed."""

from __future__ import annotations

from footprint.keys import links_key, totals_key, visitors_key
from footprint.windows import expire_at
from streams.sinks.base import Batch, WindowCount
from streams.sinks.redis import plan

T0 = 1_800_000_000  # a minute and hour boundary


def test_keys_expire_two_hours_after_their_window_ends() -> None:
    assert expire_at("1m", T0) == T0 + 60 + 7200
    assert expire_at("5m", T0) == T0 + 300 + 7200
    assert expire_at("1h", T0) == T0 + 3600 + 7200


def test_a_current_window_expires_from_its_end_not_from_now() -> None:
    batch = Batch(
        counts=[
            WindowCount("1m", T0, T0 + 60, 3, link="/a", partition=1),
            WindowCount("1m", T0, T0 + 60, 3, partition=1),
        ],
        visitors={("1m", T0): {"v1"}},
    )
    # Written 30 s into the window, and again an hour later: the expiry does not move.
    for now in (T0 + 30, T0 + 3600):
        p = plan(batch, now, max_links=10)
        assert p.expire == {
            links_key("1m", T0, 1): T0 + 7260,
            totals_key("1m", T0): T0 + 7260,
            visitors_key("1m", T0): T0 + 7260,
        }
        assert p.touched == {("1m", T0)}


def test_a_window_past_its_retention_is_not_written() -> None:
    old = T0 - 7260  # its 1m window expired exactly now; its 1h window has an hour left
    batch = Batch(
        counts=[
            WindowCount("1m", old, old + 60, 1, link="/old", partition=0),
            WindowCount("1m", old, old + 60, 1, partition=0),
            WindowCount("1h", old, old + 3600, 1, link="/old", partition=0),
        ],
        visitors={("1m", old): {"v"}},
    )
    p = plan(batch, T0, max_links=10)
    assert p.skipped == 3
    assert p.touched == {("1h", old)}
    assert p.expire == {links_key("1h", old, 0): old + 3600 + 7200}
    assert not p.totals and not p.visitors


def test_at_most_max_links_per_set_the_highest_counts() -> None:
    counts = [WindowCount("1m", T0, T0 + 60, n, link=f"/l{n}", partition=0) for n in range(1, 9)]
    counts.append(WindowCount("1m", T0, T0 + 60, 5, link="/p1", partition=1))
    p = plan(Batch(counts=counts), T0, max_links=3)
    assert p.links[links_key("1m", T0, 0)] == {"/l8": 8, "/l7": 7, "/l6": 6}
    assert p.links[links_key("1m", T0, 1)] == {"/p1": 5}
