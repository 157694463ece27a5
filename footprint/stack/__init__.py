"""The embedded stack: real servers (Kafka-protocol broker, PostgreSQL, Redis) run as children."""

from footprint.stack.kafka import KafkaServer
from footprint.stack.postgres import PostgresServer
from footprint.stack.process import ServerProcess, ServerStartError, free_port, stop_all
from footprint.stack.redis import RedisServer

__all__ = [
    "KafkaServer",
    "PostgresServer",
    "RedisServer",
    "ServerProcess",
    "ServerStartError",
    "free_port",
    "stop_all",
]
