"""footprint/capture.py: footprints built in batches off the request path are, byte for byte,
the ones the middleware built on the request path before, hostile requests included.

``_reference`` is the middleware's former ``_footprint`` (a pydantic ``model_construct`` and
``model_dump_json`` per request), kept here as the definition of the records; the requests go
through the real middleware with its producer's task running against an unreachable broker,
so the task builds what was captured and keeps it in its buffer.
"""

from __future__ import annotations

import asyncio
import json
import pickle
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pydantic_core
import pytest
from starlette.types import Receive, Scope, Send

from footprint.capture import build, build_anonymous
from footprint.client_ip import client_ip, forwarded_for
from footprint.enrich import (
    clean_referrer,
    parse_agent,
    referrer_host,
    site_of,
    utm_from_query,
    visitor_id,
)
from footprint.middleware import FootprintMiddleware, default_user_id, storable_path
from footprint.producer import FootprintProducer
from footprint.records import Record
from footprint.salts import DailySalts
from footprint.schema import Footprint
from footprint.schema_types import MAX_LINK, MAX_TEXT, PAGEVIEW
from footprint.settings import Settings
from tests.unit.offline import offline_settings

UNREACHABLE = "127.0.0.1:1"
CHROME = (
    b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/126.0.0.0 Safari/537.36"
)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return ""


def _reference(
    scope: Scope,
    status: int,
    settings: Settings,
    salt: bytes,
    *,
    event_id: UUID,
    now: datetime,
    duration_ms: float,
) -> bytes:
    """The footprint as the middleware built it per request until the batch path."""
    headers = scope.get("headers") or []
    user_agent = _header(headers, b"user-agent")[:MAX_TEXT]
    referrer = clean_referrer(_header(headers, b"referer")[:MAX_LINK])
    client = scope.get("client")
    peer = client[0] if client else ""
    ip = client_ip(peer, forwarded_for(headers), settings.trusted_proxies)
    agent = parse_agent(user_agent)
    route = scope.get("route")
    site = settings.site or site_of(_header(headers, b"host"))
    utm = utm_from_query(scope.get("query_string", b"").decode("latin-1"))
    return (
        Footprint.model_construct(
            event_id=event_id,
            method=scope["method"],
            link=storable_path(scope.get("root_path", "") + scope["path"]),
            footprint_time=now,
            route=(getattr(route, "path", "") or "")[:MAX_TEXT],
            status_code=status,
            duration_ms=duration_ms,
            referrer=referrer,
            referrer_host=referrer_host(referrer),
            utm_source=utm.get("utm_source", ""),
            utm_medium=utm.get("utm_medium", ""),
            utm_campaign=utm.get("utm_campaign", ""),
            utm_term=utm.get("utm_term", ""),
            utm_content=utm.get("utm_content", ""),
            browser=agent.browser,
            os=agent.os,
            device=agent.device,
            is_bot=agent.is_bot,
            visitor_id=visitor_id(salt, site, ip, user_agent),
            user_id=(default_user_id(scope) or "")[:MAX_TEXT],
            site=site,
            name=PAGEVIEW,
            props={},
        )
        .model_dump_json()
        .encode()
    )


def _scope(
    path: str = "/posts/1",
    *,
    method: str = "GET",
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    client: tuple[str, int] | None = ("203.0.113.9", 50000),
    root_path: str = "",
    status: int = 200,
    route: str | None = None,
    state: dict[str, Any] | None = None,
    user: Any = None,
) -> Scope:
    scope: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": root_path,
        "query_string": query,
        "headers": [(b"host", b"site.example"), (b"user-agent", CHROME)]
        if headers is None
        else headers,
        "client": client,
        "state": state or {},
        "test_status": status,
    }
    if route is not None:
        scope["route"] = SimpleNamespace(path=route)
    if user is not None:
        scope["user"] = user
    return scope


