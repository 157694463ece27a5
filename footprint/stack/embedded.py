"""Start whatever the settings leave unset: the embedded stack behind ``footprint run``.

Each server URL that is set is used as is; each one that is not gets a real local server under
the data dir (ClickHouse becomes embedded chdb). The result is the environment to run with.
The broker is Tansu, or Apache Kafka with ``FOOTPRINT_BROKER=kafka``; it listens on 9092 when
that port is free.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path

from footprint.settings import ENV_PREFIX, Settings
from footprint.stack import orphans
from footprint.stack.apache_kafka import KafkaCluster
from footprint.stack.kafka import KafkaServer
from footprint.stack.ports import tcp_open
from footprint.stack.postgres import PostgresServer
from footprint.stack.process import ServerProcess
from footprint.stack.redis import RedisServer

__all__ = ["EmbeddedStack"]

log = logging.getLogger(__name__)

KAFKA_PORT = 9092


class EmbeddedStack:
    """The servers started for one run; a context manager that stops them all on exit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir).absolute()
        self.servers: dict[str, ServerProcess | KafkaCluster] = {}
        self.env: dict[str, str] = {}
        self._exit = ExitStack()

    def start(self) -> dict[str, str]:
        """Start the missing servers; return the ``FOOTPRINT_*`` variables that point at them."""
        s = self.settings
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Servers a killed earlier run left behind go first: one may hold Kafka's port.
        for server_dir in orphans.leftovers(self.data_dir):
            orphans.stop_leftover(server_dir)
        try:
            if not s.kafka_url:
                self._start("kafka_url", self._broker())
            if not s.postgres_url:
                self._start("postgres_url", PostgresServer(self.data_dir / "postgres"))
            if not s.redis_url:
                self._start("redis_url", RedisServer(self.data_dir / "redis"))
        except BaseException:
            self.stop()
            raise
        if not s.clickhouse_url:
            self.env[f"{ENV_PREFIX}CLICKHOUSE_URL"] = f"chdb://{self.data_dir / 'clickhouse'}"
        return dict(self.env)

    def _broker(self) -> ServerProcess | KafkaCluster:
        # Kafka's well-known port when it is free, so a site's producers find the broker.
        port = KAFKA_PORT if not tcp_open("127.0.0.1", KAFKA_PORT) else None
        if self.settings.broker == "kafka":
            return KafkaCluster(self.data_dir / "apache-kafka", ports=[port] if port else None)
        return KafkaServer(self.data_dir / "kafka", port)

    def _start(self, field: str, server: ServerProcess | KafkaCluster) -> None:
        log.info("starting embedded %s", server.name)
        server.start()
        self._exit.callback(server.stop)
        self.servers[field] = server
        self.env[f"{ENV_PREFIX}{field.upper()}"] = server.url  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Stop every server this stack started, newest first."""
        self._exit.close()

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
