"""Every Redis key and channel Footprint uses: the layout the worker writes and the API reads.

A leaf module (it imports only ``footprint.schema_types``, itself a leaf): the worker
(``streams``), the API (``api``) and the tools share these names without importing each other.
"""

from __future__ import annotations

from datetime import date

from footprint.schema_types import PAGEVIEW

__all__ = [
    "EVENT_MEMBER",
    "LIVE_CHANNEL",
    "NOTIFICATIONS_CHANNEL",
    "STATUS_PREFIX",
    "inbox_key",
    "is_event_member",
    "live_member",
    "links_key",
    "salt_key",
    "status_key",
    "totals_key",
    "visitors_key",
]

# --- live windows (streams.sinks.redis writes, api.live reads) ---
LIVE_CHANNEL = "footprint:live"  # one message per batch: the windows it touched


# A custom event is counted in the live windows under its name, not its page: the member
# "event:<name>" beside the links (which start with "/", so the two never meet).
EVENT_MEMBER = "event:"


def live_member(link: str, name: str) -> str:
    """What a footprint is counted under in the live windows: its link, or its event's name."""
    return link if name == PAGEVIEW else EVENT_MEMBER + name


def is_event_member(member: str) -> bool:
    """Whether a live window member counts a custom event (``live_member``)."""
    return member.startswith(EVENT_MEMBER)


def links_key(name: str, start: int, partition: int) -> str:
    """Sorted set of member -> count for one window range, counted from one source partition:
    links, and custom events under ``live_member``'s name."""
    return f"footprint:live:{name}:{start}:links:{partition}"


def totals_key(name: str, start: int) -> str:
    """Hash of source partition -> total count for one window range."""
    return f"footprint:live:{name}:{start}:totals"


def visitors_key(name: str, start: int) -> str:
    """HyperLogLog of visitor ids for one window range (approximate unique visitors)."""
    return f"footprint:live:{name}:{start}:visitors"


# --- notifications (streams.sinks.notifications writes, api.hub and api.inbox read) ---
NOTIFICATIONS_CHANNEL = "footprint:notifications"


def inbox_key(user_id: str) -> str:
    """Sorted set of a user's recent notifications (score = id)."""
    return f"footprint:inbox:{user_id}"


# --- worker heartbeats (the worker writes, /api/stream/status reads) ---
STATUS_PREFIX = "footprint:worker:"


def status_key(worker_id: str) -> str:
    """One worker's heartbeat (its status as JSON, expiring with the heartbeat)."""
    return STATUS_PREFIX + worker_id


# --- visitor salts (the API's processes share one per UTC day) ---
def salt_key(day: date) -> str:
    """The key holding one UTC day's salt."""
    return f"footprint:salt:{day.isoformat()}"
