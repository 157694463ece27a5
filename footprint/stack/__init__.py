"""The embedded stack: real servers (Kafka-protocol broker, PostgreSQL, Redis, ClickHouse)."""

from footprint.stack.clickhouse import ClickHouseServer
from footprint.stack.kafka import KafkaServer
from footprint.stack.orphans import stop_all
from footprint.stack.ports import free_port
from footprint.stack.postgres import PostgresServer
from footprint.stack.process import ServerProcess, ServerStartError
from footprint.stack.redis import RedisServer

__all__ = [
    "ClickHouseServer",
    "KafkaServer",
    "PostgresServer",
    "RedisServer",
    "ServerProcess",
    "ServerStartError",
    "free_port",
    "stop_all",
]
