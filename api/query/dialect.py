"""What each store spells its own way (``Dialect``), the constants every store and the reference
share, and ``Statement``: SQL text with ``%(name)s`` parameters for every value of the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DIRECT", "NOT_SET", "NO_PROP", "SCHEME", "VISIT_GAP", "WWW", "Dialect", "Statement"]

VISIT_GAP = 30 * 60  # seconds of inactivity that end a visit
NOT_SET = "(not set)"
DIRECT = "Direct / None"
NO_PROP = "(none)"
WWW = r"^www\."
SCHEME = r"^([a-z][a-z0-9+.-]*:)?//(www\.)?"


class Dialect:
    """The expressions each store spells its own way."""

    table = "user_footprint"
    by_bytes = ""  # appended to a string sort key to order by bytes

    def seconds(self) -> str:
        raise NotImplementedError

    def status(self) -> str:
        raise NotImplementedError

    def event_id(self) -> str:
        raise NotImplementedError

    def time_range(self) -> str:
        raise NotImplementedError

    def not_bot(self) -> str:
        raise NotImplementedError

    def props_columns(self) -> str:
        raise NotImplementedError

    def prop(self, key: str) -> str:
        raise NotImplementedError

    def is_pageview(self) -> str:
        raise NotImplementedError

    def previous(self, column: str, window: str) -> str:
        raise NotImplementedError

    def bucket(self, interval: str) -> str:
        raise NotImplementedError

    def replace_first(self, value: str, pattern: str) -> str:
        raise NotImplementedError

    def if_(self, cond: str, then: str, other: str) -> str:
        return f"CASE WHEN {cond} THEN {then} ELSE {other} END"

    def in_list(self, value: str, values: str) -> str:
        raise NotImplementedError

    def contains(self, value: str, needle: str) -> str:
        raise NotImplementedError

    def matches(self, value: str, pattern: str) -> str:
        raise NotImplementedError

    def ascii_lower(self, value: str) -> str:
        raise NotImplementedError

    def distinct(self, value: str, cond: str | None = None) -> str:
        raise NotImplementedError

    def goal_rows(self, goals: str) -> tuple[str, str]:
        """(the FROM clause, a WHERE condition) giving one row per goal a footprint meets."""
        raise NotImplementedError

    def goal_list(self, items: list[tuple[str, str]]) -> str:
        raise NotImplementedError

    def int_div(self, a: str, b: str) -> str:
        raise NotImplementedError

    def funnel_levels(self, steps: int) -> list[str]:
        """Common table expressions ending in ``levels`` (vkey, level): per visit of
        ``selected`` (vkey, vidx, pos, s1…sN), how many steps it completes in order."""
        raise NotImplementedError

    def settings(self) -> str:
        return ""


@dataclass
class Statement:
    """SQL text and its parameters."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)
