"""``POST /api/v2/query`` (stats in the shape of Plausible's Stats API v2) and ``POST
/api/v2/funnel`` (a stored funnel's steps), from either store.

Errors answer as Plausible's do, ``{"error": "…"}`` naming the offending field: 400 for a bad
query (its JSON shape included), 501 for a ClickHouse server without window functions, 504 past
``FOOTPRINT_QUERY_TIMEOUT``, 503 when the store cannot answer.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import Field
from starlette.exceptions import HTTPException

from api import query as stats_query
from api.auth import SiteHidden, StatsAccess, StatsReader, check_site
from api.deps import ClickHouseDep, PostgresDep, SettingsDep
from api.funnels import funnel_report
from api.goals import GoalStore, UnknownFunnel
from api.models.common import Answer
from api.models.errors import errors
from api.models.funnels import FunnelQuery, FunnelReport
from api.query.export import CSV_TYPE, to_csv, wants_csv
from api.sites import RegistryUnavailable
from footprint.clickhouse import ClickHouseError

# Who may query: whoever may read stats (api.auth.authorize_stats decides); a site key or shared
# link only its own site (another site answers 404, as one that does not exist).
QueryReader = StatsReader

_TIMEOUT_CODE = 159  # ClickHouse TIMEOUT_EXCEEDED
_BAD_REGEXP_CODE = 427  # ClickHouse CANNOT_COMPILE_REGEXP


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _shape_error(exc: RequestValidationError) -> str:
    first = exc.errors()[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    where = ".".join(loc) or "body"
    return f"{where}: {first.get('msg', 'invalid')}"


class _PlausibleErrors(APIRoute):
    """A route whose malformed bodies answer 400 ``{"error"}``, as Plausible's API does."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as e:
                if any(err.get("loc", ("",))[0] == "body" for err in e.errors()):
                    return _error(400, _shape_error(e))
                raise
            except HTTPException as e:  # a body that is not even text (not UTF-8)
                if e.status_code == 400:
                    return _error(400, f"body: {e.detail}")
                raise

        return route


router = APIRouter(prefix="/api/v2", tags=["query"], route_class=_PlausibleErrors)


class PlausibleError(Answer):
    """Why the query failed, in the shape of Plausible's API."""

    error: str = Field(description="What is wrong, naming the field.")


_ERRORS: dict[int | str, dict[str, Any]] = {
    **errors(401, 403, 413),
    400: {"model": PlausibleError, "description": "A bad query: the error names the field"},
    404: {"model": PlausibleError, "description": "No such site (for this key or link) or funnel"},
    200: {
        "content": {
            CSV_TYPE: {
                "schema": {
                    "type": "string",
                    "description": "A header (dimensions, then metrics), one row per result",
                }
            }
        },
        "description": "The results, as JSON or as CSV when asked",
    },
    501: {"model": PlausibleError, "description": "A ClickHouse server older than 21.8"},
    503: {"model": PlausibleError, "description": "The store could not answer"},
    504: {"model": PlausibleError, "description": "The query ran past FOOTPRINT_QUERY_TIMEOUT"},
}


Source = Annotated[
    Literal["postgres", "clickhouse"] | None,
    Query(description="The store that answers; ClickHouse by default"),
]


def _mentions_goals(body: stats_query.QueryRequest) -> bool:
    # The site's goals are read only when the query may name them (filters nest: look at text).
    return "event:goal" in body.dimensions or "event:goal" in json.dumps(body.filters)


async def _answer(
    access: StatsAccess,
    site_id: str,
    source: stats_query.Source | None,
    timeout: float,
    work: Callable[[stats_query.Source], Awaitable[Any]],
) -> Any:
    """``work(store)`` for a reader of ``site_id``, or Plausible's error shape."""
    try:
        check_site(access, site_id)
    except SiteHidden:
        return _error(404, f"site_id: no site {site_id!r}")
    store: stats_query.Source = source or "clickhouse"
    try:
        return await work(store)
    except stats_query.UnsupportedServer as e:
        return _error(501, str(e))
    except psycopg.errors.QueryCanceled:
        return _error(504, f"the query ran past FOOTPRINT_QUERY_TIMEOUT ({timeout:g} s)")
    except psycopg.errors.DataError as e:
        return _error(400, f"postgres refused a value of the query: {e}")
    except ClickHouseError as e:
        if e.code == _TIMEOUT_CODE:
            return _error(504, f"the query ran past FOOTPRINT_QUERY_TIMEOUT ({timeout:g} s)")
        if e.code == _BAD_REGEXP_CODE:
            return _error(400, f"clickhouse refused a pattern of the query: {e}")
        return _error(503, f"clickhouse unavailable: {e}")
    except (psycopg.Error, OSError, TimeoutError, RegistryUnavailable) as e:
        return _error(503, f"{store} unavailable: {e}")


@router.post(
    "/query",
    response_model=stats_query.QueryResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
)
async def post_query(
    request: Request,
    body: stats_query.QueryRequest,
    access: QueryReader,
    settings: SettingsDep,
    pool: PostgresDep,
    clickhouse: ClickHouseDep,
    source: Source = None,
    format: Annotated[  # noqa: A002 - the query parameter's name
        Literal["json", "csv"] | None,
        Query(description="csv: the rows as CSV (as Accept: text/csv asks)"),
    ] = None,
) -> Any:
    """Metrics over a date range, grouped by dimensions and filtered (Plausible Stats API v2).

    ``event:goal`` names the site's configured goals (or spells one inline); as a dimension with
    no goal filter it breaks down by every configured goal.
    """
    timeout = settings.query_timeout

    async def answer(store: stats_query.Source) -> Any:
        site = body.site_id.strip().lower()
        goals = await GoalStore(pool).goals(site) if _mentions_goals(body) else []
        try:
            checked = stats_query.plan(body, datetime.now(UTC), [g.as_goal() for g in goals])
        except stats_query.QueryError as e:
            return _error(400, str(e))
        result = await stats_query.run(
            store, checked, pool=pool, clickhouse=clickhouse, timeout=timeout
        )
        return to_csv(result) if wants_csv(request, format) else result

    return await _answer(access, body.site_id, source, timeout, answer)


@router.post("/funnel", response_model=FunnelReport, responses=_ERRORS)
async def post_funnel(
    body: FunnelQuery,
    access: QueryReader,
    settings: SettingsDep,
    pool: PostgresDep,
    clickhouse: ClickHouseDep,
    source: Source = None,
) -> Any:
    """A stored funnel over a date range: per step, its visitors, conversion and drop-off.

    A visit reaches a step when its footprints complete the funnel's goals up to that step in
    order (see ``api/query/funnel.py``); a visitor reaches it when one of their visits does.
    """
    timeout = settings.query_timeout

    async def answer(store: stats_query.Source) -> Any:
        try:
            return await funnel_report(
                body, store, pool=pool, clickhouse=clickhouse, timeout=timeout
            )
        except UnknownFunnel:
            return _error(404, f"funnel_id: the site has no funnel {body.funnel_id}")
        except stats_query.QueryError as e:
            return _error(400, str(e))

    return await _answer(access, body.site_id, source, timeout, answer)
