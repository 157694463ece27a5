"""Answers of the person-data endpoints: what one user's export holds, what a deletion removed."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.models.common import Answer

__all__ = ["UserDeleted", "UserExport"]

Rows = list[dict[str, Any]]


class UserExport(Answer):
    """Everything Footprint stores about one user id, as stored (times in ISO 8601, UTC)."""

    user_id: str
    user: dict[str, Any] | None = Field(description="The community account, if there is one.")
    footprints: Rows = Field(description="Raw footprints with this user_id, oldest first.")
    following: Rows = Field(description="Whom the user follows.")
    followers: Rows = Field(description="Who follows the user.")
    posts: Rows
    comments: Rows = Field(description="The user's comments.")
    penalties_received: Rows
    penalties_given: Rows = Field(description="Penalties the user gave as a moderator.")
    notifications: Rows = Field(description="Notifications the user received.")


class UserDeleted(Answer):
    """What was removed, per store and table (0 when there was nothing)."""

    user_id: str
    deleted: dict[str, dict[str, int]] = Field(
        description="store -> table (or key kind) -> rows or keys removed"
    )
