"""A minimal community API standing in for the host site: its actions produce notifications.

Each action writes the social graph to PostgreSQL and its notification event to the outbox in
one transaction; the outbox relay publishes the event once that transaction has committed
(api/outbox.py). A rolled-back action publishes nothing, and an action succeeds (201) while the
broker is down: its event waits in the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Path, status
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.auth import AdminUser, CurrentUser
from api.deps import OutboxDep, PostgresDep
from api.models.community import CommentCreated, Followed, PenaltyCreated, PostCreated
from api.models.errors import Error, ValidationFailed, errors
from api.outbox import OutboxRelay
from footprint.schema import StorableText
from schemas.community import (
    CommunityEvent,
    CreateChildComment,
    CreateParentComment,
    CreatePost,
    FollowUser,
    PenaltyUser,
    UserId,
)

router = APIRouter(prefix="/api", tags=["community"], responses=errors(401, 422, 503))
# The actions that take a body: the body limit (api/limits.py) may refuse it, and FastAPI
# answers 400 to bytes that are not text (JSON that is not valid is a 422).
_BODY = errors(400, 413)
log = logging.getLogger(__name__)


class PostIn(BaseModel):
    """A new post."""

    model_config = ConfigDict(extra="forbid", strict=True)  # true is not a comment id
    title: Annotated[str, StringConstraints(min_length=1, max_length=300), StorableText]
    body: Annotated[str, StringConstraints(max_length=20_000), StorableText] = ""


class CommentIn(BaseModel):
    """A comment on a post, or a reply to one of its comments."""

    model_config = ConfigDict(extra="forbid", strict=True)  # true is not a comment id
    body: Annotated[str, StringConstraints(min_length=1, max_length=10_000), StorableText]
    parent_comment_id: int | None = Field(None, ge=1)


class PenaltyIn(BaseModel):
    """A moderator's penalty."""

    model_config = ConfigDict(extra="forbid", strict=True)  # true is not a comment id
    user_id: UserId
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000), StorableText]


async def _ensure_users(conn: AsyncConnection, *ids: str) -> None:
    for user_id in ids:
        await conn.execute("INSERT INTO users (id) VALUES (%s) ON CONFLICT DO NOTHING", (user_id,))


@asynccontextmanager
async def _action(pool: AsyncConnectionPool, outbox: OutboxRelay) -> AsyncIterator[AsyncConnection]:
    """One transaction for an action and its outbox event; the relay is woken once it commits.

    A database failure, the commit's included, rolls both back and answers 503: nothing was
    saved and nothing will be published, so the client can simply try again.
    """
    try:
        async with pool.connection() as conn, conn.transaction():
            yield conn
    except psycopg.Error as e:
        log.warning("community action rolled back: %s", e)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the action was not saved; try again"
        ) from e
    outbox.wake()


@router.post(
    "/posts", status_code=status.HTTP_201_CREATED, response_model=PostCreated, responses=_BODY
)
async def create_post(
    body: PostIn, user: CurrentUser, pool: PostgresDep, outbox: OutboxDep
) -> dict[str, Any]:
    """Publish a post; the author's followers are notified."""
    async with _action(pool, outbox) as conn:
        await _ensure_users(conn, user.id)
        row = await (
            await conn.execute(
                "INSERT INTO posts (author_id, title, body) VALUES (%s, %s, %s) RETURNING id",
                (user.id, body.title, body.body),
            )
        ).fetchone()
        assert row is not None
        event = CreatePost(actor_id=user.id, post_id=row[0], title=body.title)
        await outbox.add(conn, event)
    return {
        "id": row[0],
        "author_id": user.id,
        "title": body.title,
        "event_id": str(event.event_id),
    }


