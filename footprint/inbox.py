"""The notification inbox as the worker writes it and the API reads it.

PostgreSQL ``user_notifications`` is the source of truth. Redis holds a bounded recent list per
user (a sorted set by notification id, so a replay cannot add a duplicate) and carries live
deliveries on one channel that every API process subscribes to once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

__all__ = [
    "NOTIFICATION_COLUMNS",
    "as_dict",
    "deliveries",
    "delivery",
    "unpack_deliveries",
]

NOTIFICATION_COLUMNS = 'id, "user", noti_type, payload, is_read, created_time'


def as_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    """A ``user_notifications`` row (NOTIFICATION_COLUMNS order) as the API shows it."""
    nid, user, noti_type, payload, is_read, created = row
    return {
        "id": int(nid),
        "user": user,
        "noti_type": noti_type,
        "payload": payload,
        "is_read": bool(is_read),
        "created_time": created.isoformat() if isinstance(created, datetime) else created,
    }


def delivery(notification: dict[str, Any] | None, user_id: str, unread_count: int) -> str:
    """The message on the live channel: a notification (or just a new count) for one user."""
    return json.dumps(
        {"user": user_id, "notification": notification, "unread_count": unread_count},
        separators=(",", ":"),
    )


def deliveries(items: list[tuple[dict[str, Any] | None, str, int]]) -> str:
    """Several deliveries in one message: a fan-out to thousands is a few publishes, not one
    per recipient (each publish is a command to pack, send and parse on both sides)."""
    return json.dumps(
        {
            "deliveries": [
                {"user": user, "notification": n, "unread_count": count} for n, user, count in items
            ]
        },
        separators=(",", ":"),
    )


def unpack_deliveries(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The deliveries of a message on the live channel, whichever form it has."""
    many = data.get("deliveries")
    return [d for d in many if isinstance(d, dict)] if isinstance(many, list) else [data]
