"""The footprint event: what the API accepts and what travels on the footprints topic.

``FootprintIn`` is the public input (``POST /api/footprints``); its minimum is the reference
design's ``{"method", "link", "footprint_time"}``. ``Footprint`` is the enriched event the
middleware and the API produce to Kafka and the worker validates before counting and storing.
The raw IP and the raw user agent never leave the API: only the derived fields do.

On the topic a message value is one footprint (a JSON object) or a *pack* of footprints of
one partition (a JSON array of objects): the API packs what it sends at once, so the worker
pays its per-message cost once per pack. ``pack`` and ``unpack`` are that wire format.
"""

from __future__ import annotations

import json
import operator
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

import pydantic_core
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from footprint.ids import message_id, uuid7

__all__ = [
    "HTTP_METHODS",
    "MAX_LINK",
    "MAX_PROPS",
    "MAX_PROP_KEY",
    "MAX_PROP_VALUE",
    "MAX_TEXT",
    "FIELDS",
    "PAGEVIEW",
    "Footprint",
    "FootprintIn",
    "StorableText",
    "field_values",
    "pack",
    "unpack",
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


def _latest_allowed() -> datetime:
    # Recomputed at most every 50 ms: the worker checks every footprint's time.
    global _latest_at, _latest
    now = time.time()
    if now - _latest_at > 0.05:
        _latest_at, _latest = now, datetime.fromtimestamp(now, UTC) + MAX_AHEAD
    return _latest


def _utc(value: datetime) -> datetime:
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
    if value > _latest_allowed():
        raise ValueError("must not be more than 5 minutes in the future")
    return value


def _now() -> datetime:
    return datetime.now(UTC)


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
UtcTime = Annotated[datetime, AfterValidator(_utc)]
# The site is its domain, lower-case ("" for the default site, e.g. a single-site install).
Site = Annotated[str, StringConstraints(max_length=MAX_TEXT, pattern=NO_NUL, to_lower=True)]
EventName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT, pattern=NO_NUL)]
PropKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROP_KEY, pattern=NO_NUL)]
PropValue = Annotated[str, StringConstraints(max_length=MAX_PROP_VALUE, pattern=NO_NUL)]
Props = Annotated[dict[PropKey, PropValue], Field(max_length=MAX_PROPS)]


