"""Pure batch logic for the window tables: group a batch, then apply it idempotently.

Every table key belongs to one source partition, because ``[count, last_offset]`` is only
idempotent when one partition's offsets feed it: a link is counted under
``"<partition>:<link>"`` (a link may arrive on any partition, whatever the producer's key and
partitioner), site-wide totals under ``"<partition>"``. Readers add the partitions up.
Bot footprints are not visits: they only count in a per-partition ``"<partition>:bots"`` key.

A batch is grouped by table key so each key is written once per batch, not once per event
(every table write is also a changelog record). ``apply`` skips offsets already counted.

A window in ``DERIVED`` has no table: each of its counts is the sum of the counts of the
windows it is made of (a 5-minute range is five 1-minute ranges of the same key), read after
the batch is applied to those. As exact as the parts, and it saves the table writes: the
hopping 5-minute window was five of every seven changelog records per link and minute.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from footprint.windows import WINDOWS, ranges

__all__ = [
    "DERIVED",
    "Item",
    "KeyPlan",
    "Plan",
    "apply",
    "link_key",
    "parts",
    "plan",
    "split_link_key",
]

Range = tuple[float, float]

# Windows counted as sums of another window's counts (see the module docstring).
DERIVED: dict[str, str] = {"5m": "1m"}


@functools.lru_cache(maxsize=4096)
def parts(window: str, r: Range) -> tuple[Range, ...]:
    """The ranges of ``DERIVED[window]`` that range ``r`` of ``window`` is made of."""
    base = DERIVED[window]
    step = float(WINDOWS[base].size)  # type: ignore[attr-defined]
    n = round(float(WINDOWS[window].size) / step)  # type: ignore[attr-defined]
    return tuple(ranges(base, r[0] + i * step)[0] for i in range(n))


def link_key(partition: int, link: str) -> str:
    """The table key of one link's count from one source partition."""
    return f"{partition}:{link}"


def split_link_key(key: str) -> tuple[int, str]:
    """``(partition, link)`` of a ``link_key``."""
    partition, link = key.split(":", 1)
    return int(partition), link


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ is ~2x slower
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
    """Group a batch by (window, key, range), keeping each key's offsets in order.

    Every window is aligned on whole minutes, so the ranges an event falls in depend only on
    its minute: events are first grouped by (partition, link, minute, bot), and each group is
    spread over the ranges once rather than each event.
    """
    groups: dict[tuple[int, str, int, bool], list[Item]] = {}
    minute_visitors: dict[int, set[str]] = {}
    for item in items:
        minute = int(item.timestamp) // 60
        key = (item.partition, item.link, minute, item.is_bot)
        members = groups.get(key)
        if members is None:
            groups[key] = [item]
        else:
            members.append(item)
        if item.visitor_id and not item.is_bot:
            seen = minute_visitors.get(minute)
            if seen is None:
                minute_visitors[minute] = {item.visitor_id}
            else:
                seen.add(item.visitor_id)

    links: dict[str, dict[tuple[str, Range], KeyPlan]] = {w: {} for w in WINDOWS}
    site: dict[str, dict[tuple[str, Range], KeyPlan]] = {w: {} for w in WINDOWS}
    range_cache: dict[tuple[str, int], list[Range]] = {}

    def minute_ranges(window: str, minute: int) -> list[Range]:
        cached = range_cache.get((window, minute))
        if cached is None:
            cached = range_cache[(window, minute)] = ranges(window, minute * 60.0)
        return cached

    for (partition, link, minute, is_bot), members in groups.items():
        offsets = [m.offset for m in members]
        ref = members[-1].ref
        for window in WINDOWS:
            for r in minute_ranges(window, minute):
                if is_bot:
                    # Bots are counted apart, site-wide only, and are not visitors.
                    _add(site[window], (f"{partition}:bots", r), partition, offsets, ref)
                    continue
                _add(links[window], (link_key(partition, link), r), partition, offsets, ref)
                _add(site[window], (str(partition), r), partition, offsets, ref)
    for group in (*links.values(), *site.values()):
        for kp in group.values():
            kp.offsets.sort()  # several groups (minutes, or links of a site key) were merged

    visitors: dict[tuple[str, int], set[str]] = {}
    for minute, ids in minute_visitors.items():
        for window in WINDOWS:
            for r in minute_ranges(window, minute):
                visitors.setdefault((window, int(round(r[0]))), set()).update(ids)
    return Plan(links, site, visitors)


def _add(
    group: dict[tuple[str, Range], KeyPlan],
    key: tuple[str, Range],
    partition: int,
    offsets: list[int],
    ref: Any,
) -> None:
    kp = group.get(key)
    if kp is None:
        group[key] = KeyPlan(partition, list(offsets), ref)
        return
    kp.offsets.extend(offsets)
    kp.ref = ref


def apply(current: list[int] | None, offsets: list[int]) -> list[int] | None:
    """The new ``[count, last_offset]`` after counting ``offsets``; None if all were counted."""
    count, last = (current[0], current[1]) if current else (0, -1)
    first_new = bisect.bisect_right(offsets, last)
    added = len(offsets) - first_new
    if added <= 0:
        return None
    return [count + added, offsets[-1]]
