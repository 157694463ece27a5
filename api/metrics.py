"""``GET /metrics``: the API's Prometheus metrics (and the worker's under ``footprint run``).

Footprints offered and delivered by the producer, what waits for the broker, open WebSockets,
and (with ``RequestMetricsMiddleware`` installed) requests and their latency per route template.
Values are read from the app's state at scrape time. Each app has its own registry, so several
apps in one process (tests) never collide.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.footprint import HTTP_METHODS

if TYPE_CHECKING:
    from streams.metrics import PartitionOffsets

__all__ = ["ApiCollector", "ApiMetrics", "RequestMetricsMiddleware", "metrics_of", "router"]

router = APIRouter(tags=["ops"])


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
def get_metrics(request: Request) -> Response:
    """Prometheus metrics of this API process."""
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

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            # The router stores the matched route in the scope; unmatched paths share one label
            # so that scanners cannot create a time series per made-up URL.
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            metrics = metrics_of(scope["app"])
            method = scope["method"] if scope["method"] in HTTP_METHODS else "OTHER"
            metrics.requests.labels(method, route, str(status)).inc()
            metrics.latency.labels(method, route).observe(time.perf_counter() - started)
