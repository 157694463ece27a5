"""Goals and funnels of a site, in the shape of Plausible's Sites API goals endpoints."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from api.models.common import Answer
from footprint.schema import MAX_LINK, MAX_TEXT, NO_NUL

__all__ = [
    "Deleted",
    "FunnelIn",
    "FunnelList",
    "FunnelOut",
    "GoalIn",
    "GoalList",
    "GoalOut",
]

SiteId = Annotated[
    str,
    StringConstraints(max_length=300, pattern=NO_NUL, strip_whitespace=True, to_lower=True),
    Field(description="The site's domain."),
]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_TEXT, pattern=NO_NUL, strip_whitespace=True)
]
# A path with wildcards: * any characters but /, ** any characters.
PagePath = Annotated[
    str,
    StringConstraints(max_length=MAX_LINK, pattern=r"^/[^\x00]*$", strip_whitespace=True),
]


class GoalIn(BaseModel):
    """A goal to create: an event name, or pageviews of a path (wildcards ``*`` and ``**``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"site_id": "example.com", "goal_type": "event", "event_name": "Signup"},
                {"site_id": "example.com", "goal_type": "page", "page_path": "/blog/**"},
            ]
        },
    )

    site_id: SiteId
    goal_type: Literal["event", "page"]
    event_name: Name | None = Field(default=None, description="With goal_type event.")
    page_path: PagePath | None = Field(default=None, description="With goal_type page.")
    display_name: Name | None = Field(
        default=None,
        description="How the goal is shown and named in event:goal filters (default: the event "
        'name, or "Visit " and the path).',
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.goal_type == "event" and (self.event_name is None or self.page_path is not None):
            raise ValueError("goal_type event takes an event_name and no page_path")
        if self.goal_type == "page" and (self.page_path is None or self.event_name is not None):
            raise ValueError("goal_type page takes a page_path and no event_name")
        return self


class GoalOut(Answer):
    """A configured goal."""

    id: int
    display_name: str
    goal_type: Literal["event", "page"]
    event_name: str | None
    page_path: str | None


class GoalList(Answer):
    """The site's goals, oldest first."""

    goals: list[GoalOut]


class Deleted(Answer):
    """The goal or funnel is gone."""

    deleted: Literal[True] = True


class FunnelIn(BaseModel):
    """A funnel to store under its name: 2 to 8 distinct goals (their ids), in order."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"site_id": "example.com", "name": "Signup flow", "steps": [1, 2, 3]}]
        },
    )

    site_id: SiteId
    name: Name
    steps: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=2, max_length=8)

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        if len(set(self.steps)) != len(self.steps):
            raise ValueError("steps: each goal at most once")
        return self


class FunnelOut(Answer):
    """A stored funnel: its goals in order."""

    id: int
    name: str
    steps: list[GoalOut]


class FunnelList(Answer):
    """The site's funnels, oldest first."""

    funnels: list[FunnelOut]