# Requests a site really gets, and what a hostile client or a careless app can put in a scope.
HOSTILE: list[Scope] = [
    _scope(),
    _scope("/posts/7", route="/posts/{post_id}", query=b"utm_source=x&utm_campaign=launch"),
    _scope("/a\x00b\x1b\x7f/\udcff"),  # NUL, control characters, a lone surrogate in the path
    _scope("/" + "é" * 5000, root_path="/app"),  # longer than a link may be
    _scope("no-leading-slash"),
    _scope(""),
    _scope(
        query=b"utm_source=%00nul&utm_medium=%ff%fe&utm_campaign=%3Cscript%3E%22%5C"
        b"&utm_term=" + b"t" * 3000 + b"&utm_content=a&utm_content=b&utm_source=%E2%80%A8"
    ),
    _scope(query=b"utm_=x&%zz=%&utm_source"),  # malformed escapes, a key without a value
    _scope(headers=[(b"user-agent", b""), (b"host", b"")]),
    _scope(headers=[]),
    _scope(headers=[(b"user-agent", b"Googlebot/2.1 (+http://www.google.com/bot.html)")]),
    _scope(headers=[(b"user-agent", b'"\\\x01\xff\xe9' + b"x" * 2000)]),
    _scope(headers=[(b"user-agent", b"first"), (b"user-agent", CHROME), (b"host", b"A.example")]),
    _scope(headers=[(b"referer", b"https://bob:s3cr3t@News.Example.com:8443/item?token=1#f")]),
    _scope(headers=[(b"referer", b"http://x.example:99999/bad-port")]),
    _scope(headers=[(b"referer", b"http://[::1/unclosed")]),
    _scope(headers=[(b"referer", b"javascript:alert(1)")]),
    _scope(headers=[(b"referer", b"mailto:a@b.example")]),
    _scope(headers=[(b"referer", b"https://r.example/" + b'\xff"\\' * 2000)]),
    _scope(headers=[(b"referer", b"//no-scheme.example/p")]),
    _scope(headers=[(b"host", b"Site.EXAMPLE:8443")]),
    _scope(headers=[(b"host", b"[::1")]),
    _scope(headers=[(b"host", b'a b"\\c')]),
    _scope(headers=[(b"host", b"h" * 3000)]),
    _scope(headers=[(b"x-forwarded-for", b"6.6.6.6, 203.0.113.7"), (b"host", b"s.example")]),
    _scope(headers=[(b"x-forwarded-for", b"garbage"), (b"X-Forwarded-For", b"[2001:db8::1]:443")]),
    _scope(client=None),
    _scope(status=404),
    _scope(status=500, route="/boom"),
    _scope(method="PROPFIND"),
    _scope(state={"user_id": 42}),
    _scope(state={"user_id": 'u\x00"\\' + "x" * 600}),
    _scope(user=SimpleNamespace(is_authenticated=True, identity="alice", display_name="A")),
    _scope(route="/" + "r" * 600),
]
# Neither path records these: an unregistered method; a user id no JSON can hold.
NOT_RECORDED: list[Scope] = [
    _scope(method="BREW"),
    _scope(state={"user_id": "\ud800"}),
]


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": scope["test_status"], "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def _send(message: dict[str, Any]) -> None:
    return None


def _through_middleware(
    settings: Settings, scopes: list[Scope], handed_over: list[bytes] | None = None
) -> tuple[list[Record], bytes]:
    """The records the producer's task built for ``scopes``, and the day's salt.

    With ``handed_over``, the task builds them as a delivery process does: from what
    ``Captures.take_anonymous`` gives, through a pickle (what crosses its pipe, kept there).
    """

    async def scenario() -> tuple[list[Record], bytes]:
        producer = FootprintProducer(UNREACHABLE, "footprints", request_timeout_ms=100)
        salts = DailySalts(None)
        middleware = FootprintMiddleware(_app, producer=producer, settings=settings, salts=salts)
        if handed_over is not None:
            captures = middleware.captures

            async def take() -> list[Record]:
                handed_over.append(pickle.dumps(await captures.take_anonymous(), protocol=5))
                return build_anonymous(pickle.loads(handed_over[-1]))

            captures.take = take  # type: ignore[method-assign]
        await producer.start()
        try:
            for scope in scopes:
                await middleware(scope, _receive, _send)  # type: ignore[arg-type]
            assert len(middleware.captures) > 0  # queued, not built on the request path
            async with asyncio.timeout(10):
                # The task announces nothing when it has built a batch: watch the queue empty.
                while len(middleware.captures):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            return list(producer._buffer), await salts.current()
        finally:
            await producer.stop(timeout=0)

    return asyncio.run(scenario())


