"""footprint/wire.py: the worker's fast decoding gives exactly what the pydantic contract gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from footprint import schema, wire
from footprint.schema import pack

NOW = datetime.now(UTC)


@st.composite
def _iso(draw: st.DrawFn, earliest: datetime, latest: datetime) -> str:
    """An ISO 8601 time with 0-9 digits of fraction, any of several offsets or separators."""
    edges = [datetime(2000, 1, 1), (NOW + timedelta(minutes=5)).replace(tzinfo=None)]
    near = st.sampled_from(edges).flatmap(
        lambda e: st.integers(-7200, 7200).map(lambda s: e + timedelta(seconds=s))
    )
    t = draw(st.one_of(st.datetimes(min_value=earliest, max_value=latest), near))
    n = draw(st.integers(0, 9))
    fraction = f".{t.microsecond:06d}{draw(st.integers(0, 999)):03d}"[: n + 1] if n else ""
    offset = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00", "+09:00", "-05:30", "+0900", ""]))
    sep = draw(st.sampled_from(["T", "T", "t", " ", "_"]))
    return f"{t:%Y-%m-%d}{sep}{t:%H:%M:%S}{fraction}{offset}"


def _times() -> st.SearchStrategy[Any]:
    """Event times as producers write them: offsets, fractions of 0-9 digits, naive, odd forms."""
    iso = _iso(datetime(1999, 12, 30), (NOW + timedelta(days=2)).replace(tzinfo=None))
    odd = st.sampled_from(
        [
            "2026-11-30",
            "2026-11-30T08:05Z",
            "2026-11-30T08:05:31,5Z",
            "2026-11-30T24:00:00Z",
            "2026-11-30T08:05:31.Z",
            "2026-11-30T08:05:31+09",
            "1999-12-31T23:59:59Z",
            "2000-01-01T00:00:00Z",
            "2000-01-01T08:59:59+09:00",
            "9999-12-31T23:59:59Z",
            "",
            "now",
        ]
    )
    return st.one_of(iso, odd, st.none(), st.integers(0, 2_000_000_000), st.floats())


TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "a" * 512, "a" * 513, "é" * 512, "x\x00y", "Chrome", "\U0001f600"]),
)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.one_of(
        st.none(),
        st.uuids().map(str),
        st.uuids().map(lambda u: u.hex),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: f"{{{u}}}"),
        st.uuids().map(lambda u: f"urn:uuid:{u}"),
        st.sampled_from(["", "not-a-uuid", 5]),
    ),
    "method": st.one_of(
        st.sampled_from(
            ["GET", "get", "Post", "PROPFIND", "FOO", " GET", "", "ß", "GETGETGETGETGETGE"]
        ),
        st.integers(),
        st.none(),
    ),
    "link": st.one_of(
        st.sampled_from(["/", "/a", "a", "", "/x\x00y", "/" + "a" * 2047, "/" + "a" * 2048, "/é"]),
        st.text(max_size=10).map(lambda s: "/" + s),
        st.integers(),
        st.none(),
    ),
    "footprint_time": _times(),
    "route": TEXT,
    "status_code": st.one_of(
        st.integers(-5, 700), st.sampled_from(["200", 200.0, 200.5, True, None, 10**30])
    ),
    "duration_ms": st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(0, 100_000).map(lambda f: round(f, 3)),
        st.integers(-1, 100_000_000),
        st.sampled_from(["5", True, None, -0.0, 1e300, 86_400_000, 86_400_000.0001]),
    ),
    "referrer": st.one_of(TEXT, st.just("r" * 2049)),
    "utm_source": TEXT,
    "browser": TEXT,
    "is_bot": st.one_of(st.booleans(), st.sampled_from(["true", 1, 0, None, "yes"])),
    "visitor_id": TEXT,
    "site": st.one_of(TEXT, st.sampled_from(["Example.COM", "example.com", "ǅ", "İ", "ß"])),
    "name": st.one_of(TEXT, st.just("pageview")),
    "props": st.one_of(
        st.dictionaries(TEXT, TEXT, max_size=3),
        st.dictionaries(st.text(min_size=1, max_size=4), st.just("v"), min_size=29, max_size=31),
        st.sampled_from([{"": "v"}, {"k": 5}, {"k": None}, [], None]),
    ),
    "extra": st.text(max_size=5),
}
# Mostly near-valid footprints, so the fast path is taken often, not only refused.
VALID: dict[str, st.SearchStrategy[Any]] = {
    "method": st.sampled_from(["GET", "post"]),
    "link": st.one_of(st.text(max_size=12).map(lambda s: "/" + s), st.sampled_from(["a", "x/"])),
    "footprint_time": _iso(datetime(2001, 1, 1), (NOW - timedelta(days=1)).replace(tzinfo=None)),
    "duration_ms": st.one_of(st.floats(0, 10_000), st.floats(0, 10_000).map(lambda f: round(f, 5))),
    "site": st.sampled_from(["", "example.com", "Example.com"]),
}


@st.composite
def footprint_objects(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.integers(), st.text(max_size=3), st.none(), st.lists(st.none())))
    base = {k: draw(v) for k, v in VALID.items() if k in ("method", "link") or draw(st.booleans())}
    wild = {k: draw(VALUES[k]) for k in draw(st.sets(st.sampled_from(sorted(VALUES)), max_size=3))}
    return {**base, **wild}


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        value: Any = draw(footprint_objects())
    else:
        value = draw(st.lists(footprint_objects(), max_size=4))
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


def _answer(unpack: Any, raw: bytes) -> Any:
    try:
        good, invalid = unpack(raw)
    except Exception as e:
        return ("raises", type(e).__name__, str(e))
    good = [fp if isinstance(fp, wire.WireFootprint) else wire.wire(fp) for fp in good]
    # Equal structs, and equal encodings: the same offset, not only the same instant.
    return ("ok", good, [fp.to_bytes() for fp in good], invalid)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=messages())
def test_the_fast_decoding_answers_as_the_contract(raw: bytes) -> None:
    assert _answer(wire.unpack, raw) == _answer(schema.unpack, raw)


def _footprint(**fields: Any) -> schema.Footprint:
    base = {"event_id": uuid4(), "method": "GET", "link": "/a", "footprint_time": NOW}
    return schema.Footprint(**{**base, **fields})


def test_the_api_s_footprints_take_the_fast_path_with_their_values() -> None:
    fps = [_footprint(link=f"/p/{i}", props={"k": "v"}, site="example.com") for i in range(3)]
    raw = pack([fp.to_bytes() for fp in fps])
    assert wire._fast(raw) == [wire.wire(fp) for fp in fps]
    assert wire.unpack(raw) == ([wire.wire(fp) for fp in fps], [])


def test_the_reference_sites_message_takes_the_fast_path_in_utc() -> None:
    kst = (NOW - timedelta(minutes=1)).astimezone(timezone(timedelta(hours=9)))
    raw = json.dumps({"method": "get", "link": "/posts/1", "footprint_time": kst.isoformat()})
    fast = wire._fast(raw.encode())
    assert fast is not None
    [fp] = fast
    assert fp.method == "GET" and fp.footprint_time == kst and fp.footprint_time.tzinfo is UTC


@pytest.mark.parametrize(
    "raw",
    [
        b'{"method": "GET", "link": "/a\\u0000"}',  # a NUL: pydantic gives the reason
        b'{"method": "GET", "link": "/a", "footprint_time": "2026-11-30T08:05:31.1234567Z"}',
        b'{"method": "FOO", "link": "/a"}',
        b'{"method": "GET", "link": "/a", "site": "Example.com"}',
        b'{"method": "GET", "link": "/a", "duration_ms": 1.23456}',
        b"[]",
    ],
)
def test_what_pydantic_must_decide_goes_to_pydantic(raw: bytes) -> None:
    assert wire._fast(raw) is None
    assert _answer(wire.unpack, raw) == _answer(schema.unpack, raw)


def test_a_pack_with_invalid_items_is_split_as_the_contract_splits_it() -> None:
    a, b = _footprint(), _footprint()
    raw = pack([a.to_bytes(), b'{"link": 5}', b.to_bytes(), b"7"])
    good, invalid = wire.unpack(raw)
    assert good == [wire.wire(a), wire.wire(b)]
    assert invalid == schema.unpack(raw)[1]


def test_complete_and_to_bytes_match_the_model() -> None:
    raw = b'{"method": "GET", "link": "/posts/1"}'
    [model], _ = schema.unpack(raw)
    [fast], _ = wire.unpack(raw)
    args = {"timestamp": NOW.timestamp(), "topic": "t", "partition": 2, "offset": 41, "index": 3}
    done, done_model = fast.complete(**args), model.complete(**args)
    assert done == wire.wire(done_model) and done.is_complete and not fast.is_complete
    assert isinstance(done.event_id, UUID) and done.timestamp == done_model.timestamp
    assert json.loads(done.to_bytes()) == json.loads(done_model.to_bytes())
    assert schema.Footprint.from_bytes(done.to_bytes()) == done_model
    with pytest.raises(ValueError, match="footprint_time: absent"):
        fast.complete(**{**args, "timestamp": 0.0})
