"""``POST /api/v2/funnel``: a stored funnel over a date range, in the shape of Plausible's."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.models.common import Answer
from footprint.schema import NO_NUL

__all__ = ["FunnelInclude", "FunnelMeta", "FunnelQuery", "FunnelReport", "FunnelStep"]


class FunnelInclude(BaseModel):
    """What else to count: known bots are left out by default."""

    model_config = ConfigDict(extra="forbid", strict=True)

    bots: bool = Field(default=False, description="Count known bots' footprints.")


class FunnelQuery(BaseModel):
    """A stored funnel over a date range, with the query API's filters and time zone."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"site_id": "example.com", "funnel_id": 1, "date_range": "30d"}]
        },
    )

    site_id: str = Field(max_length=512, pattern=NO_NUL, description="The site's domain.")
    funnel_id: int = Field(
        ge=1, le=2**63 - 1, description="The funnel (GET /api/v1/sites/funnels)."
    )
    date_range: str | list[str] = Field(
        description="As the query API's: a shortcut (7d, 30d, month, all…) or a pair of ISO 8601 "
        "dates or date-times."
    )
    filters: list[list[Any]] = Field(
        default_factory=list,
        max_length=50,
        description="As the query API's: footprints the filters leave out complete no step.",
    )
    timezone: str = Field(default="UTC", max_length=64, description="IANA time zone of days.")
    include: FunnelInclude = Field(default_factory=lambda: FunnelInclude())


class FunnelStep(Answer):
    """A step: the visitors who completed it and every step before it, in order, in one visit."""

    label: str = Field(description="The goal's display name.")
    goal_id: int
    visitors: int
    conversion_rate: float = Field(description="Percent of the first step's visitors.")
    conversion_rate_step: float = Field(description="Percent of the previous step's visitors.")
    dropoff: int = Field(description="The previous step's visitors who did not reach this one.")
    dropoff_percentage: float = Field(description="dropoff, percent of the previous step's.")


class FunnelMeta(Answer):
    """Which store answered and how long it took."""

    source: Literal["postgres", "clickhouse"]
    query_ms: float


class FunnelReport(Answer):
    """The funnel's steps, and how many visitors of the range entered it."""

    funnel_id: int
    name: str
    steps: list[FunnelStep]
    all_visitors: int = Field(description="Visitors of the range (after the filters).")
    entering_visitors: int = Field(description="Visitors who completed the first step.")
    entering_visitors_percentage: float
    never_entering_visitors: int
    never_entering_visitors_percentage: float
    meta: FunnelMeta
    query: dict[str, Any] = Field(description="The date range, filters and zone as run.")
