"""The Footprint API: ``uvicorn api.main:app``.

Produces footprints, answers live and historical stats, reports the stream's status, relays the
community actions' outbox to the notifications topic. Every client is opened and closed in the
one lifespan below. With ``FOOTPRINT_EMBEDDED_WORKER=true`` (what ``footprint run`` sets) the
Faust worker runs in this process too, on the same loop, so the embedded ClickHouse (chdb, one
process per data path) is shared by the worker and the queries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import click
import redis.asyncio as aioredis
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from api import errors, live_ws, logs, metrics, ws
from api.cors import TrackerCORS
from api.hub import Hub
from api.limits import BodyLimitMiddleware
from api.notify import NotificationPublisher
from api.outbox import OutboxRelay
from api.routes import (
    community,
    dashboard,
    events,
    footprints,
    goals,
    health,
    notifications,
    query,
    sites,
    stats,
    stream,
    users,
)
from api.sites import SiteRegistry
from api.sockets import SocketCaps
from api.stream_status import KafkaOffsets
from footprint.clickhouse import connect as connect_clickhouse
from footprint.middleware import FootprintMiddleware
from footprint.producer import FootprintProducer
from footprint.salts import DailySalts
from footprint.settings import Settings, SettingsError, get_settings

__all__ = ["create_app"]

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open every client, optionally run the Faust worker in-process, close all on exit."""
    settings: Settings = app.state.settings
    producer: FootprintProducer = app.state.producer
    async with AsyncExitStack() as stack:
        pool = AsyncConnectionPool(
            settings.require("postgres_url"),
            min_size=1,
            max_size=8,
            open=False,
            kwargs={"autocommit": True},
            timeout=10,
        )
        await pool.open(wait=False)
        stack.push_async_callback(pool.close)
        app.state.postgres = pool

        await app.state.sites.start(pool)
        stack.push_async_callback(app.state.sites.stop)

        clickhouse = await asyncio.to_thread(connect_clickhouse, settings.require("clickhouse_url"))
        stack.push_async_callback(asyncio.to_thread, clickhouse.close)
        app.state.clickhouse = clickhouse

        redis = aioredis.from_url(
            settings.require("redis_url"), socket_timeout=5, socket_connect_timeout=5
        )
        stack.push_async_callback(redis.aclose)
        app.state.redis = redis

        offsets = KafkaOffsets(
            settings.kafka_bootstrap,
            settings.app_id,
            [settings.footprints_topic, settings.notifications_topic],
        )
        stack.push_async_callback(offsets.close)
        app.state.offsets = offsets

        await producer.start()
        stack.push_async_callback(producer.stop)

        notifier = NotificationPublisher(
            settings.kafka_bootstrap,
            settings.notifications_topic,
            partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            timeout=settings.notification_publish_timeout,
        )
        await notifier.start()
        stack.push_async_callback(notifier.stop)
        app.state.notifier = notifier

        # Publishes the community events the actions committed to the outbox.
        relay = OutboxRelay(
            pool,
            notifier,
            settings.require("postgres_url"),
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
            retry_max_seconds=settings.outbox_retry_max_seconds,
        )
        await relay.start()
        stack.push_async_callback(relay.stop)
        app.state.outbox = relay

        hub = Hub(settings.require("redis_url"))
        await hub.start()
        stack.push_async_callback(hub.stop)
        app.state.hub = hub

        feed = live_ws.feed_for(app)
        await feed.start()
        stack.push_async_callback(feed.stop)
        app.state.live_feed = feed

        if settings.embedded_worker:
            from faust.contrib.asgi import faust_app_running

            from streams.app import app as faust_app

            # Bounded: a stop waits for no store that is down (see streams/shutdown.py).
            await stack.enter_async_context(
                faust_app_running(faust_app, stop_timeout=settings.stop_timeout)
            )
        yield


def _bind_host(settings: Settings) -> str:
    """Where the API will listen: ``uvicorn --host`` when its CLI runs, else FOOTPRINT_HOST."""
    # uvicorn's command line is a click command that imports the app inside its own context,
    # so its --host (or UVICORN_HOST) is readable here; `footprint run` sets FOOTPRINT_HOST.
    ctx = click.get_current_context(silent=True)
    if ctx is not None and getattr(ctx.command.callback, "__module__", "") == "uvicorn.main":
        return str(ctx.params.get("host") or settings.host)
    return settings.host


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for the given settings (the environment's by default)."""
    settings = settings or get_settings()
    settings.enforce_secrets(_bind_host(settings))
    settings.require("jwt_secret")
    logs.install()
    app = FastAPI(
        title="Footprint",
        summary="Real-time visit analytics for FastAPI sites.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.socket_caps = SocketCaps(settings.ws_max_per_user, settings.ws_max_total)
    app.state.producer = FootprintProducer(
        settings.require("kafka_url").split("://", 1)[1],
        settings.footprints_topic,
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
        max_buffer=settings.buffer_max_events,
        spool_dir=Path(settings.data_dir) / "spool",
    )
    app.state.salts = DailySalts(settings.redis_url)
    app.state.sites = SiteRegistry(
        auto_register=settings.auto_registers_sites(_bind_host(settings)),
        refresh_seconds=settings.sites_refresh_seconds,
    )
    for router in (
        health.router,
        footprints.router,
        events.router,
        stats.router,
        query.router,
        goals.router,
        sites.router,
        users.router,
        stream.router,
        community.router,
        notifications.router,
        ws.router,
        live_ws.router,
        dashboard.router,
        metrics.router,
    ):
        app.include_router(router)
    app.mount("/static", dashboard.static_files(), name="static")
    errors.install(app)
    app.add_middleware(
        FootprintMiddleware, producer=app.state.producer, settings=settings, salts=app.state.salts
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(TrackerCORS, origins=settings.cors_origins, sites=app.state.sites)
    return app


_app: FastAPI | None = None


def __getattr__(name: str) -> FastAPI:
    # ``uvicorn api.main:app`` builds the app from the environment on first access, so importing
    # this module (tests, tools) needs no configuration; a bad variable stops start-up here.
    global _app
    if name != "app":
        raise AttributeError(name)
    if _app is None:
        try:
            _app = create_app()
        except SettingsError as e:
            raise SystemExit(f"footprint api: {e}") from None
    return _app
