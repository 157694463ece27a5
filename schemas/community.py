"""Community actions that notify users: one record per event type, on the notifications topic.

``CommunityEvent`` validates any of them by its ``type``. The actor is never notified of their
own action; who is notified is resolved by the worker from the social graph in PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from footprint.ids import uuid7
from footprint.schema_types import StorableText

__all__ = [
    "CommunityEvent",
    "CreateChildComment",
    "CreateParentComment",
    "CreatePost",
    "EVENT_TYPES",
    "FollowUser",
    "PenaltyUser",
    "UserId",
    "parse_event",
]

UserId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
]
Title = Annotated[str, StringConstraints(max_length=300), StorableText]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000), StorableText]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID = Field(default_factory=uuid7, description="Unique; a replay reuses it.")
    actor_id: UserId
    occurred_at: Annotated[datetime, AfterValidator(_utc)] = Field(default_factory=_now)

    def to_bytes(self) -> bytes:
        """The JSON encoding used on the topic."""
        return self.model_dump_json().encode()


class CreatePost(_Event):
    """An author published a post: every follower of the author is notified."""

    type: Literal["create_post"] = "create_post"
    post_id: int = Field(ge=1)
    title: Title = ""


class CreateParentComment(_Event):
    """Someone commented on a post: the post's author is notified."""

    type: Literal["create_parent_comment"] = "create_parent_comment"
    post_id: int = Field(ge=1)
    comment_id: int = Field(ge=1)


class CreateChildComment(_Event):
    """Someone replied to a comment: the parent comment's author is notified."""

    type: Literal["create_child_comment"] = "create_child_comment"
    post_id: int = Field(ge=1)
    comment_id: int = Field(ge=1)
    parent_comment_id: int = Field(ge=1)


class FollowUser(_Event):
    """Someone followed a user: the followed user is notified."""

    type: Literal["follow_user"] = "follow_user"
    followed_id: UserId


class PenaltyUser(_Event):
    """A moderator penalised a user: that user is notified."""

    type: Literal["penalty_user"] = "penalty_user"
    user_id: UserId
    reason: Reason


CommunityEvent = Annotated[
    CreatePost | CreateParentComment | CreateChildComment | FollowUser | PenaltyUser,
    Field(discriminator="type"),
]
EVENT_TYPES = (
    "create_post",
    "create_parent_comment",
    "create_child_comment",
    "follow_user",
    "penalty_user",
)

_ADAPTER: TypeAdapter[CommunityEvent] = TypeAdapter(CommunityEvent)


def parse_event(raw: bytes) -> CommunityEvent:
    """Decode and validate one message value; raises ``pydantic.ValidationError``."""
    return _ADAPTER.validate_json(raw)
