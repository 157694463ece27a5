"""Apache Kafka in KRaft mode for the embedded stack and the tests: jars from Maven, local java.

The broker's jars are resolved by Maven from ``apache-kafka.pom.xml`` beside this module (into
``~/.m2``, once) and run with the machine's ``java`` (17 or newer), one process per node in
combined broker+controller mode. ``KafkaCluster(n)`` runs ``n`` such nodes as one cluster (a
static controller quorum of all of them); ``ApacheKafkaServer`` is one node, and a one-node
cluster is what ``FOOTPRINT_BROKER=kafka`` starts. Logs stay in each node's data dir.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from footprint.stack.kafka import KafkaProtocolServer
from footprint.stack.process import ServerStartError, free_port, run_checked

__all__ = ["KAFKA_VERSION", "ApacheKafkaServer", "KafkaCluster", "kafka_classpath"]

POM = Path(__file__).with_name("apache-kafka.pom.xml")
KAFKA_VERSION = "4.1.1"
_INSTALL_HINT = (
    "Apache Kafka needs a JDK 17+ and Maven: apt-get install openjdk-17-jdk-headless maven "
    "(macOS: brew install openjdk@17 maven), or run FOOTPRINT_BROKER=tansu"
)
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
_classpath_lock = threading.Lock()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "footprint"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ServerStartError(f"`{name}` not found. {_INSTALL_HINT}")
    return found


def kafka_classpath() -> str:
    """The broker's classpath (jars in the local Maven repository), resolved once and cached."""
    pom = POM.read_bytes()
    digest = hashlib.sha256(pom).hexdigest()[:12]
    cached = _cache_dir() / f"apache-kafka-{digest}.classpath"
    with _classpath_lock:
        if cached.exists():
            text = cached.read_text().strip()
            if text and all(Path(jar).exists() for jar in text.split(os.pathsep)):
                return text
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        run_checked(
            [
                _tool("mvn"),
                "-B",
                "-q",
                "-f",
                str(POM),
                "dependency:build-classpath",
                f"-Dmdep.outputFile={partial}",
                "-DincludeScope=runtime",
            ],
            "resolving the Apache Kafka jars with Maven",
        )
        partial.replace(cached)
        return cached.read_text().strip()


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
                import base64

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
        _tool("java")
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
            _tool("java"),
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


class KafkaCluster:
    """``size`` Apache Kafka nodes forming one KRaft cluster (every node a controller too)."""

    def __init__(
        self,
        data_dir: Path | str,
        size: int = 1,
        *,
        ports: Sequence[int] | None = None,
        heap: str = "768m",
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        ports = list(ports) if ports else [free_port() for _ in range(size)]
        controllers = [free_port() for _ in range(size)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{port}" for i, port in enumerate(controllers))
        cluster_id = None
        saved = self.data_dir / "cluster.id"
        if saved.exists():
            cluster_id = saved.read_text().strip()
        self.nodes = [
            ApacheKafkaServer(
                self.data_dir / f"node-{i + 1}",
                ports[i],
                node_id=i + 1,
                controller_port=controllers[i],
                voters=voters,
                cluster_id=cluster_id,
                replication=min(size, 3),
                heap=heap,
            )
            for i in range(size)
        ]
        first = self.nodes[0].cluster_id
        for node in self.nodes:
            node._cluster_id = first
        self.data_dir.mkdir(parents=True, exist_ok=True)
        saved.write_text(first)

    name = "kafka"

    @property
    def bootstrap(self) -> str:
        """Every node's ``host:port``, comma-separated."""
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def url(self) -> str:
        """``kafka://host:port,host:port…``."""
        return f"kafka://{self.bootstrap}"

    @property
    def port(self) -> int:
        """The first node's port."""
        return self.nodes[0].port

    @property
    def log_path(self) -> Path:
        """The first node's log (each node has its own)."""
        return self.nodes[0].log_path

    def node_by_id(self, node_id: int) -> ApacheKafkaServer:
        """The node with KRaft id ``node_id``."""
        return self.nodes[node_id - 1]

    def start(self) -> KafkaCluster:
        """Start every node at once (a quorum needs a majority up) and wait for all."""
        kafka_classpath()  # resolve once, before the nodes race for it
        began = time.monotonic()
        errors: list[BaseException] = []

        def start(node: ApacheKafkaServer) -> None:
            try:
                node.start()
            except BaseException as e:
                errors.append(e)

        todo = [n for n in self.nodes if not n.running]
        if len(todo) == 1:
            # On this thread: a node started here dies with its parent (see stack/orphans.py).
            start(todo[0])
        threads = [threading.Thread(target=start, args=(n,)) for n in todo if len(todo) > 1]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.stop()
            raise errors[0]
        self.started_in = time.monotonic() - began
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every node (in parallel: the last ones would otherwise wait for a quorum)."""
        threads = [threading.Thread(target=n.stop, args=(timeout,)) for n in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def kill(self) -> None:
        """SIGKILL every node."""
        for node in self.nodes:
            node.kill()

    def pause(self) -> None:
        """SIGSTOP every node: clients hang as in a network outage."""
        for node in self.nodes:
            node.pause()

    def resume(self) -> None:
        """SIGCONT every node."""
        for node in self.nodes:
            node.resume()

    def restart(self) -> KafkaCluster:
        """Stop every node and start them again on the same ports and log dirs."""
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        """Whether every node runs."""
        return all(node.running for node in self.nodes)

    def log_tail(self, lines: int = 40) -> str:
        """The tail of every node's log."""
        return "\n".join(f"--- node {n.node_id}\n{n.log_tail(lines)}" for n in self.nodes)

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<KafkaCluster {self.bootstrap} dir={self.data_dir}>"
