"""POST /api/footprints and FootprintMiddleware, without servers: the producer only buffers.

The TestClient is used without entering its context, so the lifespan (which opens real clients)
does not run and nothing is sent anywhere; produced footprints stay in the producer's buffer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from api.main import create_app
from footprint import enrich as enrich_module
from footprint.enrich import parse_agent
from footprint.middleware import FootprintMiddleware
from footprint.producer import FootprintProducer
from footprint.salts import DailySalts
from footprint.schema import Footprint
from tests.unit.offline import offline_settings

CLIENT_IP = "203.0.113.77"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
# An hour ago, at a whole second: inside the event-time policy whenever the tests run.
AN_HOUR_AGO = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
ONE = {"method": "GET", "link": "/posts/42", "footprint_time": AN_HOUR_AGO.isoformat()}


def _produced(producer: FootprintProducer) -> list[Footprint]:
    return [Footprint.from_bytes(value) for _, value, *_ in producer._buffer]


def _raw(producer: FootprintProducer) -> bytes:
    return b"\n".join(value for _, value, *_ in producer._buffer)


@pytest.fixture
def api(tmp_path: Path) -> tuple[FastAPI, TestClient]:
    app = create_app(offline_settings(tmp_path, max_batch_footprints=5, max_body_bytes=2048))
    return app, TestClient(app, client=(CLIENT_IP, 50000))


def _error_locs(response: Any) -> list[list[Any]]:
    return [err["loc"] for err in response.json()["detail"]]


# --- POST /api/footprints --------------------------------------------------------------------


def test_one_footprint_accepted(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    producer: FootprintProducer = app.state.producer
    before = producer.pending
    r = client.post("/api/footprints", json=ONE, headers={"user-agent": CHROME})
    assert r.status_code == 202
    body = r.json()
    assert body["accepted"] == 1
    assert producer.pending == before + 1
    (fp,) = _produced(producer)
    assert str(fp.event_id) == body["event_ids"][0]
    assert fp.link == "/posts/42"
    assert fp.footprint_time == AN_HOUR_AGO
    assert fp.browser == "Chrome"
    assert len(fp.visitor_id) == 16


def test_minimum_body_without_time_defaults_to_now(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    r = client.post("/api/footprints", json={"method": "get", "link": "/"})
    assert r.status_code == 202
    (fp,) = _produced(app.state.producer)
    assert fp.method == "GET"
    assert abs(datetime.now(UTC) - fp.footprint_time) < timedelta(seconds=30)


def test_list_accepted(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    items = [{**ONE, "link": f"/p/{i}"} for i in range(3)]
    r = client.post("/api/footprints", json=items)
    assert r.status_code == 202
    assert r.json()["accepted"] == 3
    assert len(set(r.json()["event_ids"])) == 3
    assert [fp.link for fp in _produced(app.state.producer)] == ["/p/0", "/p/1", "/p/2"]


def test_missing_method_is_422_naming_method(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    r = client.post("/api/footprints", json={"link": "/x"})
    assert r.status_code == 422
    assert any("method" in loc for loc in _error_locs(r))
    assert app.state.producer.pending == 0


def test_wrong_type_is_422_naming_field(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    r = client.post("/api/footprints", json={**ONE, "status_code": "abc"})
    assert r.status_code == 422
    assert ["body", "status_code"] in _error_locs(r)
    assert app.state.producer.pending == 0


def test_one_bad_item_rejects_the_whole_list(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    r = client.post("/api/footprints", json=[ONE, {**ONE, "link": "no-slash"}, ONE])
    assert r.status_code == 422
    assert ["body", 1, "link"] in _error_locs(r)
    assert app.state.producer.pending == 0


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe"])
def test_invalid_json_is_422(api: tuple[FastAPI, TestClient], raw: bytes) -> None:
    app, client = api
    r = client.post("/api/footprints", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert ["body"] in _error_locs(r)
    assert app.state.producer.pending == 0


@pytest.mark.parametrize("body", [42, "GET /x", None])
def test_json_that_is_not_an_object_is_422(api: tuple[FastAPI, TestClient], body: Any) -> None:
    _, client = api
    r = client.post("/api/footprints", content=json.dumps(body))
    assert r.status_code == 422


def test_too_many_footprints_is_413(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    r = client.post("/api/footprints", json=[{"method": "GET", "link": "/"}] * 6)
    assert r.status_code == 413
    assert "FOOTPRINT_MAX_BATCH_FOOTPRINTS" in r.json()["detail"]
    assert app.state.producer.pending == 0
    # The limit itself is accepted.
    assert client.post("/api/footprints", json=[ONE] * 5).status_code == 202


def test_body_over_limit_is_413_with_content_length(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    big = json.dumps({**ONE, "referrer": "https://x.example/" + "a" * 2000}).encode()
    assert len(big) > 2048
    r = client.post("/api/footprints", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "FOOTPRINT_MAX_BODY_BYTES" in r.json()["detail"]
    assert app.state.producer.pending == 0


def test_body_over_limit_is_413_when_chunked(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    chunk = json.dumps([ONE]).encode()

    def chunks() -> Iterator[bytes]:
        yield b"["
        for i in range(30):
            yield (b"," if i else b"") + chunk[1:-1]
        yield b"]"

    r = client.post(
        "/api/footprints", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413
    assert app.state.producer.pending == 0


def test_client_ip_never_produced(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    r = client.post("/api/footprints", json=[ONE, ONE], headers={"user-agent": CHROME})
    assert r.status_code == 202
    raw = _raw(app.state.producer)
    assert raw.count(b'"link":"/posts/42"') == 2  # really looking at the produced events
    assert CLIENT_IP.encode() not in raw
    assert CHROME.encode() not in raw


def _visitor(tmp_path: Path, trusted: int, forwarded: str) -> tuple[str, bytes]:
    app = create_app(offline_settings(tmp_path, trusted_proxies=trusted))
    client = TestClient(app, client=(CLIENT_IP, 50000))
    r = client.post("/api/footprints", json=ONE, headers={"x-forwarded-for": forwarded})
    assert r.status_code == 202
    return _produced(app.state.producer)[0].visitor_id, _raw(app.state.producer)


def test_forwarded_ip_is_read_from_the_right_through_trusted_proxies(tmp_path: Path) -> None:
    # One process's salt for every app below (no Redis here): only the address may differ.
    salts = DailySalts(None)
    with pytest.MonkeyPatch.context() as m:
        m.setattr("api.main.DailySalts", lambda url: salts)
        real, raw = _visitor(tmp_path, 1, "203.0.113.7")
        spoofed, _ = _visitor(tmp_path, 1, "6.6.6.6, 203.0.113.7")
        other, _ = _visitor(tmp_path, 1, "6.6.6.6, 198.51.100.2")
        # Not trusted: the header is ignored (anyone could set it), the peer address is used.
        direct_a, _ = _visitor(tmp_path, 0, "203.0.113.7")
        direct_b, _ = _visitor(tmp_path, 0, "198.51.100.2")
    assert spoofed == real  # a made-up leftmost hop does not make a new visitor
    assert other != real
    assert direct_a == direct_b
    assert b"203.0.113.7" not in raw


def test_big_batches_are_enriched_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(offline_settings(tmp_path))
    client = TestClient(app)
    threads: list[str] = []

    def parse(agent: str) -> Any:
        threads.append(threading.current_thread().name)
        return real_parse(agent)

    real_parse = enrich_module.parse_ua
    monkeypatch.setattr(enrich_module, "parse_ua", parse)
    # A small body is handled where the request is; a big one in the enrichment thread.
    r = client.post("/api/footprints", json={**ONE, "user_agent": f"{CHROME} small/{uuid4()}"})
    assert r.status_code == 202
    assert threads and not threads[0].startswith("footprint-enrich")
    threads.clear()
    items = [{**ONE, "user_agent": f"{CHROME} new/{uuid4()}"} for _ in range(100)]
    r = client.post("/api/footprints", json=items)
    assert r.status_code == 202
    assert r.json()["accepted"] == 100
    assert len(threads) == 100
    assert all(name.startswith("footprint-enrich") for name in threads)
    assert len(_produced(app.state.producer)) == 101
    # Errors found in the thread still answer as they did on the loop.
    r = client.post("/api/footprints", json=[*items[:99], {**ONE, "link": "no-slash"}])
    assert r.status_code == 422
    assert ["body", 99, "link"] in _error_locs(r)


def test_repeated_agents_are_parsed_once(api: tuple[FastAPI, TestClient]) -> None:
    _, client = api
    agent = f"{CHROME} repeat/{uuid4()}"
    before = parse_agent.cache_info()
    r = client.post("/api/footprints", json=[{**ONE, "user_agent": agent}] * 5)
    assert r.status_code == 202
    after = parse_agent.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 4)


def test_referrer_is_stored_without_query_and_fragment(api: tuple[FastAPI, TestClient]) -> None:
    app, client = api
    referrer = "https://bob:pw@App.Example/reset?token=s3cr3t#top"
    r = client.post("/api/footprints", json={**ONE, "referrer": referrer})
    assert r.status_code == 202
    (fp,) = _produced(app.state.producer)
    assert (fp.referrer, fp.referrer_host) == ("https://app.example/reset", "app.example")
    assert b"s3cr3t" not in _raw(app.state.producer)
    assert b"bob" not in _raw(app.state.producer)


# --- FootprintMiddleware in a host app -------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path) -> tuple[FootprintProducer, TestClient]:
    producer = FootprintProducer("127.0.0.1:1", "footprints", spool_dir=tmp_path / "spool")
    app = FastAPI()

    @app.get("/posts/{post_id}")
    async def get_post(post_id: int) -> dict[str, int]:
        return {"id": post_id}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("host app bug")

    @app.get("/forbidden")
    async def forbidden() -> None:
        raise HTTPException(403, "no")

    app.add_middleware(FootprintMiddleware, producer=producer, settings=offline_settings(tmp_path))
    return producer, TestClient(app, raise_server_exceptions=False, client=(CLIENT_IP, 50000))


def test_middleware_records_a_page_view(host: tuple[FootprintProducer, TestClient]) -> None:
    producer, client = host
    r = client.get(
        "/posts/7?utm_source=x&utm_campaign=launch",
        headers={"user-agent": CHROME, "referer": "https://News.Example.com/item?id=1"},
    )
    assert r.status_code == 200
    assert r.json() == {"id": 7}
    (fp,) = _produced(producer)
    assert fp.method == "GET"
    assert fp.link == "/posts/7"
    assert fp.route == "/posts/{post_id}"
    assert fp.status_code == 200
    assert fp.utm_source == "x"
    assert fp.utm_campaign == "launch"
    assert fp.referrer_host == "news.example.com"
    assert fp.referrer == "https://news.example.com/item"  # its query is not the site's to keep
    assert fp.browser == "Chrome"
    assert fp.duration_ms > 0
    assert abs(datetime.now(UTC) - fp.footprint_time) < timedelta(seconds=30)
    assert CLIENT_IP.encode() not in _raw(producer)


def test_middleware_skips_excluded_paths(host: tuple[FootprintProducer, TestClient]) -> None:
    producer, client = host
    assert client.get("/health").status_code == 200
    assert producer.pending == 0
    assert client.get("/posts/1").status_code == 200
    assert producer.pending == 1


def test_middleware_records_500_when_route_raises(
    host: tuple[FootprintProducer, TestClient],
) -> None:
    producer, client = host
    r = client.get("/boom")
    assert r.status_code == 500
    (fp,) = _produced(producer)
    assert fp.link == "/boom"
    assert fp.status_code == 500


def test_middleware_records_404_and_403(host: tuple[FootprintProducer, TestClient]) -> None:
    producer, client = host
    assert client.get("/nope").status_code == 404
    assert client.get("/forbidden").status_code == 403
    statuses = {fp.link: fp.status_code for fp in _produced(producer)}
    assert statuses == {"/nope": 404, "/forbidden": 403}


def test_middleware_records_each_request(host: tuple[FootprintProducer, TestClient]) -> None:
    producer, client = host
    for i in range(5):
        client.post(f"/posts/{i}")  # 405: a POST on a GET route is a visit too
    fps = _produced(producer)
    assert [fp.link for fp in fps] == [f"/posts/{i}" for i in range(5)]
    assert {fp.method for fp in fps} == {"POST"}
    assert {fp.status_code for fp in fps} == {405}
    assert len({fp.event_id for fp in fps}) == 5


def test_middleware_with_only_a_producer_uses_environment_settings(tmp_path: Path) -> None:
    from footprint.settings import get_settings

    get_settings.cache_clear()  # read the (clean) environment of this test
    try:
        producer = FootprintProducer("127.0.0.1:1", "footprints")
        app = FastAPI()

        @app.get("/health")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/docs-like/{x}")
        async def page(x: str) -> dict[str, str]:
            return {"x": x}

        app.add_middleware(FootprintMiddleware, producer=producer)
        client = TestClient(app)
        assert client.get("/health").status_code == 200
        assert client.get("/docs-like/a").status_code == 200
        assert [fp.route for fp in _produced(producer)] == ["/docs-like/{x}"]
    finally:
        get_settings.cache_clear()


def test_middleware_never_records_a_footprint_the_worker_would_refuse(
    host: tuple[FootprintProducer, TestClient],
) -> None:
    producer, client = host
    client.request("PROPFIND", "/posts/1")  # WebDAV: a registered method
    client.get("/posts/%00x")  # arrives NUL-decoded in the ASGI path
    client.get("/posts/%1b%7f")
    client.request("BREW", "/posts/2")  # no registered method: not recorded
    produced = _produced(producer)  # validates each one as the worker does
    assert [(fp.method, fp.link) for fp in produced] == [
        ("PROPFIND", "/posts/1"),
        ("GET", "/posts/%00x"),
        ("GET", "/posts/%1B%7F"),
    ]


# --- the event-time policy -----------------------------------------------------------------


def test_footprints_older_than_the_policy_get_a_422_naming_the_item(tmp_path: Path) -> None:
    client = TestClient(create_app(offline_settings(tmp_path)))
    old = (datetime.now(UTC) - timedelta(days=8)).isoformat()
    r = client.post("/api/footprints", json={**ONE, "footprint_time": old})
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "footprint_time"]
    assert error["msg"].startswith("more than 7 days before it was sent")
    r = client.post("/api/footprints", json=[ONE, {**ONE, "footprint_time": old}])
    assert [e["loc"] for e in r.json()["detail"]] == [["body", 1, "footprint_time"]]
    assert client.app.state.producer.pending == 0  # nothing of a refused request is sent


def test_the_policy_is_a_setting(tmp_path: Path) -> None:
    client = TestClient(create_app(offline_settings(tmp_path, event_max_age="1:00:00")))
    recent = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    older = (datetime.now(UTC) - timedelta(minutes=90)).isoformat()
    assert client.post("/api/footprints", json={**ONE, "footprint_time": recent}).status_code == 202
    r = client.post("/api/footprints", json={**ONE, "footprint_time": older})
    assert r.status_code == 422
    assert r.json()["detail"][0]["msg"].startswith("more than 1 hour before it was sent")


def test_middleware_reads_forwarded_for_from_the_right(tmp_path: Path) -> None:
    producer = FootprintProducer("127.0.0.1:1", "footprints", spool_dir=tmp_path / "spool")
    app = FastAPI()

    @app.get("/")
    async def home() -> dict[str, str]:
        return {}

    app.add_middleware(
        FootprintMiddleware,
        producer=producer,
        settings=offline_settings(tmp_path, trusted_proxies=1),
    )
    client = TestClient(app, client=("10.0.0.9", 50000))
    for forwarded in ("203.0.113.7", "6.6.6.6, 203.0.113.7", "6.6.6.6, 198.51.100.2"):
        client.get("/", headers={"x-forwarded-for": forwarded, "user-agent": CHROME})
    real, spoofed, other = (fp.visitor_id for fp in _produced(producer))
    assert spoofed == real
    assert other != real
