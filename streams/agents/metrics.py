"""Serve the worker's Prometheus metrics on ``FOOTPRINT_WORKER_METRICS_PORT`` (0, the default: off).

    FOOTPRINT_WORKER_METRICS_PORT=9108 faust -A streams.app worker -l info
    curl localhost:9108/metrics

The server has no authentication, so it binds ``FOOTPRINT_WORKER_METRICS_HOST`` (127.0.0.1 by
default); in a container, bind 0.0.0.0 and publish the port only to the host's loopback.

The server is prometheus_client's own (a daemon thread), so a scrape never waits for the event
loop; the values are read from ``streams.status`` and Faust's monitor (``streams.metrics``).
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import start_http_server

from footprint.settings import get_settings
from streams.app import app
from streams.metrics import monitor_offsets, worker_registry

__all__ = ["serve_metrics"]

log = logging.getLogger(__name__)


@app.task
async def serve_metrics() -> None:
    """Start the metrics server when a port is configured; stop it with the worker."""
    settings = get_settings()
    port, host = settings.worker_metrics_port, settings.worker_metrics_host
    if not port:
        return
    registry = worker_registry(lambda: monitor_offsets(app.monitor))
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:  # a busy port must not stop the worker from counting
        log.error("worker metrics not served on port %d: %s", port, e)
        return
    log.info("worker metrics on http://%s:%d/metrics", host, port)
    try:
        await asyncio.Event().wait()  # until the worker stops and cancels its tasks
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)
