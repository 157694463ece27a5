"""The request and response of ``POST /api/v2/query``, in the shape of Plausible's Stats API v2.

Request ``{site_id, metrics, date_range, dimensions, filters, order_by, pagination, include}``;
response ``{results: [{metrics, dimensions}], meta, query}``. Footprint's extensions:
``timezone`` (IANA name; Plausible takes the site's), ``include.bots`` and ``meta.source`` /
``meta.query_ms`` (which store answered, and how long it took).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from footprint.schema import NO_NUL

__all__ = [
    "Include",
    "Pagination",
    "QueryError",
    "QueryMeta",
    "QueryRequest",
    "QueryResponse",
    "QueryRow",
]

MAX_LIMIT = 10_000


class QueryError(ValueError):
    """A request the API refuses (400); the message names the offending field."""


class Pagination(BaseModel):
    """Which rows of the ordered result to return."""

    # strict: "5" is not a number and 0 is not a bool, as the published schema says.
    model_config = ConfigDict(extra="forbid", strict=True)

    limit: int = Field(default=MAX_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class Include(BaseModel):
    """What else to include: ``bots`` is Footprint's (known bots are left out by default)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    bots: bool = Field(default=False, description="Count known bots' footprints (Footprint).")
    total_rows: bool = Field(default=False, description="meta.total_rows: rows before paging.")
    time_labels: bool = Field(default=False, description="meta.time_labels: every bucket.")
    imports: bool = Field(default=False, description="Accepted; nothing is ever imported.")


class QueryRequest(BaseModel):
    """A stats query."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "site_id": "example.com",
                    "metrics": ["visitors", "pageviews", "bounce_rate"],
                    "date_range": "7d",
                    "dimensions": ["visit:source"],
                    "filters": [["contains", "event:page", ["/blog"]]],
                }
            ]
        },
    )

    site_id: str = Field(
        max_length=512, pattern=NO_NUL, description='The site\'s domain ("" for the default).'
    )
    metrics: list[str] = Field(min_length=1, max_length=20)
    date_range: str | list[str] = Field(
        description='A shortcut ("day", "24h", "7d", "28d", "30d", "91d", "month", "6mo", '
        '"12mo", "year", "all") or a pair of ISO 8601 dates or date-times.'
    )
    dimensions: list[str] = Field(default_factory=list, max_length=10)
    filters: list[list[Any]] = Field(
        default_factory=list,
        max_length=50,
        description='[operator, dimension, [clauses], {"case_sensitive": false}?] or '
        '["and"|"or", [filters]] or ["not", filter].',
    )
    order_by: list[tuple[str, Literal["asc", "desc"]]] | None = Field(default=None, max_length=20)
    pagination: Pagination = Field(default_factory=lambda: Pagination())
    include: Include = Field(default_factory=lambda: Include())
    timezone: str = Field(
        default="UTC",
        max_length=64,
        description="IANA time zone of days and time buckets (Footprint).",
    )


class QueryRow(BaseModel):
    """One result row: metric values in the order asked, then dimension values."""

    metrics: list[int | float | None]
    dimensions: list[str]


class QueryMeta(BaseModel):
    """Which store answered and how long it took; what ``include`` asked for."""

    source: Literal["postgres", "clickhouse"]
    query_ms: float
    total_rows: int | None = None
    time_labels: list[str] | None = None
    imports_included: bool | None = None


class QueryResponse(BaseModel):
    """Rows, meta, and the query as it was run (shortcuts resolved, defaults filled in)."""

    results: list[QueryRow]
    meta: QueryMeta
    query: dict[str, Any]
