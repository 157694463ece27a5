"""Footprint capture for any ASGI app: a pure ASGI middleware (no ``BaseHTTPMiddleware``).

Usage in a host FastAPI app::

    from footprint.middleware import FootprintMiddleware
    app.add_middleware(FootprintMiddleware, kafka_url="kafka://localhost:9092")

Every HTTP request except the excluded path prefixes becomes a footprint, recorded after the
response has been sent; a route opts out with the ``no_footprint`` dependency. Recording is an
O(1) append to the producer's buffer: the request never waits for Kafka and never fails because
of it. The middleware starts and stops its own producer with the app's lifespan unless one is
passed in.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from footprint.client_ip import client_ip, forwarded_for
from footprint.enrich import (
    clean_referrer,
    parse_agent,
    referrer_host,
    site_of,
    utm_from_query,
    visitor_id,
)
from footprint.ids import uuid7
from footprint.producer import FootprintProducer
from footprint.salts import DailySalts
from footprint.schema import Footprint
from footprint.schema_types import HTTP_METHODS, MAX_LINK, MAX_TEXT, PAGEVIEW
from footprint.settings import Settings, get_settings

__all__ = ["FootprintMiddleware", "default_user_id", "no_footprint", "storable_path"]

# ASGI paths are percent-decoded: "%00" arrives as NUL, which no store can hold.
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def storable_path(path: str) -> str:
    """The path as a link every store accepts: control characters (and lone surrogates)
    percent-encoded again, at most ``MAX_LINK`` characters, never empty."""
    if _UNSTORABLE.search(path):
        path = _UNSTORABLE.sub(
            lambda m: quote(m.group().encode("utf-8", "surrogatepass"), safe=""), path
        )
    if not path.startswith("/"):
        path = "/" + path
    return path[:MAX_LINK]


log = logging.getLogger(__name__)

UserIdGetter = Callable[[Scope], str | None]

SKIP_KEY = "footprint_skip"


async def no_footprint(request: Request) -> None:
    """A route dependency: this request is not recorded (e.g. a dashboard looking at itself)."""
    # Request.state writes into scope["state"], the dict the middleware reads after the response.
    setattr(request.state, SKIP_KEY, True)


def default_user_id(scope: Scope) -> str | None:
    """The authenticated user: ``request.state.user_id``, else Starlette's ``scope['user']``."""
    state = scope.get("state") or {}
    user_id = state.get("user_id")
    if user_id:
        return str(user_id)
    user = scope.get("user")
    if user is not None and getattr(user, "is_authenticated", False):
        return str(getattr(user, "identity", "") or getattr(user, "display_name", "")) or None
    return None


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return ""


class FootprintMiddleware:
    """Record every request as a footprint, off the request's critical path."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        producer: FootprintProducer | None = None,
        settings: Settings | None = None,
        kafka_url: str | None = None,
        exclude: Sequence[str] | None = None,
        user_id: UserIdGetter = default_user_id,
        salts: DailySalts | None = None,
    ) -> None:
        self.app = app
        self.settings = settings or get_settings()
        if kafka_url:
            self.settings = self.settings.model_copy(update={"kafka_url": kafka_url})
        self._own_producer = producer is None
        self._producer = producer
        self.exclude = tuple(exclude if exclude is not None else self.settings.exclude_paths)
        # Checked on every request: a set lookup and one C-level startswith over a tuple.
        self._exact = frozenset(self.exclude)
        self._prefixes = tuple(p.rstrip("/") + "/" for p in self.exclude)
        self.user_id = user_id
        # Shared with the other processes through FOOTPRINT_REDIS_URL; without it, per process.
        self.salts = salts or DailySalts(self.settings.redis_url)

    @property
    def producer(self) -> FootprintProducer:
        """The producer, created from settings the first time it is needed."""
        if self._producer is None:
            s = self.settings
            self._producer = FootprintProducer(
                s.kafka_bootstrap,
                s.footprints_topic,
                partitions=s.partitions,
                replication_factor=s.replication_factor,
                max_buffer=s.buffer_max_events,
                spool_dir=Path(s.data_dir) / "spool",
            )
        return self._producer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self._own_producer:
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http" or self._excluded(scope["path"]):
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not (scope.get("state") or {}).get(SKIP_KEY):
                await self._record(scope, status, started)

    async def _record(self, scope: Scope, status: int, started: float) -> None:
        if scope["method"] not in HTTP_METHODS:
            # No registered method: not a request of any client the site serves. Recording it
            # would make a footprint the worker refuses.
            return
        try:
            salt = await self.salts.current()
            self.producer.offer(self._footprint(scope, status, started, salt))
            if self._own_producer:
                await self.producer.start()  # no-op once running; covers apps without lifespan
        except Exception:  # capture must never break the host app
            log.exception("could not record a footprint")

    def _excluded(self, path: str) -> bool:
        return path in self._exact or path.startswith(self._prefixes)

    def _footprint(self, scope: Scope, status: int, started: float, salt: bytes) -> Footprint:
        headers = scope.get("headers") or []
        user_agent = _header(headers, b"user-agent")[:MAX_TEXT]
        referrer = clean_referrer(_header(headers, b"referer")[:MAX_LINK])
        client = scope.get("client")
        peer = client[0] if client else ""
        ip = client_ip(peer, forwarded_for(headers), self.settings.trusted_proxies)
        now = datetime.now(UTC)
        agent = parse_agent(user_agent)
        route = scope.get("route")
        # The site is the configured domain (FOOTPRINT_SITE), else the request's Host.
        site = self.settings.site or site_of(_header(headers, b"host"))
        utm = utm_from_query(scope.get("query_string", b"").decode("latin-1"))
        return Footprint.model_construct(
            event_id=uuid7(),
            method=scope["method"],
            link=storable_path(scope.get("root_path", "") + scope["path"]),
            footprint_time=now,
            route=(getattr(route, "path", "") or "")[:MAX_TEXT],
            status_code=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
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
            user_id=(self.user_id(scope) or "")[:MAX_TEXT],
            site=site,
            name=PAGEVIEW,
            props={},
        )

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.producer.start()
            elif message["type"] == "lifespan.shutdown":
                await self.producer.stop()
            return message

        await self.app(scope, receive_wrapper, send)
