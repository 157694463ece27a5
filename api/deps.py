"""Request dependencies: the clients the lifespan opened, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool

from api.outbox import OutboxRelay
from api.stream_status import KafkaOffsets
from footprint.clickhouse import ClickHouse
from footprint.producer import FootprintProducer
from footprint.salts import DailySalts
from footprint.settings import Settings

__all__ = [
    "ClickHouseDep",
    "KafkaOffsetsDep",
    "OutboxDep",
    "PostgresDep",
    "ProducerDep",
    "RedisDep",
    "SaltsDep",
    "SettingsDep",
]


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _producer(request: Request) -> FootprintProducer:
    return request.app.state.producer


async def _postgres(request: Request) -> AsyncConnectionPool:
    return request.app.state.postgres


async def _clickhouse(request: Request) -> ClickHouse:
    return request.app.state.clickhouse


async def _redis(request: Request) -> aioredis.Redis:
    return request.app.state.redis


async def _salts(request: Request) -> DailySalts:
    return request.app.state.salts


async def _offsets(request: Request) -> KafkaOffsets:
    return request.app.state.offsets


async def _outbox(request: Request) -> OutboxRelay:
    return request.app.state.outbox


SettingsDep = Annotated[Settings, Depends(_settings)]
ProducerDep = Annotated[FootprintProducer, Depends(_producer)]
PostgresDep = Annotated[AsyncConnectionPool, Depends(_postgres)]
ClickHouseDep = Annotated[ClickHouse, Depends(_clickhouse)]
RedisDep = Annotated[aioredis.Redis, Depends(_redis)]
SaltsDep = Annotated[DailySalts, Depends(_salts)]
KafkaOffsetsDep = Annotated[KafkaOffsets, Depends(_offsets)]
OutboxDep = Annotated[OutboxRelay, Depends(_outbox)]
