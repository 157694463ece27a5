"""Filters of the query API: ``[operator, dimension, [clauses], modifiers?]`` trees, checked.

``FilterParser.parse`` turns a request's filter into ``Condition`` / ``And`` / ``Or`` / ``Not``
and raises ``QueryError`` naming the field; the dimension names every store knows live here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from api.query.goals import Goal
from api.query.model import QueryError
from api.query.regex import Pattern, PatternError, compile_pattern
from footprint.schema import MAX_PROP_KEY

__all__ = [
    "EVENT_DIMENSIONS",
    "PROPS_PREFIX",
    "TIME_DIMENSIONS",
    "VISIT_DIMENSIONS",
    "And",
    "Condition",
    "Filter",
    "FilterParser",
    "Not",
    "Or",
    "ascii_lower",
    "conditions",
    "dimension",
]

EVENT_DIMENSIONS = (
    "event:page",
    "event:name",
    "event:goal",
    "event:route",
    "event:status",
    "event:method",
)
PROPS_PREFIX = "event:props:"
VISIT_DIMENSIONS = (
    "visit:source",
    "visit:referrer",
    "visit:utm_medium",
    "visit:utm_source",
    "visit:utm_campaign",
    "visit:utm_content",
    "visit:utm_term",
    "visit:browser",
    "visit:os",
    "visit:device",
    "visit:entry_page",
    "visit:exit_page",
)
TIME_DIMENSIONS = ("time", "time:minute", "time:hour", "time:day", "time:week", "time:month")
OPERATORS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
MAX_CONDITIONS = 100
MAX_CLAUSES = 100
MAX_CLAUSE = 2000
MAX_DEPTH = 6

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(value: str) -> str:
    """ASCII letters lower-cased, the rest as it is: what every store folds alike."""
    return value.translate(_ASCII_LOWER)


@dataclass(frozen=True)
class Condition:
    """A simple filter: ``[operator, dimension, clauses, modifiers?]``."""

    op: str
    dimension: str
    clauses: tuple[str, ...]
    case_sensitive: bool = True
    patterns: tuple[Pattern, ...] = ()
    goals: tuple[Goal, ...] = ()

    @property
    def negated(self) -> bool:
        return self.op.endswith("_not")

    @property
    def base_op(self) -> str:
        return self.op.removesuffix("_not")

    def folded(self) -> tuple[str, ...]:
        """The clauses as compared: ASCII-lower-cased unless case-sensitive."""
        return self.clauses if self.case_sensitive else tuple(map(ascii_lower, self.clauses))


@dataclass(frozen=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    item: Filter


Filter = Condition | And | Or | Not


def conditions(f: Filter | None) -> list[Condition]:
    """Every simple condition of a filter tree."""
    if f is None:
        return []
    if isinstance(f, Condition):
        return [f]
    if isinstance(f, Not):
        return conditions(f.item)
    return [c for item in f.items for c in conditions(item)]


def _error(message: str) -> QueryError:
    return QueryError(message)


def dimension(name: Any, where: str, *, time_ok: bool) -> str:
    """A known dimension name; QueryError naming ``where`` otherwise."""
    if not isinstance(name, str):
        raise _error(f"{where}: a dimension is a string, got {name!r}")
    if name in EVENT_DIMENSIONS or name in VISIT_DIMENSIONS:
        return name
    if name in TIME_DIMENSIONS:
        if not time_ok:
            raise _error(f"{where}: time dimensions cannot be filtered on: set date_range")
        return name
    if name.startswith(PROPS_PREFIX):
        key = name[len(PROPS_PREFIX) :]
        if not 0 < len(key) <= MAX_PROP_KEY or "\x00" in key:
            raise _error(f"{where}: a property name is 1 to {MAX_PROP_KEY} characters")
        return name
    raise _error(f"{where}: unknown dimension {name!r}")


class FilterParser:
    """Parses a request's filters, counting conditions across them (the limit is per query)."""

    def __init__(self, goals: Mapping[str, Goal] | None = None) -> None:
        self.count = 0
        self.goals = goals  # the site's configured goals, by display name

    def parse(self, raw: Any, where: str, depth: int = 0) -> Filter:
        if depth > MAX_DEPTH:
            raise _error(f"{where}: filters nest at most {MAX_DEPTH} deep")
        if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
            raise _error(f"{where}: a filter is [operator, …], got {raw!r:.200}")
        op = raw[0]
        if op in ("and", "or"):
            if len(raw) != 2 or not isinstance(raw[1], list) or not raw[1]:
                raise _error(f'{where}: ["{op}", [filter, …]] with at least one filter')
            items = tuple(
                self.parse(item, f"{where}[1][{i}]", depth + 1) for i, item in enumerate(raw[1])
            )
            return And(items) if op == "and" else Or(items)
        if op == "not":
            if len(raw) != 2:
                raise _error(f'{where}: ["not", filter]')
            return Not(self.parse(raw[1], f"{where}[1]", depth + 1))
        if op not in OPERATORS:
            raise _error(f"{where}: unknown operator {op!r}: one of {', '.join(OPERATORS)}, "
                         "and, or, not")  # fmt: skip
        self.count += 1
        if self.count > MAX_CONDITIONS:
            raise _error(f"filters: at most {MAX_CONDITIONS} conditions")
        if len(raw) not in (3, 4):
            raise _error(f"{where}: [operator, dimension, [clauses], modifiers?]")
        dim = dimension(raw[1], f"{where}[1]", time_ok=False)
        clauses = raw[2]
        if (
            not isinstance(clauses, list)
            or not 0 < len(clauses) <= MAX_CLAUSES
            or not all(isinstance(c, str) and len(c) <= MAX_CLAUSE for c in clauses)
        ):
            raise _error(
                f"{where}[2]: 1 to {MAX_CLAUSES} clauses, strings of at most {MAX_CLAUSE} "
                "characters"
            )
        if any("\x00" in c for c in clauses):
            raise _error(f"{where}[2]: a clause has no NUL character (no stored value has one)")
        case_sensitive = True
        if len(raw) == 4:
            modifiers = raw[3]
            if not isinstance(modifiers, dict) or set(modifiers) - {"case_sensitive"}:
                raise _error(f'{where}[3]: modifiers are {{"case_sensitive": true|false}}')
            case_sensitive = modifiers.get("case_sensitive", True)
            if not isinstance(case_sensitive, bool):
                raise _error(f"{where}[3].case_sensitive: true or false")
            if not case_sensitive and op not in ("is", "is_not", "contains", "contains_not"):
                raise _error(f"{where}[3]: case_sensitive applies to is and contains only")
        patterns: tuple[Pattern, ...] = ()
        if op in ("matches", "matches_not"):
            try:
                patterns = tuple(compile_pattern(c) for c in clauses)
            except PatternError as e:
                raise _error(f"{where}[2]: not a supported regular expression: {e}") from None
        goals: tuple[Goal, ...] = ()
        if dim == "event:goal":
            if op != "is":
                raise _error(f"{where}: event:goal takes the is operator only")
            if not all(clauses):
                raise _error(f"{where}[2]: a goal name is not empty")
            goals = tuple(Goal.parse(c, self.goals) for c in dict.fromkeys(clauses))
        return Condition(op, dim, tuple(clauses), case_sensitive, patterns, goals)
