"""The REST inbox: list, unread count, mark read. Every call is scoped to the token's user."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException, Path, Query, status

from api import inbox
from api.auth import CurrentUser
from api.deps import PostgresDep, RedisDep
from api.models.errors import errors
from api.models.notifications import (
    MarkedAllRead,
    MarkedRead,
    NotificationPage,
    UnreadCount,
)
from footprint.inbox import delivery
from footprint.keys import NOTIFICATIONS_CHANNEL

router = APIRouter(prefix="/api/notifications", tags=["notifications"], responses=errors(401))


async def _announce_count(redis: aioredis.Redis, user: str, count: int) -> None:
    # Other tabs update their badge; a Redis outage must not fail the request.
    with contextlib.suppress(Exception):
        await redis.publish(NOTIFICATIONS_CHANNEL, delivery(None, user, count))


@router.get("", response_model=NotificationPage, responses=errors(422))
async def list_notifications(
    user: CurrentUser,
    pool: PostgresDep,
    unread_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    """The user's notifications, newest first; page with ``before_id``."""
    items = await inbox.page(
        pool, user.id, unread_only=unread_only, limit=limit, before_id=before_id
    )
    return {
        "items": items,
        "unread_count": await inbox.unread_count(pool, user.id),
        "next_before_id": items[-1]["id"] if len(items) == limit else None,
    }


@router.get("/unread-count", response_model=UnreadCount)
async def unread_count(user: CurrentUser, pool: PostgresDep) -> dict[str, int]:
    """How many notifications are unread."""
    return {"unread_count": await inbox.unread_count(pool, user.id)}


@router.post(
    "/{notification_id}/read",
    response_model=MarkedRead,
    responses=errors(404, 422, notes={404: "The user has no such notification"}),
)
async def mark_read(
    notification_id: Annotated[int, Path(ge=1)],
    user: CurrentUser,
    pool: PostgresDep,
    redis: RedisDep,
) -> dict[str, Any]:
    """Mark one notification read (404 if it is not the user's)."""
    if not await inbox.mark_read(pool, user.id, notification_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"notification {notification_id} not found")
    count = await inbox.unread_count(pool, user.id)
    await _announce_count(redis, user.id, count)
    return {"id": notification_id, "is_read": True, "unread_count": count}


@router.post("/read-all", response_model=MarkedAllRead)
async def mark_all_read(user: CurrentUser, pool: PostgresDep, redis: RedisDep) -> dict[str, int]:
    """Mark every notification read."""
    marked = await inbox.mark_all_read(pool, user.id)
    await _announce_count(redis, user.id, 0)
    return {"marked": marked, "unread_count": 0}
