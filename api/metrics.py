"""``GET /metrics``: the API's Prometheus metrics (and the worker's under ``footprint run``).

A stats credential is required (``Authorization: Bearer <admin token>``; Prometheus:
``authorization: {credentials: <token>}`` in the scrape config).

Footprints offered and delivered by the producer, what waits for the broker, the community
events' outbox backlog, open WebSockets, and (with ``RequestMetricsMiddleware`` installed)
requests and their latency per route template. Values are read from the app's state at scrape
time. Each app has its own registry, so several apps in one process (tests) never collide.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import AllSitesReader
from footprint.schema_types import HTTP_METHODS

if TYPE_CHECKING:
    from streams.metrics import PartitionOffsets

__all__ = ["ApiCollector", "ApiMetrics", "RequestMetricsMiddleware", "metrics_of", "router"]

router = APIRouter(tags=["ops"])
log = logging.getLogger(__name__)


class ApiCollector:
    """Producer and WebSocket figures of one app, read when scraped."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        """The current values."""
        state = self.app.state
        producer = getattr(state, "producer", None)
        if producer is not None:
            stats = producer.stats
            for name, value, doc in (
                ("offered", stats.offered, "Footprints accepted by the API and the middleware."),
                ("delivered", stats.delivered, "Footprints acknowledged by the broker."),
                ("failed_sends", stats.failed_sends, "Failed deliveries (each retried)."),
                ("spooled", stats.spooled, "Footprints written to the disk spool."),
            ):
                yield CounterMetricFamily(f"footprint_api_footprints_{name}", doc, value=value)
            yield GaugeMetricFamily(
                "footprint_api_footprints_pending",
                "Footprints not yet acknowledged by the broker (memory and spool).",
                value=producer.pending,
            )
            yield GaugeMetricFamily(
                "footprint_api_producer_connected",
                "1 when the producer is connected to the broker.",
                value=1.0 if stats.connected else 0.0,
            )
        relay = getattr(state, "outbox", None)  # set by the lifespan
        if relay is not None:
            backlog = relay.last_backlog
            if backlog is not None:
                yield GaugeMetricFamily(
                    "footprint_api_outbox_backlog",
                    "Community events committed to the outbox and not yet acknowledged by the "
                    "broker (every API process's, read from PostgreSQL).",
                    value=backlog.count,
                )
                yield GaugeMetricFamily(
                    "footprint_api_outbox_oldest_age_seconds",
                    "How long the oldest event in the outbox has waited (0 when empty).",
                    value=backlog.oldest_age_seconds,
                )
            yield CounterMetricFamily(
                "footprint_api_outbox_published",
                "Outbox events this process's relay published (acknowledged by the broker).",
                value=relay.stats.published,
            )
            yield CounterMetricFamily(
                "footprint_api_outbox_failed_attempts",
                "Relay passes that failed (the broker or PostgreSQL away); each is retried.",
                value=relay.stats.failed_attempts,
            )
        hub = getattr(state, "hub", None)  # set by the lifespan
        yield GaugeMetricFamily(
            "footprint_api_websocket_connections",
            "Open notification WebSockets in this process.",
            value=hub.sockets if hub is not None else 0,
        )
        feed = getattr(state, "live_feed", None)  # set by the lifespan
        yield GaugeMetricFamily(
            "footprint_api_live_websocket_connections",
            "Open live-stats WebSockets in this process.",
            value=feed.sockets if feed is not None else 0,
        )
        yield CounterMetricFamily(
            "footprint_api_live_snapshots",
            "Live snapshots taken, each sent to every live-stats WebSocket.",
            value=feed.snapshots if feed is not None else 0,
        )
        sites = getattr(state, "sites", None)
        yield CounterMetricFamily(
            "footprint_api_footprints_refused_unknown_site",
            "Footprints refused at POST /api/footprints because their site is not registered.",
            value=sites.refused if sites is not None else 0,
        )
        caps = getattr(state, "socket_caps", None)
        yield CounterMetricFamily(
            "footprint_api_websocket_refused",
            "WebSockets closed at once for being over FOOTPRINT_WS_MAX_PER_USER or _TOTAL.",
            value=caps.refused if caps is not None else 0,
        )


class ApiMetrics:
    """One app's registry, and the request metrics the middleware records into it."""

    def __init__(self, app: FastAPI) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(ApiCollector(app))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "footprint_api_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "footprint_api_request_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        settings = getattr(app.state, "settings", None)
        if settings is not None and settings.embedded_worker:
            # `footprint run`: the worker shares this process, so its figures are here too.
            from streams.metrics import register_worker_metrics
            from streams.status import status

            register_worker_metrics(self.registry, status, _embedded_offsets)


def _embedded_offsets() -> list[PartitionOffsets]:
    # The lifespan imported the Faust app; a scrape never imports (and so starts configuring) it.
    faust_app = getattr(sys.modules.get("streams.app"), "app", None)
    if faust_app is None:
        return []
    from streams.metrics import monitor_offsets

    return monitor_offsets(faust_app.monitor)


def metrics_of(app: FastAPI) -> ApiMetrics:
    """The app's metrics, created on first use."""
    metrics = getattr(app.state, "metrics", None)
    if metrics is None:
        metrics = app.state.metrics = ApiMetrics(app)
    return metrics


@router.get("/metrics", include_in_schema=False)
async def get_metrics(_reader: AllSitesReader, request: Request) -> Response:
    """Prometheus metrics of this API process (stats credential)."""
    relay = getattr(request.app.state, "outbox", None)
    if relay is not None:
        # Collectors cannot await: read the backlog here. Without PostgreSQL the gauges keep
        # their last value rather than fail the whole scrape.
        try:
            await asyncio.wait_for(relay.refresh_backlog(), 5)
        except Exception as e:
            log.warning("outbox backlog unavailable for /metrics: %s", e)
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(metrics_of(request.app).registry), media_type=content_type)


class RequestMetricsMiddleware:
    """Counts requests and their latency per route template (``/posts/{post_id}``, not the path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        # A plain function, not a coroutine, as in footprint/middleware.py: no frame of ours
        # is created per message.
        def send_status(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router stores the matched route in the scope; unmatched paths share one label
            # so that scanners cannot create a time series per made-up URL.
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            metrics = metrics_of(scope["app"])
            method = scope["method"] if scope["method"] in HTTP_METHODS else "OTHER"
            metrics.requests.labels(method, route, str(status)).inc()
            metrics.latency.labels(method, route).observe(time.perf_counter() - started)
