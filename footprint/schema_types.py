"""The footprint's field types and limits, shared by the models, the API and the stores.

HTTP methods (the IANA registry), text lengths, custom properties as Plausible bounds them, the
accepted time range (after 2000, at most ``MAX_AHEAD`` ahead), and text a store can hold (no NUL).
The models that use them are in ``footprint/schema.py``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

__all__ = [
    "EARLIEST",
    "HTTP_METHODS",
    "MAX_AHEAD",
    "MAX_LINK",
    "MAX_PROPS",
    "MAX_PROP_KEY",
    "MAX_PROP_VALUE",
    "MAX_TEXT",
    "NO_NUL",
    "PAGEVIEW",
    "EventName",
    "Link",
    "LongText",
    "MaybeMillis",
    "Method",
    "Millis",
    "Props",
    "Site",
    "StorableText",
    "Text",
    "UtcTime",
    "latest_allowed",
    "utc_in_range",
]

# The methods of the IANA HTTP Method Registry: what a server may really be asked (WebDAV's
# PROPFIND, the new QUERY…). Anything else is refused as a method. UPDATEREDIRECTREF is left
# out: at 17 characters it does not fit the stores' method column (16).
HTTP_METHODS = frozenset(
    [
        "ACL",
        "BASELINE-CONTROL",
        "BIND",
        "CHECKIN",
        "CHECKOUT",
        "CONNECT",
        "COPY",
        "DELETE",
        "GET",
        "HEAD",
        "LABEL",
        "LINK",
        "LOCK",
        "MERGE",
        "MKACTIVITY",
        "MKCALENDAR",
        "MKCOL",
        "MKREDIRECTREF",
        "MKWORKSPACE",
        "MOVE",
        "OPTIONS",
        "ORDERPATCH",
        "PATCH",
        "POST",
        "PRI",
        "PROPFIND",
        "PROPPATCH",
        "PUT",
        "QUERY",
        "REBIND",
        "REPORT",
        "SEARCH",
        "TRACE",
        "UNBIND",
        "UNCHECKOUT",
        "UNLINK",
        "UNLOCK",
        "UPDATE",
        "VERSION-CONTROL",
    ]
)
MAX_LINK = 2048
MAX_TEXT = 512
# Custom properties, bounded as Plausible bounds them: 30 per event, keys up to 300 characters,
# values up to 2000.
MAX_PROPS = 30
MAX_PROP_KEY = 300
MAX_PROP_VALUE = 2000
PAGEVIEW = "pageview"


def _method(value: str) -> str:
    upper = value.upper()
    if upper not in HTTP_METHODS:
        raise ValueError("must be a registered HTTP method (GET, POST, PUT, DELETE, PROPFIND…)")
    return upper


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(minutes=5)


_latest_at, _latest = 0.0, EARLIEST  # when computed (epoch s), and now + MAX_AHEAD then


def latest_allowed() -> datetime:
    """Now plus ``MAX_AHEAD``: the latest accepted event time."""
    # Recomputed at most every 50 ms: the worker checks every footprint's time.
    global _latest_at, _latest
    now = time.time()
    if now - _latest_at > 0.05:
        _latest_at, _latest = now, datetime.fromtimestamp(now, UTC) + MAX_AHEAD
    return _latest


def utc_in_range(value: datetime) -> datetime:
    """``value`` in UTC, refused outside the accepted range (ValueError)."""
    # A naive time is taken as UTC, the reference design's convention.
    offset = value.utcoffset()
    try:
        if offset is None:
            value = value.replace(tzinfo=UTC)
        elif offset:
            value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None
    # Far-off times would corrupt event-time windows (one footprint dated 9999 makes every current
    # window look expired) and do not fit ClickHouse's DateTime.
    if value < EARLIEST:
        raise ValueError(f"must be after {EARLIEST.isoformat()}")
    if value > latest_allowed():
        raise ValueError("must not be more than 5 minutes in the future")
    return value


def _millis(value: float | None) -> float | None:
    # Microsecond precision is plenty, and keeps values storable as float32 (5e-146 is not).
    return None if value is None else round(value, 3)


Method = Annotated[str, StringConstraints(max_length=16), AfterValidator(_method)]
# Any free text bound for a store: no NUL (PostgreSQL text cannot hold it). Lone surrogates
# are refused by pydantic itself, from JSON and from Python. A pattern runs in pydantic-core,
# not as a Python call per field: the worker validates every field of every footprint.
NO_NUL = r"^[^\x00]*$"
StorableText = StringConstraints(pattern=NO_NUL)

Link = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LINK, pattern=r"^/[^\x00]*$")]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT, pattern=NO_NUL)]
LongText = Annotated[str, StringConstraints(max_length=MAX_LINK, pattern=NO_NUL)]
UtcTime = Annotated[datetime, AfterValidator(utc_in_range)]
# The site is its domain, lower-case ("" for the default site, e.g. a single-site install).
Site = Annotated[str, StringConstraints(max_length=MAX_TEXT, pattern=NO_NUL, to_lower=True)]
EventName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT, pattern=NO_NUL)]
PropKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROP_KEY, pattern=NO_NUL)]
PropValue = Annotated[str, StringConstraints(max_length=MAX_PROP_VALUE, pattern=NO_NUL)]
Props = Annotated[dict[PropKey, PropValue], Field(max_length=MAX_PROPS)]
Millis = Annotated[float, AfterValidator(_millis)]
MaybeMillis = Annotated[float | None, AfterValidator(_millis)]
