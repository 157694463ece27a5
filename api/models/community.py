"""``/api``'s community actions: each answers what it saved and the event it will publish."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from api.models.common import Answer

__all__ = ["CommentCreated", "Followed", "PenaltyCreated", "PostCreated"]

_EVENT = "The notification event's id: it is published once the action has committed."


class PostCreated(Answer):
    """A post was published."""

    id: int = Field(description="The post's id.")
    author_id: str = Field(description="The token's user.")
    title: str = Field(description="The title as saved.")
    event_id: UUID = Field(description=_EVENT)


class CommentCreated(Answer):
    """A comment (or a reply) was saved."""

    id: int = Field(description="The comment's id.")
    post_id: int = Field(description="The post it is on.")
    parent_comment_id: int | None = Field(description="The comment it replies to, if any.")
    event_id: UUID = Field(description=_EVENT)


class Followed(Answer):
    """The token's user follows the user now."""

    follower_id: str = Field(description="The token's user.")
    followed_id: str = Field(description="The user followed.")
    new: bool = Field(description="False when they were followed already (nothing changed).")
    event_id: UUID | None = Field(description=_EVENT + " Null when nothing changed.")


class PenaltyCreated(Answer):
    """A penalty was saved."""

    id: int = Field(description="The penalty's id.")
    user_id: str = Field(description="The user penalised.")
    event_id: UUID = Field(description=_EVENT)
