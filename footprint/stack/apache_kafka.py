"""Apache Kafka in KRaft mode for the embedded stack and the tests: jars from Maven, local java.

The broker's jars are resolved by Maven from ``apache-kafka.pom.xml`` beside this module (into
``~/.m2``, once) and run with the machine's ``java`` (17 or newer), one process per node in
combined broker+controller mode. ``KafkaCluster(n)`` runs ``n`` such nodes as one cluster (a
static controller quorum of all of them); ``ApacheKafkaServer`` is one node, and a one-node
cluster is what ``FOOTPRINT_BROKER=kafka`` starts. Logs stay in each node's data dir. A node is
``footprint/stack/kafka_node.py``, the jars and tools ``footprint/stack/kafka_jars.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from footprint.stack.kafka_jars import KAFKA_VERSION, kafka_classpath
from footprint.stack.kafka_node import ApacheKafkaServer
from footprint.stack.ports import free_port

__all__ = ["KAFKA_VERSION", "ApacheKafkaServer", "KafkaCluster"]


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
