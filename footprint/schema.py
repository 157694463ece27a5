"""The footprint event: what the API accepts and what travels on the footprints topic.

``FootprintIn`` is the public input (``POST /api/footprints``); its minimum is the reference
design's ``{"method", "link", "footprint_time"}``. ``Footprint`` is the enriched event the
middleware and the API produce to Kafka and the worker validates before counting and storing.
The raw IP and the raw user agent never leave the API: only the derived fields do. The field
types and limits they use are in ``footprint/schema_types.py`` (re-exported here).

On the topic a message value is one footprint (a JSON object) or a *pack* of footprints of
one partition (a JSON array of objects): the API packs what it sends at once, so the worker
pays its per-message cost once per pack. ``pack`` and ``unpack`` are that wire format.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self
from uuid import UUID

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from footprint.ids import message_id, uuid7
from footprint.schema_types import (
    EARLIEST,
    HTTP_METHODS,
    MAX_AHEAD,
    MAX_LINK,
    MAX_PROP_KEY,
    MAX_PROP_VALUE,
    MAX_PROPS,
    MAX_TEXT,
    NO_NUL,
    PAGEVIEW,
    EventName,
    Link,
    LongText,
    MaybeMillis,
    Method,
    Millis,
    Props,
    Site,
    StorableText,
    Text,
    UtcTime,
    utc_in_range,
)

__all__ = [
    # The field types' constants, imported from here by the API and the stores.
    "EARLIEST",
    "HTTP_METHODS",
    "MAX_AHEAD",
    "MAX_LINK",
    "MAX_PROPS",
    "MAX_PROP_KEY",
    "MAX_PROP_VALUE",
    "MAX_TEXT",
    "NO_NUL",
    "FIELDS",
    "PAGEVIEW",
    "Footprint",
    "FootprintIn",
    "StorableText",
    "field_values",
    "pack",
    "unpack",
]


def _now() -> datetime:
    return datetime.now(UTC)


class FootprintIn(BaseModel):
    """A page view or request reported to ``POST /api/footprints``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    method: Method
    link: Link = Field(description="The path visited, e.g. /posts/42 (no scheme or host).")
    footprint_time: UtcTime = Field(default_factory=_now, description="UTC; defaults to now.")
    event_id: UUID = Field(
        default_factory=uuid7,
        description="Unique per event; a retried send reuses it with the same footprint_time "
        "(an event is its id and its time).",
    )
    route: Text | None = Field(None, description="The route template, e.g. /posts/{post_id}.")
    status_code: int | None = Field(None, ge=100, le=599)
    duration_ms: MaybeMillis = Field(None, ge=0, le=86_400_000, allow_inf_nan=False)
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


class Completable:
    """What the worker asks of a footprint, whatever holds it: this pydantic model or the
    worker's msgspec struct (``footprint/wire.py``). ``_with`` is each one's copy-with-update."""

    __slots__ = ()
    if TYPE_CHECKING:  # the fields are each class's own (annotations here would be fields)
        event_id: UUID | None
        footprint_time: datetime | None

    def _with(self, update: dict[str, Any]) -> Self:
        raise NotImplementedError

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
    ) -> Self:
        """This footprint with an id and a time, from the message it was read from if absent.

        Raises ``ValueError`` when the message's timestamp is outside the accepted times.
        """
        update: dict[str, Any] = {}
        if self.event_id is None:
            update["event_id"] = message_id(int(timestamp * 1000), topic, partition, offset, index)
        if self.footprint_time is None:
            try:
                update["footprint_time"] = utc_in_range(datetime.fromtimestamp(timestamp, UTC))
            except (ValueError, OverflowError, OSError) as e:
                raise ValueError(f"footprint_time: absent, and the message timestamp {e}") from e
        return self._with(update)


class Footprint(Completable, BaseModel):
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
    duration_ms: Millis = Field(0.0, ge=0, le=86_400_000, allow_inf_nan=False)
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

    def _with(self, update: dict[str, Any]) -> Self:
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
