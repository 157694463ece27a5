"""Footprint capture for any ASGI app: a pure ASGI middleware (no ``BaseHTTPMiddleware``).

Usage in a host FastAPI app::

    from footprint.middleware import FootprintMiddleware
    app.add_middleware(FootprintMiddleware, kafka_url="kafka://localhost:9092")

Every HTTP request except the excluded path prefixes becomes a footprint, recorded after the
response has been sent; a route opts out with the ``no_footprint`` dependency. On the request
path the middleware only copies what the request gives into a tuple and appends it to a bounded
queue (``footprint.capture``); the producer's background task, in the same process, builds the
footprints a batch at a time and delivers them. The request never waits for Kafka and never
fails because of it. The middleware starts and stops its own producer with the app's lifespan
unless one is passed in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from footprint.capture import Capture, Captures, storable_path
from footprint.client_ip import forwarded_for
from footprint.delivery_process import DeliveryProcess
from footprint.producer import FootprintProducer
from footprint.salts import DailySalts
from footprint.schema_types import HTTP_METHODS, MAX_LINK, MAX_TEXT
from footprint.settings import Settings, get_settings

__all__ = ["FootprintMiddleware", "default_user_id", "no_footprint", "storable_path"]

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


class FootprintMiddleware:
    """Record every request as a footprint, off the request's critical path."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        producer: FootprintProducer | DeliveryProcess | None = None,
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
        self._producer: FootprintProducer | DeliveryProcess | None = producer
        self.exclude = tuple(exclude if exclude is not None else self.settings.exclude_paths)
        # Checked on every request: a set lookup and one C-level startswith over a tuple.
        self._exact = frozenset(self.exclude)
        self._prefixes = tuple(p.rstrip("/") + "/" for p in self.exclude)
        self.user_id = user_id
        # Shared with the other processes through FOOTPRINT_REDIS_URL; without it, per process.
        self.salts = salts or DailySalts(self.settings.redis_url)
        self._site = self.settings.site  # when set, the Host header is not needed
        self._forwarded = self.settings.trusted_proxies > 0  # else X-Forwarded-For is not read
        self.captures = Captures(
            self.salts,
            site=self.settings.site,
            trusted_proxies=self.settings.trusted_proxies,
            limit=self.settings.buffer_max_events,
        )
        if producer is not None:
            producer.add_source(self.captures)

    @property
    def producer(self) -> FootprintProducer | DeliveryProcess:
        """The producer, created from settings the first time it is needed: in this process,
        or in a child process with ``FOOTPRINT_DELIVERY_PROCESS``."""
        if self._producer is None:
            s = self.settings
            kind = DeliveryProcess if s.delivery_process else FootprintProducer
            self._producer = kind(
                s.kafka_bootstrap,
                s.footprints_topic,
                partitions=s.partitions,
                replication_factor=s.replication_factor,
                max_buffer=s.buffer_max_events,
                spool_dir=Path(s.data_dir) / "spool",
            )
            self._producer.add_source(self.captures)
        return self._producer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self._own_producer:
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        path = scope["path"]
        # An unregistered method is no request of any client the site serves, and its
        # footprint would be refused by the worker: not recorded.
        if (
            path in self._exact
            or path.startswith(self._prefixes)
            or scope["method"] not in HTTP_METHODS
        ):
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 500

        # A plain function, not a coroutine: the app awaits what ``send`` returns, so no frame
        # of ours is created per message.
        def send_status(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            state = scope.get("state")
            if not (state and state.get(SKIP_KEY)):
                try:
                    capture = self._capture(scope, status, started)
                    if not (self.producer.running and self.captures.offer(capture)):
                        await self._record_now(capture)
                except Exception:  # capture must never break the host app
                    log.exception("could not record a footprint")

    def _capture(self, scope: Scope, status: int, started: float) -> Capture:
        """What the footprint needs from the request: references and slices, no parsing."""
        headers = scope.get("headers") or ()
        first = dict(reversed(headers))  # the first of each header wins, as it always did
        client = scope.get("client")
        return (
            scope["method"],
            scope.get("root_path", "") + scope["path"],
            scope.get("query_string", b""),
            client[0] if client else "",
            first.get(b"user-agent", b"")[:MAX_TEXT],
            first.get(b"referer", b"")[:MAX_LINK],
            b"" if self._site else first.get(b"host", b""),
            forwarded_for(headers).encode("latin-1") if self._forwarded else b"",
            scope.get("route"),
            (self.user_id(scope) or "")[:MAX_TEXT],
            status,
            time.perf_counter() - started,
            time.time_ns() // 1000,
        )

    async def _record_now(self, capture: Capture) -> None:
        """Build one capture on the request path: the delivery task is not running (an app
        without lifespan, a producer nobody started) or the queue is full."""
        self.producer.offer_records(await self.captures.records([capture]))
        if self._own_producer:
            await self.producer.start()  # no-op once running; covers apps without lifespan

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.producer.start()
            elif message["type"] == "lifespan.shutdown":
                await self.producer.stop()
            return message

        await self.app(scope, receive_wrapper, send)
