"""The dashboard and tracker routes, their opt-out from capture, and CORS for the tracker.

No servers: the TestClient is used without its context, so the lifespan does not run and
captured footprints stay in the producer's buffer, where the tests count them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.auth import mint_token
from api.main import create_app
from footprint.producer import FootprintProducer
from footprint.schema import Footprint
from footprint.settings import Settings, SettingsError, load_settings
from tests.unit.offline import offline_settings

SITE = "https://blog.example"


def _client(tmp_path: Path, **overrides: Any) -> tuple[FastAPI, TestClient]:
    app = create_app(offline_settings(tmp_path, **overrides))
    return app, TestClient(app)


def _admin(app: FastAPI) -> dict[str, str]:
    """A stats reader's header: the stats routes refuse anonymous calls."""
    return {"Authorization": f"Bearer {mint_token(app.state.settings, 'admin', admin=True)}"}


def _links(app: FastAPI) -> list[str]:
    producer: FootprintProducer = app.state.producer
    return [Footprint.from_bytes(value).link for _, value, *_ in producer._buffer]


def test_dashboard_page_and_assets_are_served_and_not_counted(tmp_path: Path) -> None:
    app, client = _client(tmp_path)
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/static/app.js" in page.text
    for asset in ("/static/app.js", "/static/style.css", "/static/vendor/uPlot.iife.min.js"):
        assert client.get(asset).status_code == 200, asset
    assert client.get("/tracker.js").status_code == 200
    assert _links(app) == [], "the dashboard must not count its own page views"

    # Only those routes opt out: any other page of the app is still recorded.
    client.get("/pricing")
    assert _links(app) == ["/pricing"]


def test_dashboard_modules_are_all_served_as_javascript(tmp_path: Path) -> None:
    _, client = _client(tmp_path)
    # Every module app.js imports, followed through their own imports: a browser refuses a
    # module answered with another type, and one missing stops the whole page.
    seen, todo = set(), ["/static/app.js"]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/javascript"), path
        assert r.text.count("\n") <= 300, f"{path}: over 300 lines, split it"
        folder = path.rsplit("/", 1)[0]
        for name in re.findall(r'^import .* from "\./([\w/.]+)";$', r.text, re.MULTILINE):
            todo.append(f"{folder}/{name}")
    assert len(seen) >= 8, seen


def test_tracker_script_is_javascript_that_honours_do_not_track(tmp_path: Path) -> None:
    _, client = _client(tmp_path)
    r = client.get("/tracker.js")
    assert r.headers["content-type"].startswith("text/javascript")
    assert "max-age" in r.headers["cache-control"]
    assert 'navigator.doNotTrack === "1"' in r.text
    assert "sendBeacon" in r.text and "/api/footprints" in r.text


def test_text_plain_beacon_is_accepted(tmp_path: Path) -> None:
    app, client = _client(tmp_path)
    body = {"method": "GET", "link": "/landing", "utm_source": "newsletter"}
    r = client.post(
        "/api/footprints",
        content=json.dumps(body),
        headers={"content-type": "text/plain;charset=UTF-8", "origin": SITE},
    )
    assert r.status_code == 202, r.text
    # The page's own site (auto-registered in development): its origin is echoed, not "*".
    assert r.headers["access-control-allow-origin"] == SITE
    assert _links(app) == ["/landing"]


def test_cors_preflight_for_footprints_only(tmp_path: Path) -> None:
    _, client = _client(tmp_path)
    preflight = {
        "origin": SITE,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    r = client.options("/api/footprints", headers=preflight)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == SITE
    assert "POST" in r.headers["access-control-allow-methods"]
    # The rest of the API (the inbox, the stats) is not opened to other sites.
    other = client.get("/api/notifications", headers={"origin": SITE})
    assert "access-control-allow-origin" not in other.headers


def test_cors_origins_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, client = _client(tmp_path, cors_origins=[SITE], auto_register_sites=False)
    ok = client.post(
        "/api/footprints", json={"method": "GET", "link": "/"}, headers={"origin": SITE}
    )
    assert ok.headers["access-control-allow-origin"] == SITE
    elsewhere = client.post(
        "/api/footprints", json={"method": "GET", "link": "/"}, headers={"origin": "https://x.test"}
    )
    assert "access-control-allow-origin" not in elsewhere.headers

    _, client = _client(tmp_path, cors_origins=[], auto_register_sites=False)
    off = client.post(
        "/api/footprints", json={"method": "GET", "link": "/"}, headers={"origin": SITE}
    )
    assert "access-control-allow-origin" not in off.headers
    assert off.status_code == 422  # blog.example is not registered

    monkeypatch.setenv("FOOTPRINT_CORS_ORIGINS", f"{SITE}/, http://localhost:3000")
    assert Settings().cors_origins == [SITE, "http://localhost:3000"]
    monkeypatch.setenv("FOOTPRINT_CORS_ORIGINS", "blog.example")
    with pytest.raises(SettingsError, match="FOOTPRINT_CORS_ORIGINS"):
        load_settings()


@pytest.mark.parametrize(
    "at", ["1999-12-31T23:59:59Z", "6868-12-09T10:51:00Z", "9999-12-31T00:00:00Z"]
)
def test_live_stats_refuse_a_time_no_footprint_can_have(tmp_path: Path, at: str) -> None:
    app, client = _client(tmp_path)
    app.state.redis = object()  # never reached: the query is refused first
    r = client.get("/api/stats/live", params={"window": "1m", "at": at}, headers=_admin(app))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "at"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"end": "0201-02-06T04:53:34.6893Z"}, "end"),
        ({"end": "9999-12-31T00:00:00Z"}, "end"),
        ({"start": "1901-01-01T00:00:00Z", "end": "1901-01-02T00:00:00Z"}, "end"),
        ({"start": "1990-01-01T00:00:00Z", "end": "2000-01-02T00:00:00Z"}, "start"),
    ],
)
def test_summary_refuses_a_period_no_store_can_hold(
    tmp_path: Path, params: dict[str, str], field: str
) -> None:
    app, client = _client(tmp_path)
    app.state.postgres = app.state.clickhouse = object()  # never reached: refused first
    r = client.get(
        "/api/stats/summary", params={**params, "source": "clickhouse"}, headers=_admin(app)
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", field]