@pytest.mark.parametrize("via", ["in-process", "delivery-process"])
@pytest.mark.parametrize(
    "overrides",
    [{}, {"trusted_proxies": 1}, {"site": "Shop.Example"}],
    ids=["defaults", "behind-a-proxy", "fixed-site"],
)
def test_batch_path_gives_the_footprints_of_the_request_path(
    tmp_path: Path, overrides: dict[str, Any], via: str
) -> None:
    settings = offline_settings(tmp_path, redis_url=None, **overrides)
    handed_over: list[bytes] | None = [] if via == "delivery-process" else None
    records, salt = _through_middleware(settings, HOSTILE + NOT_RECORDED, handed_over)
    if handed_over is not None:
        # The raw IP and user agent never leave the API process: not one of them (nor any
        # of its header or peer values) is in what a delivery process is handed.
        sent = b"".join(handed_over)
        assert json.loads(records[0][1])["visitor_id"].encode() in sent  # what goes instead
        for secret in (b"203.0.113.9", b"203.0.113.7", b"6.6.6.6", b"2001:db8::1", CHROME):
            assert secret not in sent, secret
        assert b"Googlebot/2.1" not in sent and b"first" not in sent
    assert len(records) == len(HOSTILE)
    for scope, (key, value, timestamp_ms, from_spool) in zip(HOSTILE, records, strict=True):
        built = json.loads(value)
        event_id = UUID(built["event_id"])
        now = datetime.fromisoformat(built["footprint_time"])
        expected = _reference(
            scope,
            scope["test_status"],
            settings,
            salt,
            event_id=event_id,
            now=now,
            duration_ms=built["duration_ms"],
        )
        assert value == expected, scope["path"]
        # The id, the time and the Kafka timestamp tell the same millisecond.
        assert event_id.version == 7
        assert event_id.int >> 80 == timestamp_ms == int(now.timestamp() * 1000)
        assert (key, from_spool) == (built["link"].encode(), False)
    for scope in NOT_RECORDED[1:]:
        with pytest.raises(ValueError):
            _reference(scope, 200, settings, salt, event_id=UUID(int=0), now=now, duration_ms=0.0)


def test_the_workers_validation_reads_what_the_batch_path_wrote(tmp_path: Path) -> None:
    records, _ = _through_middleware(offline_settings(tmp_path, redis_url=None), HOSTILE[:2])
    first, second = (Footprint.from_bytes(value) for _, value, *_ in records)
    assert (first.link, first.browser, first.site) == ("/posts/1", "Chrome", "site.example")
    assert (second.route, second.utm_source, second.utm_campaign) == (
        "/posts/{post_id}",
        "x",
        "launch",
    )
    assert b"203.0.113.9" not in b"".join(value for _, value, *_ in records)


@pytest.mark.parametrize("micro", [0, 1, 120_000, 999_999])
def test_times_are_written_as_pydantic_writes_them(micro: int) -> None:
    us = 1_764_480_000 * 1_000_000 + micro  # 2025-11-30 05:20:00 UTC
    capture = ("GET", "/", b"", "", b"", b"", b"", b"", None, "", 200, 0.0, us)
    ((_, value, timestamp_ms, _),) = build([capture], b"s" * 32, site="", trusted_proxies=0)
    written = json.loads(value)["footprint_time"]
    assert f'"{written}"'.encode() == pydantic_core.to_json(
        datetime(2025, 11, 30, 5, 20, 0, micro, tzinfo=UTC)
    )
    assert timestamp_ms == us // 1000


def test_what_is_captured_at_shutdown_is_spooled_not_lost(tmp_path: Path) -> None:
    settings = offline_settings(tmp_path, redis_url=None)

    async def scenario() -> FootprintProducer:
        producer = FootprintProducer(
            UNREACHABLE, "footprints", max_buffer=4, spool_dir=tmp_path / "spool"
        )
        middleware = FootprintMiddleware(_app, producer=producer, settings=settings)
        await producer.start()
        for i in range(10):  # the queue holds 4 (the buffer's bound): 6 are built at once
            await middleware(_scope(f"/p/{i}"), _receive, _send)  # type: ignore[arg-type]
        await producer.stop(timeout=0)
        return producer

    producer = asyncio.run(scenario())
    assert producer.spool is not None
    lines = [line for seg in producer.spool.segments() for line in seg.read_bytes().splitlines()]
    assert sorted(Footprint.from_bytes(line).link for line in lines) == sorted(
        f"/p/{i}" for i in range(10)
    )
    assert producer.pending == 10
