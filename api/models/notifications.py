"""``/api/notifications``: the user's inbox (``api/inbox.py``, ``footprint/inbox.py``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.models.common import Answer, IsoTime
from schemas.community import CommunityEvent

__all__ = ["MarkedAllRead", "MarkedRead", "Notification", "NotificationPage", "UnreadCount"]

NotificationType = Literal[
    "create_post", "create_parent_comment", "create_child_comment", "follow_user", "penalty_user"
]


class Notification(Answer):
    """One notification of the user's."""

    id: int = Field(description="Its id: newer ones have greater ids.")
    user: str = Field(description="The recipient (the token's user).")
    noti_type: NotificationType = Field(description="The kind of event, as payload.type.")
    payload: CommunityEvent = Field(description="The community event that caused it.")
    is_read: bool = Field(description="Whether it was marked read.")
    created_time: IsoTime = Field(description="When it was created.")


class NotificationPage(Answer):
    """A page of the user's notifications, newest first."""

    items: list[Notification]
    unread_count: int = Field(description="How many of the user's notifications are unread.")
    next_before_id: int | None = Field(
        description="before_id for the next page; null on the last page."
    )


class UnreadCount(Answer):
    """How many of the user's notifications are unread."""

    unread_count: int


class MarkedRead(Answer):
    """One notification was marked read."""

    id: int = Field(description="The notification.")
    is_read: Literal[True]
    unread_count: int = Field(description="How many remain unread.")


class MarkedAllRead(Answer):
    """Every notification of the user's was marked read."""

    marked: int = Field(description="How many were unread until now.")
    unread_count: Literal[0]
