"""One Apache Kafka node in KRaft mode (broker and controller) as a child process.

Its ``server.properties`` are written from ``properties()`` into its data dir, its storage is
formatted on the first start, and it runs as ``java … kafka.Kafka server.properties`` with the
jars of ``footprint/stack/kafka_jars.py``. Its log stays in the data dir.
"""

from __future__ import annotations

import base64
import os
import signal
import uuid
from pathlib import Path
from typing import Any, ClassVar

from footprint.stack.kafka import KafkaProtocolServer
from footprint.stack.kafka_jars import kafka_classpath, require_tool
from footprint.stack.ports import free_port
from footprint.stack.process import run_checked

__all__ = ["ApacheKafkaServer"]

_LOG4J = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka
        level: INFO
      - name: org.apache.kafka
        level: WARN
      - name: kafka.request.logger
        level: WARN
      - name: state.change.logger
        level: WARN
      - name: kafka.log.LogCleaner
        level: WARN
"""


class ApacheKafkaServer(KafkaProtocolServer):
    """One Apache Kafka node (broker and controller) on 127.0.0.1, data under ``data_dir``."""

    name = "kafka"
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(
        self,
        data_dir: Path | str,
        port: int | None = None,
        *,
        node_id: int = 1,
        controller_port: int | None = None,
        voters: str | None = None,
        cluster_id: str | None = None,
        replication: int = 1,
        heap: str = "768m",
        start_timeout: float = 180.0,
    ) -> None:
        super().__init__(data_dir, port, start_timeout=start_timeout)
        self.node_id = node_id
        self.controller_port = controller_port or free_port(self.host)
        self.voters = voters or f"{node_id}@{self.host}:{self.controller_port}"
        self.replication = replication
        self.heap = heap
        self._cluster_id = cluster_id
        self._classpath: str | None = None

    @property
    def log_dir(self) -> Path:
        """Where the node keeps its partitions and the metadata log."""
        return self.data_dir / "logs"

    @property
    def cluster_id(self) -> str:
        """The KRaft cluster id: kept in the data dir so a restart joins the same cluster."""
        if self._cluster_id is None:
            saved = self.data_dir / "cluster.id"
            if saved.exists():
                self._cluster_id = saved.read_text().strip()
            else:
                # A Kafka cluster id is 16 bytes in URL-safe base64 without padding.
                raw = uuid.uuid4().bytes
                self._cluster_id = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return self._cluster_id

    def properties(self) -> dict[str, str]:
        """The node's server.properties."""
        rf = str(self.replication)
        return {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "listeners": f"PLAINTEXT://{self.bootstrap},CONTROLLER://{self.host}:"
            f"{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "num.partitions": "1",
            # Every topic is created on purpose, with its partition count (footprint migrate,
            # Faust's changelogs). Auto-creation raced Faust under exactly_once: a changelog
            # was created with 1 partition and the agent stopped with PartitionsMismatch.
            "auto.create.topics.enable": "false",
            "default.replication.factor": rf,
            "min.insync.replicas": str(min(2, self.replication)),
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": str(min(2, self.replication)),
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": str(min(2, self.replication)),
            # A consumer group forms as soon as its members join (tests start workers often).
            "group.initial.rebalance.delay.ms": "0",
            # A killed node's partitions get a new leader within seconds, not a minute.
            "broker.session.timeout.ms": "6000",
            "broker.heartbeat.interval.ms": "1000",
            "controlled.shutdown.enable": "true",
            "unclean.leader.election.enable": "false",
        }

    def prepare(self) -> None:
        """Resolve the jars, write the configuration, format the storage on first start."""
        self._classpath = kafka_classpath()
        require_tool("java")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "cluster.id").write_text(self.cluster_id)
        props = "".join(f"{k}={v}\n" for k, v in self.properties().items())
        self.config_path.write_text(props)
        (self.data_dir / "log4j2.yaml").write_text(_LOG4J)
        if not (self.log_dir / "meta.properties").exists():
            run_checked(
                [
                    *self._java(heap="256m"),
                    "kafka.tools.StorageTool",
                    "format",
                    "--ignore-formatted",
                    # "=": a URL-safe base64 id may start with "-", which argparse takes for an
                    # option (seen: "argument --cluster-id/-t: expected one argument").
                    f"--cluster-id={self.cluster_id}",
                    "-c",
                    str(self.config_path),
                ],
                f"formatting Kafka storage in {self.log_dir}",
            )

    @property
    def config_path(self) -> Path:
        """The node's server.properties."""
        return self.data_dir / "server.properties"

    def _java(self, heap: str) -> list[str]:
        assert self._classpath is not None
        return [
            require_tool("java"),
            f"-Xmx{heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.yaml'}",
            "-cp",
            self._classpath,
        ]

    def command(self) -> list[str]:
        """``java … kafka.Kafka server.properties``."""
        return [*self._java(self.heap), "kafka.Kafka", str(self.config_path)]

    def popen_kwargs(self) -> dict[str, Any]:
        """Run from the data dir; the JVM's own option variables must not leak in."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS")
        }
        return {"env": env, "cwd": str(self.data_dir)}