class FootprintIn(BaseModel):
    """A page view or request reported to ``POST /api/footprints``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    method: Method
    link: Link = Field(description="The path visited, e.g. /posts/42 (no scheme or host).")
    footprint_time: UtcTime = Field(default_factory=_now, description="UTC; defaults to now.")
    event_id: UUID = Field(
        default_factory=uuid7, description="Unique per event; a retried send reuses it."
    )
    route: Text | None = Field(None, description="The route template, e.g. /posts/{post_id}.")
    status_code: int | None = Field(None, ge=100, le=599)
    duration_ms: Annotated[float | None, AfterValidator(_millis)] = Field(
        None, ge=0, le=86_400_000, allow_inf_nan=False
    )
    referrer: LongText | None = None
    utm_source: Text | None = None
    utm_medium: Text | None = None
    utm_campaign: Text | None = None
    utm_term: Text | None = None
    utm_content: Text | None = None
    user_agent: Text | None = Field(
        None, description="The visitor's user agent; defaults to the request's header."
    )
    user_id: Text | None = None
    site: Site | None = Field(
        None, description="The site's domain; defaults to the request's Origin (or Host)."
    )
    name: EventName = Field(PAGEVIEW, description="The event name: pageview or a custom event.")
    props: Props = Field(
        default_factory=dict,
        description=f"Custom properties: up to {MAX_PROPS} strings, keys up to {MAX_PROP_KEY} "
        f"characters, values up to {MAX_PROP_VALUE}.",
    )


class Footprint(BaseModel):
    """A footprint on the footprints topic: any producer's, at least ``method`` and ``link``.

    The reference format ``{"method", "link", "footprint_time"}`` (any UTC offset, no key) is
    accepted as it is; the worker gives an event without ``event_id`` an id derived from where
    it was read, and one without ``footprint_time`` the Kafka message's timestamp (``complete``).
    Unknown fields are ignored. The API and the middleware send every field.
    """

    model_config = ConfigDict(
        extra="ignore", frozen=True, json_schema_extra={"title": "Footprint (topic message)"}
    )

    event_id: UUID | None = Field(
        None,
        description="Unique per event, so a re-sent event is stored once. Absent: derived from "
        "the message's topic, partition and offset (a re-read keeps the same id).",
    )
    method: Method = Field(
        description="A method of the IANA HTTP Method Registry (GET, POST, PROPFIND…), any case."
    )
    link: Link = Field(description="The path visited, e.g. /posts/42 (no scheme or host).")
    footprint_time: UtcTime | None = Field(
        None,
        description="ISO 8601 with any UTC offset (naive: UTC). Absent: the Kafka message's "
        "timestamp.",
    )
    route: Text = ""
    status_code: int = Field(0, ge=0, le=599)
    duration_ms: Annotated[float, AfterValidator(_millis)] = Field(
        0.0, ge=0, le=86_400_000, allow_inf_nan=False
    )
    referrer: LongText = ""
    referrer_host: Text = ""
    utm_source: Text = ""
    utm_medium: Text = ""
    utm_campaign: Text = ""
    utm_term: Text = ""
    utm_content: Text = ""
    browser: Text = ""
    os: Text = ""
    device: Text = ""
    is_bot: bool = False
    visitor_id: Text = ""
    user_id: Text = ""
    site: Site = Field("", description='The site\'s domain, lower-case; "" for the default site.')
    name: EventName = Field(PAGEVIEW, description="The event name: pageview or a custom event.")
    props: Props = Field(
        default_factory=dict,
        description=f"Custom properties: up to {MAX_PROPS} strings, keys up to {MAX_PROP_KEY} "
        f"characters, values up to {MAX_PROP_VALUE}.",
    )

    def to_bytes(self) -> bytes:
        """The JSON encoding used on the topic."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Footprint:
        """Decode and validate one message value; raises ``pydantic.ValidationError``."""
        return cls.model_validate_json(raw)

    @property
    def timestamp(self) -> float:
        """Event time in epoch seconds (the windows are in event time)."""
        assert self.footprint_time is not None, "complete() the footprint first"
        return self.footprint_time.timestamp()

    @property
    def is_complete(self) -> bool:
        """Whether it has its id and its time (``complete`` gives them otherwise)."""
        return self.event_id is not None and self.footprint_time is not None

    def complete(
        self, *, timestamp: float, topic: str, partition: int, offset: int, index: int = 0
    ) -> Footprint:
        """This footprint with an id and a time, from the message it was read from if absent.

        Raises ``ValueError`` when the message's timestamp is outside the accepted times.
        """
        update: dict[str, object] = {}
        if self.event_id is None:
            update["event_id"] = message_id(int(timestamp * 1000), topic, partition, offset, index)
        if self.footprint_time is None:
            try:
                update["footprint_time"] = _utc(datetime.fromtimestamp(timestamp, UTC))
            except (ValueError, OverflowError, OSError) as e:
                raise ValueError(f"footprint_time: absent, and the message timestamp {e}") from e
        return self.model_copy(update=update)


_PACK: TypeAdapter[list[Footprint]] = TypeAdapter(list[Footprint])

FIELDS: tuple[str, ...] = tuple(Footprint.model_fields)
# A footprint's values in FIELDS order: one C call per footprint, not one per column (the
# sinks build a row per footprint).
field_values = operator.attrgetter(*FIELDS)


def pack(values: Sequence[bytes]) -> bytes:
    """One message value holding several serialised footprints (``Footprint.to_bytes``)."""
    return b"[" + b",".join(values) + b"]"


def unpack(raw: bytes) -> tuple[list[Footprint], list[tuple[bytes, str]]]:
    """The valid footprints of one message value, and each invalid item of a pack.

    Raises ``ValidationError`` or ``ValueError`` when the value as a whole is neither a footprint
    nor a non-empty array of them. In a pack, the valid items are returned even when others are
    not; each invalid one comes back alone, as its own JSON and the reason
    (``item 3: link: …``), so that only it is dead-lettered, not the footprints around it.
    """
    if raw.lstrip()[:1] != b"[":
        return [Footprint.from_bytes(raw)], []
    try:
        footprints = _PACK.validate_json(raw)
    except ValidationError as e:
        items = pydantic_core.from_json(raw)  # raises ValueError if it is not JSON at all
        bad = {err["loc"][0] for err in e.errors() if err["loc"] and isinstance(err["loc"][0], int)}
        if not isinstance(items, list) or not bad:
            raise
        good = [
            Footprint.from_bytes(json.dumps(item).encode())
            for i, item in enumerate(items)
            if i not in bad
        ]
        reasons: dict[int, list[str]] = {}
        for err in e.errors():
            index, *rest = err["loc"]
            if isinstance(index, int):
                where = ".".join(str(p) for p in rest) or "value"
                reasons.setdefault(index, []).append(f"{where}: {err['msg']}")
        invalid = [
            (pydantic_core.to_json(items[i]), f"item {i}: {'; '.join(reasons[i])}")
            for i in sorted(bad)
        ]
        return good, invalid
    if not footprints:
        raise ValueError("an empty pack of footprints")
    return footprints, []
