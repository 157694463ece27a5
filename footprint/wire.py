"""The worker's fast decoding of footprint messages: msgspec first, pydantic when in doubt.

``footprint.schema.unpack`` validates a message with pydantic: ~8 µs a footprint, the worker's
largest single cost. ``unpack`` here decodes the same message with msgspec (~1.5 µs) into
``WireFootprint``, a struct with ``Footprint``'s fields, and gives the *same* result:

- It only answers when it is sure pydantic would accept every footprint of the message with
  the same values. Anything else — an error of any kind, a method to upper-case, a time with
  more than microsecond digits (msgspec rounds them, pydantic truncates), a NUL, a site to
  lower-case, a duration with more than three decimals — sends the whole message to
  ``footprint.schema.unpack``, whose footprints and reasons are those of the contract.
- What msgspec cannot check as pydantic does (the method registry, a link's leading ``/``,
  the accepted time range, NUL in any text) is checked here or by a scan of the raw bytes.

``tests/unit/footprint/test_wire.py`` holds the two decoders to the same answers over
generated messages (hypothesis), valid and not.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Self
from uuid import UUID

import msgspec
from msgspec import Meta

from footprint import schema
from footprint.schema_types import (
    EARLIEST,
    HTTP_METHODS,
    MAX_LINK,
    MAX_PROP_KEY,
    MAX_PROP_VALUE,
    MAX_PROPS,
    MAX_TEXT,
    PAGEVIEW,
    latest_allowed,
    utc_in_range,
)

__all__ = ["AnyFootprint", "WireFootprint", "unpack", "wire"]

_Text = Annotated[str, Meta(max_length=MAX_TEXT)]
_LongText = Annotated[str, Meta(max_length=MAX_LINK)]
_Props = Annotated[
    dict[
        Annotated[str, Meta(min_length=1, max_length=MAX_PROP_KEY)],
        Annotated[str, Meta(max_length=MAX_PROP_VALUE)],
    ],
    Meta(max_length=MAX_PROPS),
]


class WireFootprint(schema.Completable, msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """A footprint as the worker handles it: ``schema.Footprint``'s fields, in its order."""

    event_id: UUID | None = None
    method: Annotated[str, Meta(max_length=16)]
    link: Annotated[str, Meta(min_length=1, max_length=MAX_LINK)]
    footprint_time: datetime | None = None
    route: _Text = ""
    status_code: Annotated[int, Meta(ge=0, le=599)] = 0
    duration_ms: Annotated[float, Meta(ge=0, le=86_400_000)] = 0.0
    referrer: _LongText = ""
    referrer_host: _Text = ""
    utm_source: _Text = ""
    utm_medium: _Text = ""
    utm_campaign: _Text = ""
    utm_term: _Text = ""
    utm_content: _Text = ""
    browser: _Text = ""
    os: _Text = ""
    device: _Text = ""
    is_bot: bool = False
    visitor_id: _Text = ""
    user_id: _Text = ""
    site: _Text = ""
    name: Annotated[str, Meta(min_length=1, max_length=MAX_TEXT)] = PAGEVIEW
    props: _Props = msgspec.field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """The JSON encoding used on the topic."""
        return _encode(self)

    def _with(self, update: dict[str, Any]) -> Self:
        return msgspec.structs.replace(self, **update)


# Either kind: what the sinks and the counting read (the same attribute names).
AnyFootprint = schema.Footprint | WireFootprint

_FIELDS = tuple(WireFootprint.__struct_fields__)
assert _FIELDS == schema.FIELDS, "WireFootprint must list Footprint's fields in its order"

_encode = msgspec.json.Encoder().encode
_one = msgspec.json.Decoder(WireFootprint).decode
_many = msgspec.json.Decoder(list[WireFootprint]).decode
# In the raw bytes: a fraction of a second longer than microseconds (or any such number).
_LONG_FRACTION = re.compile(rb"\.[0-9]{7}")


def wire(fp: schema.Footprint) -> WireFootprint:
    """The struct of a validated pydantic footprint (the same values)."""
    return WireFootprint(**{name: getattr(fp, name) for name in _FIELDS})


def unpack(raw: bytes) -> tuple[list[WireFootprint], list[tuple[bytes, str]]]:
    """``footprint.schema.unpack``, faster: the same footprints, the same invalid items."""
    footprints = _fast(raw)
    if footprints is not None:
        return footprints, []
    good, invalid = schema.unpack(raw)
    return [wire(fp) for fp in good], invalid


def _fast(raw: bytes) -> list[WireFootprint] | None:
    """The message's footprints when sure pydantic takes them all as they are; else None."""
    # A NUL, escaped or not: the text columns cannot hold it (pydantic gives the reason).
    if b"\\u0000" in raw or b"\x00" in raw or _LONG_FRACTION.search(raw):
        return None
    try:
        footprints = _many(raw) if raw.lstrip()[:1] == b"[" else [_one(raw)]
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if not footprints:
        return None
    latest = latest_allowed()
    for i, fp in enumerate(footprints):
        if (
            fp.link[0] != "/"
            or round(fp.duration_ms, 3) != fp.duration_ms
            or (fp.site and fp.site.lower() != fp.site)
        ):
            return None
        update: dict[str, Any] = {}
        if fp.method not in HTTP_METHODS:  # pydantic upper-cases a method, then checks it
            method = fp.method.upper()
            if method not in HTTP_METHODS:
                return None
            update["method"] = method
        t = fp.footprint_time
        if t is not None:
            if t.tzinfo is UTC:
                if not EARLIEST <= t <= latest:
                    return None
            else:  # naive (taken as UTC) or another offset (the reference site sends KST)
                try:
                    update["footprint_time"] = utc_in_range(t)
                except ValueError:
                    return None
        if update:
            footprints[i] = msgspec.structs.replace(fp, **update)
    return footprints
