"""A person's data (admins only): export it as JSON, or delete it from every store.

See ``api/users.py`` for what each table gives up. A store that cannot answer is a 503: the
deletion is idempotent, send it again.
"""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Path, status
from redis.exceptions import RedisError

from api.auth import AdminUser
from api.deps import ClickHouseDep, PostgresDep, RedisDep
from api.models.errors import errors
from api.models.users import UserDeleted, UserExport
from api.users import delete_user, export_user
from footprint.clickhouse import ClickHouseError
from footprint.schema import NO_NUL

router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=errors(401, 403, 422, 503))

UserIdPath = Annotated[
    str, Path(min_length=1, max_length=512, pattern=NO_NUL, description="The user id")
]
_OUTAGE = (psycopg.Error, ClickHouseError, RedisError, OSError, TimeoutError)


@router.get("/{user_id}/export", response_model=UserExport, responses=errors(404))
async def export(user_id: UserIdPath, _admin: AdminUser, pool: PostgresDep) -> dict[str, Any]:
    """Everything stored about the user: footprints, community rows, notifications."""
    try:
        found = await export_user(pool, user_id)
    except _OUTAGE as e:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"store unavailable: {e}") from e
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"nothing is stored about {user_id!r}")
    return found


@router.delete("/{user_id}", response_model=UserDeleted)
async def delete(
    user_id: UserIdPath,
    _admin: AdminUser,  # first: the credential is checked before any store is asked for
    pool: PostgresDep,
    clickhouse: ClickHouseDep,
    redis: RedisDep,
) -> dict[str, Any]:
    """Delete the user's data from PostgreSQL, ClickHouse and Redis; rollups stay."""
    try:
        deleted = await delete_user(pool, clickhouse, redis, user_id)
    except _OUTAGE as e:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"store unavailable: {e}") from e
    return {"user_id": user_id, "deleted": deleted}
