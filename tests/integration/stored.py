"""An API app over footprints already stored in the test PostgreSQL and chdb (no broker).

For the read side (the query API, the summary): the footprints are written by the real sinks,
and the app runs with a lifespan reduced to the clients those routes use.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager

import psycopg
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool

from api.main import create_app
from footprint.clickhouse import chdb_open_path, connect
from footprint.migrate import apply_clickhouse, apply_postgres
from footprint.schema import Footprint
from footprint.settings import Settings, load_settings
from footprint.stack import PostgresServer, RedisServer
from footprint.tokens import mint_token
from streams.sinks.base import Batch
from streams.sinks.clickhouse import ClickHouseSink
from streams.sinks.postgres import PostgresSink
from tests.integration.conftest import JWT_SECRET

__all__ = ["stored_api", "stores_only"]


@asynccontextmanager
async def stores_only(app: FastAPI) -> AsyncIterator[None]:
    """The app's lifespan, reduced to the stores: PostgreSQL, ClickHouse and Redis."""
    settings: Settings = app.state.settings
    async with AsyncConnectionPool(
        settings.require("postgres_url"), min_size=1, max_size=2, kwargs={"autocommit": True}
    ) as pool:
        app.state.postgres = pool
        app.state.clickhouse = connect(settings.require("clickhouse_url"))
        app.state.redis = aioredis.from_url(settings.require("redis_url"))
        try:
            yield
        finally:
            await app.state.redis.aclose()
            app.state.clickhouse.close()


@contextmanager
def stored_api(
    stores: tuple[PostgresServer, RedisServer],
    tmp_path_factory: pytest.TempPathFactory,
    footprints: Sequence[Footprint],
    prefix: str,
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A test client of the API over ``footprints`` in a fresh database, and admin headers."""
    postgres, redis = stores
    database = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    # One chdb path per process: join the one already open, if any.
    path = chdb_open_path() or str(tmp_path_factory.mktemp("chdb") / "data")
    settings = load_settings(
        postgres_url=postgres.url_for(database),
        clickhouse_url=f"chdb://{path}?database={database}",
        redis_url=redis.url,
        kafka_url="kafka://127.0.0.1:9",  # never started: the read routes need no broker
        jwt_secret=JWT_SECRET,
        data_dir=str(tmp_path_factory.mktemp("data")),
    )
    apply_postgres(settings.require("postgres_url"))
    clickhouse = connect(settings.require("clickhouse_url"))
    try:
        apply_clickhouse(clickhouse)
        ClickHouseSink._write(clickhouse, Batch(footprints=list(footprints)))

        async def store() -> None:
            sink = PostgresSink(settings.require("postgres_url"))
            await sink.write(Batch(footprints=list(footprints)))
            await sink.close()

        asyncio.run(store())
        app = create_app(settings)
        app.router.lifespan_context = stores_only
        admin = {"Authorization": f"Bearer {mint_token(settings, 'analyst', admin=True)}"}
        with TestClient(app) as client:
            yield client, admin
    finally:
        clickhouse.close()
