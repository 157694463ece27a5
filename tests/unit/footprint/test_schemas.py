"""footprint/schema.py: what POST /api/footprints accepts and what travels on the topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from footprint.schema import Footprint, FootprintIn, pack, unpack
from footprint.schema_types import MAX_LINK


def _locs(error: ValidationError) -> list[tuple[object, ...]]:
    return [tuple(e["loc"]) for e in error.errors()]


def test_reference_minimum_body_accepted() -> None:
    item = FootprintIn.model_validate_json(
        json.dumps({"method": "GET", "link": "/posts/42", "footprint_time": "2026-11-22T09:30:00Z"})
    )
    assert item.method == "GET"
    assert item.link == "/posts/42"
    assert item.footprint_time == datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    assert isinstance(item.event_id, UUID)


def test_footprint_time_defaults_to_now_utc() -> None:
    before = datetime.now(UTC)
    item = FootprintIn.model_validate({"method": "GET", "link": "/"})
    after = datetime.now(UTC)
    assert item.footprint_time.utcoffset() == timedelta(0)
    assert before <= item.footprint_time <= after


def test_each_footprint_gets_its_own_event_id() -> None:
    a = FootprintIn.model_validate({"method": "GET", "link": "/"})
    b = FootprintIn.model_validate({"method": "GET", "link": "/"})
    assert a.event_id != b.event_id


def test_naive_time_is_taken_as_utc() -> None:
    item = FootprintIn.model_validate(
        {"method": "GET", "link": "/", "footprint_time": "2026-11-22T09:30:00"}
    )
    assert item.footprint_time == datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    assert item.footprint_time.utcoffset() == timedelta(0)


def test_offset_time_is_converted_to_utc() -> None:
    item = FootprintIn.model_validate(
        {"method": "GET", "link": "/", "footprint_time": "2026-11-22T11:30:00+02:00"}
    )
    assert item.footprint_time == datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    assert item.footprint_time.tzinfo == UTC


@pytest.mark.parametrize("method", ["get", "Post", " delete "])
def test_method_normalised_to_upper_case(method: str) -> None:
    item = FootprintIn.model_validate({"method": method, "link": "/"})
    assert item.method == method.strip().upper()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"method": "FETCH", "link": "/"}, "method"),
        ({"method": "", "link": "/"}, "method"),
        ({"method": "GET", "link": "posts/1"}, "link"),
        ({"method": "GET", "link": "https://example.com/posts/1"}, "link"),
        ({"method": "GET", "link": ""}, "link"),
        ({"method": "GET", "link": "/" + "a" * MAX_LINK}, "link"),
        ({"method": "GET", "link": "/", "colour": "blue"}, "colour"),
        ({"method": "GET", "link": "/", "status_code": 99}, "status_code"),
        ({"method": "GET", "link": "/", "status_code": "abc"}, "status_code"),
        ({"method": "GET", "link": "/", "duration_ms": -1}, "duration_ms"),
        ({"method": "GET", "link": "/", "footprint_time": "yesterday"}, "footprint_time"),
        ({"method": "GET", "link": "/", "event_id": "not-a-uuid"}, "event_id"),
        ({"method": "GET", "link": "/", "utm_source": "x" * 513}, "utm_source"),
        ({"link": "/"}, "method"),
        ({"method": "GET"}, "link"),
    ],
)
def test_invalid_input_names_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        FootprintIn.model_validate(body)
    assert (field,) in _locs(info.value)


def test_longest_link_accepted() -> None:
    link = "/" + "a" * (MAX_LINK - 1)
    assert FootprintIn.model_validate({"method": "GET", "link": link}).link == link


def test_retried_send_keeps_its_event_id() -> None:
    event_id = uuid4()
    item = FootprintIn.model_validate({"method": "GET", "link": "/", "event_id": str(event_id)})
    assert item.event_id == event_id


# --- the event on the topic ------------------------------------------------------------------


def _footprint(**changes: object) -> Footprint:
    fields: dict[str, object] = {
        "event_id": uuid4(),
        "method": "GET",
        "link": "/posts/7",
        "footprint_time": datetime(2026, 11, 22, 9, 30, 15, 250_000, tzinfo=UTC),
        "route": "/posts/{post_id}",
        "status_code": 200,
        "duration_ms": 3.25,
        "referrer": "https://news.example.com/a",
        "referrer_host": "news.example.com",
        "utm_source": "x",
        "browser": "Chrome",
        "os": "Windows",
        "device": "Other",
        "is_bot": False,
        "visitor_id": "0123456789abcdef",
        "user_id": "42",
    }
    fields.update(changes)
    return Footprint.model_validate(fields)


def test_to_bytes_from_bytes_round_trip() -> None:
    fp = _footprint()
    raw = fp.to_bytes()
    assert isinstance(raw, bytes)
    back = Footprint.from_bytes(raw)
    assert back == fp
    assert back.footprint_time == fp.footprint_time
    assert back.timestamp == fp.timestamp


def test_timestamp_is_epoch_seconds_of_event_time() -> None:
    fp = _footprint(footprint_time=datetime(2001, 9, 9, 1, 46, 40, 500_000, tzinfo=UTC))
    assert fp.timestamp == 1_000_000_000.5


def test_times_outside_what_windows_and_stores_hold_are_refused() -> None:
    for bad in ("1999-12-31T23:59:59Z", "2999-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00"):
        with pytest.raises(ValidationError) as info:
            FootprintIn.model_validate({"method": "GET", "link": "/", "footprint_time": bad})
        assert info.value.errors()[0]["loc"] == ("footprint_time",)


def test_text_that_no_store_can_hold_is_refused() -> None:
    for field, value in (("link", "/a\x00b"), ("referrer", "x\x00"), ("user_id", "\ud800")):
        body = {"method": "GET", "link": "/", field: value}
        with pytest.raises(ValidationError) as info:
            FootprintIn.model_validate(body)
        assert info.value.errors()[0]["loc"] == (field,)


def test_from_bytes_ignores_unknown_fields_from_newer_producers() -> None:
    payload = json.loads(_footprint().to_bytes())
    payload["added_in_v2"] = True
    assert Footprint.from_bytes(json.dumps(payload).encode()).link == "/posts/7"


@pytest.mark.parametrize(
    ("change", "field"),
    [({"link": "no-slash"}, "link"), ({"method": "FETCH"}, "method")],
)
def test_from_bytes_validates(change: dict[str, object], field: str) -> None:
    payload = json.loads(_footprint().to_bytes())
    payload.update(change)
    with pytest.raises(ValidationError) as info:
        Footprint.from_bytes(json.dumps(payload).encode())
    assert (field,) in _locs(info.value)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b"{}"])
def test_from_bytes_rejects_garbage(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        Footprint.from_bytes(raw)


def test_footprint_is_immutable() -> None:
    fp = _footprint()
    with pytest.raises(ValidationError):
        fp.link = "/other"  # type: ignore[misc]


def test_naive_time_on_topic_is_utc() -> None:
    payload = json.loads(_footprint().to_bytes())
    payload["footprint_time"] = "2026-11-22T09:30:00"
    fp = Footprint.from_bytes(json.dumps(payload).encode())
    assert fp.footprint_time == datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    assert fp.timestamp == datetime(2026, 11, 22, 9, 30, tzinfo=UTC).timestamp()


def test_durations_are_kept_to_the_microsecond_so_every_store_can_hold_them() -> None:
    from footprint.schema import FootprintIn as In

    assert In(method="GET", link="/", duration_ms=5.1941223822890765e-146).duration_ms == 0.0
    assert In(method="GET", link="/", duration_ms=12.3456789).duration_ms == 12.346


# --- packs: several footprints in one message ------------------------------------------------


def test_a_pack_unpacks_to_its_footprints_in_order() -> None:
    fps = [_footprint(event_id=uuid4(), link=f"/p/{i}") for i in range(3)]
    assert unpack(pack([fp.to_bytes() for fp in fps])) == (fps, [])


def test_a_single_footprint_is_still_a_message() -> None:
    fp = _footprint()
    assert unpack(fp.to_bytes()) == ([fp], [])


def test_a_pack_keeps_its_valid_footprints_and_returns_each_invalid_item_alone() -> None:
    a, b = _footprint(event_id=uuid4()), _footprint(event_id=uuid4())
    raw = pack([a.to_bytes(), b'{"link": 5}', b.to_bytes(), b"7"])
    good, invalid = unpack(raw)
    assert good == [a, b]
    assert [item for item, _ in invalid] == [b'{"link":5}', b"7"]
    first, second = (reason for _, reason in invalid)
    assert first.startswith("item 1: ") and "link: Input should be a valid string" in first
    assert "method: Field required" in first
    assert second.startswith("item 3: value: ")


@pytest.mark.parametrize("raw", [b"[]", b"[", b"[{", b"[" * 5000 + b"]" * 5000, b"{}"])
def test_values_that_are_no_pack_at_all_raise(raw: bytes) -> None:
    with pytest.raises(ValueError):  # ValidationError is a ValueError
        unpack(raw)


# --- any producer's footprints ---------------------------------------------------------------

REFERENCE = (
    b'{"method": "GET", "link": "/posts/1", "footprint_time": "2026-11-30T07:55:02.346325+09:00"}'
)


def test_the_reference_sites_message_is_a_footprint_once_completed() -> None:
    [fp], invalid = unpack(REFERENCE)
    assert invalid == [] and not fp.is_complete
    done = fp.complete(timestamp=1_764_456_902.5, topic="footprints", partition=2, offset=41)
    assert done.is_complete
    assert done.footprint_time == datetime(2026, 11, 29, 22, 55, 2, 346325, tzinfo=UTC)
    assert done.event_id is not None and done.event_id.version == 8
    # The same message read again (a replay, another worker) gets the same id.
    again = fp.complete(timestamp=1_764_456_902.5, topic="footprints", partition=2, offset=41)
    assert again.event_id == done.event_id
    other = fp.complete(timestamp=1_764_456_902.5, topic="footprints", partition=2, offset=42)
    assert other.event_id != done.event_id


def test_a_footprint_without_time_takes_the_message_timestamp() -> None:
    fp = Footprint.from_bytes(b'{"method": "get", "link": "/a"}')
    now = datetime.now(UTC).timestamp()
    done = fp.complete(timestamp=now, topic="t", partition=0, offset=0)
    assert done.method == "GET"
    assert done.footprint_time is not None
    assert abs(done.footprint_time.timestamp() - now) < 0.001


def test_a_message_timestamp_out_of_range_is_refused_naming_the_field() -> None:
    fp = Footprint.from_bytes(b'{"method": "GET", "link": "/a"}')
    with pytest.raises(ValueError, match="footprint_time"):
        fp.complete(timestamp=0.0, topic="t", partition=0, offset=0)


def test_a_complete_footprint_keeps_its_own_id_and_time() -> None:
    fp = _footprint()
    assert fp.complete(timestamp=0.0, topic="t", partition=0, offset=0) == fp


def test_the_published_json_schema_is_the_models() -> None:
    from pathlib import Path

    from schemas import export

    published = Path(export.__file__).with_name("footprint.schema.json")
    assert json.loads(published.read_text()) == export.footprint_schema(), (
        "schemas/footprint.schema.json is stale: python -m schemas.export"
    )


def test_every_accepted_method_fits_the_postgres_column() -> None:
    import re
    from pathlib import Path

    from footprint.schema_types import HTTP_METHODS

    ddl = (Path(__file__).parents[3] / "sql" / "postgres" / "001_user_footprint.sql").read_text()
    found = re.search(r"\bmethod\s+varchar\((\d+)\)", ddl)
    assert found, "the method column of user_footprint"
    width = int(found.group(1))
    assert [m for m in HTTP_METHODS if len(m) > width] == []
    assert Footprint.model_fields["method"].metadata[0].max_length == width


# --- sites, event names and custom properties ------------------------------------------------


def test_reference_format_gets_the_default_site_name_and_props() -> None:
    fp = Footprint.model_validate({"method": "GET", "link": "/", "footprint_time": "2026-11-22"})
    assert (fp.site, fp.name, fp.props) == ("", "pageview", {})
    item = FootprintIn.model_validate({"method": "GET", "link": "/"})
    assert (item.site, item.name, item.props) == (None, "pageview", {})


def test_site_is_lower_case_and_props_are_kept() -> None:
    fp = Footprint.model_validate(
        {"method": "GET", "link": "/", "site": "Shop.Example", "name": "Signup",
         "props": {"plan": "pro", "trial": ""}}
    )  # fmt: skip
    assert fp.site == "shop.example"
    assert fp.name == "Signup"
    assert fp.props == {"plan": "pro", "trial": ""}
    assert Footprint.from_bytes(fp.to_bytes()) == fp


@pytest.mark.parametrize(
    ("props", "loc"),
    [
        ({f"k{i}": "v" for i in range(31)}, ("props",)),  # more than 30 entries
        ({"k" * 301: "v"}, ("props", "k" * 301, "[key]")),  # key over 300 characters
        ({"": "v"}, ("props", "", "[key]")),  # empty key
        ({"k": "v" * 2001}, ("props", "k")),  # value over 2000 characters
        ({"k": "a\x00b"}, ("props", "k")),  # NUL: no store can hold it
        ({"k": 1}, ("props", "k")),  # only strings
    ],
)
def test_props_out_of_bounds_are_refused_naming_the_field(
    props: dict[str, object], loc: tuple[object, ...]
) -> None:
    for model in (Footprint, FootprintIn):
        with pytest.raises(ValidationError) as e:
            model.model_validate({"method": "GET", "link": "/", "props": props})
        assert loc in _locs(e.value)


def test_thirty_props_at_their_longest_are_accepted() -> None:
    props = {f"{i:02d}" + "k" * 298: "v" * 2000 for i in range(30)}
    assert Footprint.model_validate({"method": "GET", "link": "/", "props": props}).props == props


def test_empty_event_name_is_refused() -> None:
    with pytest.raises(ValidationError) as e:
        FootprintIn.model_validate({"method": "GET", "link": "/", "name": ""})
    assert ("name",) in _locs(e.value)
