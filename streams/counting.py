"""Pure batch logic for the window tables: group a batch, then apply it idempotently.

Bot footprints are not visits: they only count in a per-partition ``"<partition>:bots"`` key.

A batch is grouped by table key so each key is written once per batch, not once per event
(every table write is also a changelog record). ``apply`` skips offsets already counted.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from footprint.windows import WINDOWS, ranges

__all__ = ["Item", "KeyPlan", "Plan", "apply", "plan"]

Range = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Item:
    """One valid footprint as the counting sees it."""

    partition: int
    offset: int
    link: str
    timestamp: float
    visitor_id: str = ""
    ref: Any = None  # the Faust event, used to route table writes to its changelog partition
    is_bot: bool = False


@dataclass(slots=True)
class KeyPlan:
    """The offsets (ascending) of one partition that touch one table key in this batch."""

    partition: int
    offsets: list[int] = field(default_factory=list)
    ref: Any = None


@dataclass(slots=True)
class Plan:
    """Per window: link keys, site keys (by partition) and visitor ids per range start."""

    links: dict[str, dict[tuple[str, Range], KeyPlan]]
    site: dict[str, dict[tuple[str, Range], KeyPlan]]
    visitors: dict[tuple[str, int], set[str]]


def plan(items: Iterable[Item]) -> Plan:
    """Group a batch by (window, key, range), keeping each key's offsets in order."""
    links: dict[str, dict[tuple[str, Range], KeyPlan]] = {w: {} for w in WINDOWS}
    site: dict[str, dict[tuple[str, Range], KeyPlan]] = {w: {} for w in WINDOWS}
    visitors: dict[tuple[str, int], set[str]] = {}
    range_cache: dict[tuple[str, int], list[Range]] = {}
    for item in items:
        second = int(item.timestamp)
        for window in WINDOWS:
            cached = range_cache.get((window, second))
            if cached is None:
                cached = range_cache[(window, second)] = ranges(window, item.timestamp)
            for r in cached:
                if item.is_bot:
                    # Bots are counted apart, site-wide only, and are not visitors.
                    _add(site[window], (f"{item.partition}:bots", r), item)
                    continue
                _add(links[window], (item.link, r), item)
                _add(site[window], (str(item.partition), r), item)
                if item.visitor_id:
                    visitors.setdefault((window, int(round(r[0]))), set()).add(item.visitor_id)
    return Plan(links, site, visitors)


def _add(group: dict[tuple[str, Range], KeyPlan], key: tuple[str, Range], item: Item) -> None:
    kp = group.get(key)
    if kp is None:
        kp = group[key] = KeyPlan(item.partition, ref=item.ref)
    kp.offsets.append(item.offset)
    kp.ref = item.ref


def apply(current: list[int] | None, offsets: list[int]) -> list[int] | None:
    """The new ``[count, last_offset]`` after counting ``offsets``; None if all were counted."""
    count, last = (current[0], current[1]) if current else (0, -1)
    first_new = bisect.bisect_right(offsets, last)
    added = len(offsets) - first_new
    if added <= 0:
        return None
    return [count + added, offsets[-1]]
