"""POST /api/event (Plausible's Events API) without servers: footprints stay in the producer's
buffer, as in test_footprints_route.py.

Bodies are written as Plausible's docs and its npm tracker send them (long and one-letter keys);
every refusal must name the event's own field, not the footprint's.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app
from api.routes.events import EventRefused, footprint_in, parse_event
from footprint.enrich import clean_referrer, visitor_id
from footprint.producer import FootprintProducer
from footprint.schema import Footprint
from tests.unit.offline import offline_settings

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
DOCS = {"name": "pageview", "url": "http://dummy.site", "domain": "dummy.site"}
# What @plausible-analytics/tracker 0.4.6 sends for track("Signup", {props: …}).
TRACKER = {
    "n": "Signup",
    "v": 36,
    "u": "https://Shop.example/pricing/?utm_source=news&utm_campaign=winter&ref=x#top",
    "d": "Shop.Example",
    "r": "https://search.example/q?secret=1#frag",
    "p": {"plan": "pro", "seats": 3, "yearly": True, "ratio": 1.5, "gone": None},
}


@pytest.fixture
def api(tmp_path: Path) -> tuple[FastAPI, TestClient]:
    app = create_app(offline_settings(tmp_path, max_body_bytes=200_000, trusted_proxies=1))
    return app, TestClient(app, client=("10.0.0.2", 50000))


def _produced(producer: FootprintProducer) -> list[Footprint]:
    return [Footprint.from_bytes(value) for _, value, *_ in producer._buffer]


def _refusal(body: Any) -> list[tuple[str, ...]]:
    try:
        footprint_in(parse_event(json.dumps(body).encode()))
    except EventRefused as e:
        return [tuple(map(str, err["loc"][1:])) + (err["msg"],) for err in e.errors]
    raise AssertionError("accepted")


# --- mapping ----------------------------------------------------------------------------------


def test_plausibles_tracker_body_maps_to_a_footprint() -> None:
    item = footprint_in(parse_event(json.dumps(TRACKER).encode()))
    assert (item.name, item.site, item.method, item.link) == (
        "Signup",
        "shop.example",
        "GET",
        "/pricing/",
    )
    assert item.props == {"plan": "pro", "seats": "3", "yearly": "true", "ratio": "1.5"}
    assert (item.utm_source, item.utm_campaign) == ("news", "winter")


def test_link_is_the_urls_path_and_hash_routing_keeps_the_fragment() -> None:
    def link(url: str, **extra: Any) -> str:
        return footprint_in(parse_event(json.dumps({**DOCS, "url": url, **extra}).encode())).link

    assert link("http://dummy.site") == "/"
    assert link("https://dummy.site/a/b?x=1#c") == "/a/b"
    assert link("https://dummy.site/app#/settings", h=1) == "/app#/settings"


def test_the_documented_body_is_a_pageview() -> None:
    item = footprint_in(parse_event(json.dumps(DOCS).encode()))
    assert (item.name, item.link, item.site, item.props) == ("pageview", "/", "dummy.site", {})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, [("name", "Field required"), ("url", "Field required"), ("domain", "Field required")]),
        ({**DOCS, "name": ""}, [("name", "must not be empty")]),
        ({**DOCS, "domain": " "}, [("domain", "must not be empty")]),
        ({"n": 5, "u": "http://a/", "d": "a"}, [("name", "Input should be a valid string")]),
        (
            {**DOCS, "url": "/pricing"},
            [("url", "must be an absolute URL, e.g. https://example.com/")],
        ),
        ({**DOCS, "url": "http://a:99999/"}, [("url", "not a URL: Port out of range 0-65535")]),
        (
            {**DOCS, "url": "http://a/" + "p" * 2048},
            [("url", "String should have at most 2048 characters")],
        ),
        (
            {**DOCS, "props": {f"k{i}": "v" for i in range(31)}},
            [("props", "at most 30 properties, not 31")],
        ),
        (
            {**DOCS, "props": {"ok": "v", "bad": {"nested": 1}}},
            [("props", "1", "a value must be a string, a number or a boolean")],
        ),
        (
            {**DOCS, "props": {"k": "v" * 2001}},
            [("props", "k", "String should have at most 2000 characters")],
        ),
        (
            {**DOCS, "props": {"": "v"}},
            [("props", "", "[key]", "String should have at least 1 character")],
        ),
        (
            {**DOCS, "$": {"amount": 15.99, "currency": "USD"}},
            [("revenue", "revenue is not supported by Footprint")],
        ),
        ({**DOCS, "name": "a\x00b"}, [("name", "String should match pattern '^[^\\x00]*$'")]),
    ],
)
def test_violations_name_the_events_field(body: dict[str, Any], expected: list[Any]) -> None:
    assert _refusal(body) == expected


def test_thirty_props_at_the_limits_are_accepted() -> None:
    props = {f"{i:02d}" + "k" * 298: "v" * 2000 for i in range(30)}
    assert len(footprint_in(parse_event(json.dumps({**DOCS, "props": props}).encode())).props) == 30


# --- the route --------------------------------------------------------------------------------


def test_event_is_accepted_like_plausible_and_enriched(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    headers = {
        "user-agent": CHROME,
        "x-forwarded-for": "198.51.100.7",
        "content-type": "text/plain",
    }
    r = client.post("/api/event", content=json.dumps(TRACKER), headers=headers)
    assert (r.status_code, r.text, r.headers["content-type"]) == (
        202,
        "ok",
        "text/plain; charset=utf-8",
    )
    (fp,) = _produced(app.state.producer)
    assert (fp.name, fp.site, fp.link, fp.browser, fp.is_bot) == (
        "Signup",
        "shop.example",
        "/pricing/",
        "Chrome",
        False,
    )
    assert fp.referrer == clean_referrer(TRACKER["r"]) == "https://search.example/q"
    assert fp.referrer_host == "search.example"
    assert fp.props["seats"] == "3"
    # The visitor as Plausible counts one: day's salt, domain, forwarded IP and user agent.
    salt = asyncio.run(app.state.salts.current())  # no Redis: this process's salt of the day
    assert fp.visitor_id == visitor_id(salt, "shop.example", "198.51.100.7", CHROME)
    raw = b"".join(value for _, value, *_ in app.state.producer._buffer)
    assert b"198.51.100.7" not in raw and CHROME.encode() not in raw


def test_same_visitor_on_two_domains_has_two_ids(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    for domain in ("a.example", "b.example", "a.example"):
        body = {**DOCS, "domain": domain}
        assert (
            client.post("/api/event", json=body, headers={"user-agent": CHROME}).status_code == 202
        )
    a1, b, a2 = _produced(app.state.producer)
    assert a1.visitor_id == a2.visitor_id != b.visitor_id


def test_engagement_events_are_answered_and_not_stored(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    engagement = {
        "n": "engagement",
        "sd": 40,
        "d": "shop.example",
        "u": "https://shop.example/",
        "e": 3000,
        "v": 36,
    }
    r = client.post("/api/event", json=engagement)
    assert (r.status_code, r.text) == (202, "ok")
    assert _produced(app.state.producer) == []


def test_invalid_events_are_400_naming_fields(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    r = client.post("/api/event", json={"name": "Signup", "url": "pricing"})
    assert r.status_code == 400
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "domain"]]
    for raw in (b"\xff\xfe", b"not json", b"[1]", b""):
        r = client.post("/api/event", content=raw)
        assert r.status_code == 400, raw
        assert r.json()["detail"][0]["loc"] == ["body"]
    assert _produced(app.state.producer) == []


def test_body_over_the_limit_is_413(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    r = client.post("/api/event", json={**DOCS, "padding": "x" * 300_000})
    assert r.status_code == 413
    assert "FOOTPRINT_MAX_BODY_BYTES" in r.json()["detail"]


def test_a_sites_own_pages_may_post_its_events_and_no_other_sites(
    api: tuple[FastAPI, TestClient],
) -> None:
    _, client = api
    shop = {**DOCS, "url": "https://shop.example/cart", "domain": "shop.example"}
    r = client.post("/api/event", json=shop, headers={"origin": "https://shop.example"})
    assert r.status_code == 202
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    # A page of one site cannot post another site's events (FOOTPRINT_CORS_ORIGINS aside).
    other = client.post("/api/event", json=DOCS, headers={"origin": "https://shop.example"})
    assert other.status_code == 403
    preflight = client.options(
        "/api/event",
        headers={
            "origin": "https://shop.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 200
