"""Goals as the query API reads them: an event name, or pageviews of paths matching a wildcard.

A goal comes inline in an ``event:goal`` filter (``"Signup"``, or ``"Visit /blog*"`` as Plausible
names pageview goals) or from the site's configured goals (``api/goals.py``), found by their
display name. ``*`` in a path is any characters but ``/``, ``**`` any characters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from api.query.regex import Pattern, wildcard_pattern
from footprint.schema import PAGEVIEW

__all__ = ["GOAL_PAGE", "Goal"]

GOAL_PAGE = "Visit "  # a goal named "Visit /path" is a pageview goal, as Plausible names them


@dataclass(frozen=True)
class Goal:
    """An event-name goal, or a pageview goal on pages matching a wildcard path."""

    name: str
    event: str | None = None
    page: Pattern | None = None

    @classmethod
    def parse(cls, name: str, configured: Mapping[str, Goal] | None = None) -> Goal:
        """The site's goal of this display name, else the goal the name spells."""
        if configured and name in configured:
            return configured[name]
        if name.startswith(GOAL_PAGE) and name[len(GOAL_PAGE) :].startswith("/"):
            return cls(name, page=wildcard_pattern(name[len(GOAL_PAGE) :]))
        return cls(name, event=name)

    @classmethod
    def stored(cls, name: str, event_name: str | None, page_path: str | None) -> Goal:
        """A configured goal: exactly one of ``event_name`` and ``page_path`` is set."""
        if page_path is not None:
            return cls(name, page=wildcard_pattern(page_path))
        return cls(name, event=event_name)

    def matches(self, event_name: str, page: str) -> bool:
        """Whether a footprint completes this goal."""
        if self.page is not None:
            return event_name == PAGEVIEW and self.page.search(page)
        return event_name == self.event
