"""A site's goals and funnels, in the shape of Plausible's Sites API goals endpoints.

``PUT /api/v1/sites/goals`` finds or creates a goal (idempotent), ``GET`` lists them, ``DELETE
/api/v1/sites/goals/{goal_id}?site_id=`` deletes one (not while a funnel uses it: 409). Funnels
likewise under ``/api/v1/sites/funnels``: ``PUT`` stores one under its name (its steps replaced
if it exists). Who may: an admin token, or the site's API key (another site answers 404, as one
that does not exist); a shared link may list, not change.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from api.auth import SiteHidden, StatsAccess, StatsReader, check_site
from api.deps import PostgresDep
from api.goals import GoalConflict, GoalInUse, GoalStore, UnknownFunnel, UnknownGoal
from api.models.errors import Error, errors
from api.models.goals import Deleted, FunnelIn, FunnelList, FunnelOut, GoalIn, GoalList, GoalOut
from api.routes.sites import UnavailableRoute
from api.sites import UnknownSite
from footprint.schema import NO_NUL

router = APIRouter(
    prefix="/api/v1/sites",
    tags=["goals"],
    responses=errors(401, 403, 404, 422, 503),
    route_class=UnavailableRoute,
)

SiteId = Annotated[str, Query(max_length=300, pattern=NO_NUL, description="The site's domain.")]
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Error, "description": "In conflict with another goal or a funnel"}
}


def _site(access: StatsAccess, site_id: str, *, change: bool) -> str:
    site = site_id.strip().lower()
    try:
        check_site(access, site)
    except SiteHidden:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site_id!r}") from None
    if change and access.kind == "link":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "a shared link is read-only: use the site's API key"
        )
    return site


def _no_site(site: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site!r}")


@router.put("/goals", response_model=GoalOut, responses={**_CONFLICT, **errors(400, 413)})
async def put_goal(body: GoalIn, access: StatsReader, pool: PostgresDep) -> dict[str, Any]:
    """Find or create a goal: an event name, or pageviews of a path (``*``, ``**`` wildcards)."""
    site = _site(access, body.site_id, change=True)
    try:
        goal, _ = await GoalStore(pool).add_goal(
            site, body.event_name, body.page_path, body.display_name
        )
    except UnknownSite:
        raise _no_site(site) from None
    except GoalConflict as e:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"another goal of the site is named {e.args[0]!r}"
        ) from None
    return goal.answer()


@router.get("/goals", response_model=GoalList)
async def list_goals(site_id: SiteId, access: StatsReader, pool: PostgresDep) -> dict[str, Any]:
    """The site's goals, oldest first."""
    site = _site(access, site_id, change=False)
    return {"goals": [g.answer() for g in await GoalStore(pool).goals(site)]}


@router.delete("/goals/{goal_id}", response_model=Deleted, responses=_CONFLICT)
async def delete_goal(
    goal_id: Id, site_id: SiteId, access: StatsReader, pool: PostgresDep
) -> dict[str, Any]:
    """Delete a goal of the site (its footprints stay); refused while a funnel uses it."""
    site = _site(access, site_id, change=True)
    try:
        await GoalStore(pool).delete_goal(site, goal_id)
    except UnknownGoal:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"site has no goal {goal_id}") from None
    except GoalInUse as e:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"goal {goal_id} is a step of the funnels {', '.join(map(repr, e.args[0]))}: "
            "delete them or change their steps first",
        ) from None
    return {"deleted": True}


@router.put("/funnels", response_model=FunnelOut, responses=errors(400, 413))
async def put_funnel(body: FunnelIn, access: StatsReader, pool: PostgresDep) -> dict[str, Any]:
    """Store a funnel of 2 to 8 of the site's goals, in order (its steps replaced if it exists)."""
    site = _site(access, body.site_id, change=True)
    try:
        funnel = await GoalStore(pool).put_funnel(site, body.name, body.steps)
    except UnknownSite:
        raise _no_site(site) from None
    except UnknownGoal as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"site has no goal {e.args[0]}") from None
    return funnel.answer()


@router.get("/funnels", response_model=FunnelList)
async def list_funnels(site_id: SiteId, access: StatsReader, pool: PostgresDep) -> dict[str, Any]:
    """The site's funnels with their steps, oldest first."""
    site = _site(access, site_id, change=False)
    return {"funnels": [f.answer() for f in await GoalStore(pool).funnels(site)]}


@router.delete("/funnels/{funnel_id}", response_model=Deleted)
async def delete_funnel(
    funnel_id: Id, site_id: SiteId, access: StatsReader, pool: PostgresDep
) -> dict[str, Any]:
    """Delete a funnel of the site (its goals stay)."""
    site = _site(access, site_id, change=True)
    try:
        await GoalStore(pool).delete_funnel(site, funnel_id)
    except UnknownFunnel:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"site has no funnel {funnel_id}") from None
    return {"deleted": True}