@router.post(
    "/posts/{post_id}/comments",
    status_code=status.HTTP_201_CREATED,
    response_model=CommentCreated,
    responses=_BODY | errors(404, notes={404: "No such post, or no such comment on it"}),
)
async def create_comment(
    post_id: Annotated[int, Path(ge=1)],
    body: CommentIn,
    user: CurrentUser,
    pool: PostgresDep,
    outbox: OutboxDep,
) -> dict[str, Any]:
    """Comment on a post (its author is notified) or reply to a comment (its author is)."""
    async with _action(pool, outbox) as conn:
        post = await (
            await conn.execute("SELECT id FROM posts WHERE id = %s", (post_id,))
        ).fetchone()
        if post is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"post {post_id} not found")
        if body.parent_comment_id is not None:
            parent = await (
                await conn.execute(
                    "SELECT id FROM comments WHERE id = %s AND post_id = %s",
                    (body.parent_comment_id, post_id),
                )
            ).fetchone()
            if parent is None:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND,
                    f"comment {body.parent_comment_id} not found on post {post_id}",
                )
        await _ensure_users(conn, user.id)
        row = await (
            await conn.execute(
                "INSERT INTO comments (post_id, author_id, parent_comment_id, body) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                (post_id, user.id, body.parent_comment_id, body.body),
            )
        ).fetchone()
        assert row is not None
        event: CommunityEvent
        if body.parent_comment_id is None:
            event = CreateParentComment(actor_id=user.id, post_id=post_id, comment_id=row[0])
        else:
            event = CreateChildComment(
                actor_id=user.id,
                post_id=post_id,
                comment_id=row[0],
                parent_comment_id=body.parent_comment_id,
            )
        await outbox.add(conn, event)
    return {
        "id": row[0],
        "post_id": post_id,
        "parent_comment_id": body.parent_comment_id,
        "event_id": str(event.event_id),
    }


@router.post(
    "/users/{user_id}/follow",
    status_code=status.HTTP_201_CREATED,
    response_model=Followed,
    responses={
        422: {
            "model": ValidationFailed | Error,
            "description": "An invalid user id, or the token's own (you cannot follow yourself)",
        }
    },
)
async def follow(
    user_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")],
    user: CurrentUser,
    pool: PostgresDep,
    outbox: OutboxDep,
) -> dict[str, Any]:
    """Follow a user; they are notified (once: following again changes nothing)."""
    if user_id == user.id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "you cannot follow yourself")
    async with _action(pool, outbox) as conn:
        await _ensure_users(conn, user.id, user_id)
        created = await (
            await conn.execute(
                "INSERT INTO follows (follower_id, followee_id) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING RETURNING 1",
                (user.id, user_id),
            )
        ).fetchone()
        event_id = None
        if created:
            event = FollowUser(actor_id=user.id, followed_id=user_id)
            await outbox.add(conn, event)
            event_id = str(event.event_id)
    return {
        "follower_id": user.id,
        "followed_id": user_id,
        "new": bool(created),
        "event_id": event_id,
    }


@router.post(
    "/admin/penalties",
    status_code=status.HTTP_201_CREATED,
    response_model=PenaltyCreated,
    responses=_BODY | errors(403, notes={403: "Moderators only (admin claim)"}),
)
async def penalise(
    body: PenaltyIn, moderator: AdminUser, pool: PostgresDep, outbox: OutboxDep
) -> dict[str, Any]:
    """Penalise a user (moderators only); the user is notified."""
    async with _action(pool, outbox) as conn:
        await _ensure_users(conn, moderator.id, body.user_id)
        row = await (
            await conn.execute(
                "INSERT INTO penalties (user_id, moderator_id, reason) "
                "VALUES (%s, %s, %s) RETURNING id",
                (body.user_id, moderator.id, body.reason),
            )
        ).fetchone()
        assert row is not None
        event = PenaltyUser(actor_id=moderator.id, user_id=body.user_id, reason=body.reason)
        await outbox.add(conn, event)
    return {"id": row[0], "user_id": body.user_id, "event_id": str(event.event_id)}
