"""Real servers for the integration tests, started once per session, isolated per test.

Each test gets its own topics and consumer group, its own PostgreSQL database, its own Redis
database number and its own ClickHouse database, so tests never see each other's data.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from footprint.stack import KafkaServer, PostgresServer, RedisServer, free_port
from footprint.stack.apache_kafka import KafkaCluster
from footprint.stack.clickhouse import ClickHouseServer

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
T = TypeVar("T")
JWT_SECRET = "integration-tests-secret-0123456789abcdef"


def admin_headers() -> dict[str, str]:
    """A stats reader's header (an admin token): stats, stream status and metrics need one."""
    from api.auth import mint_token
    from footprint.settings import load_settings

    token = mint_token(load_settings(jwt_secret=JWT_SECRET), "tests-admin", admin=True)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Servers:
    kafka: KafkaCluster | KafkaServer
    postgres: PostgresServer
    redis: RedisServer

    @property
    def broker(self) -> str:
        """``kafka`` (Apache Kafka) or ``tansu``."""
        return "kafka" if isinstance(self.kafka, KafkaCluster) else "tansu"


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """One Apache Kafka node (KRaft), the production broker, shared by the session."""
    cluster = KafkaCluster(tmp_path_factory.mktemp("apache-kafka")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaServer]:
    """Tansu, the quick-start broker of ``make run``, shared by the session."""
    server = KafkaServer(tmp_path_factory.mktemp("tansu")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def stores(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[PostgresServer, RedisServer]]:
    base = tmp_path_factory.mktemp("stack")
    postgres = PostgresServer(base / "postgres").start()
    redis = RedisServer(base / "redis").start()
    try:
        yield postgres, redis
    finally:
        for server in (redis, postgres):
            server.stop()


@pytest.fixture(scope="session")
def servers(apache_kafka: KafkaCluster, stores: tuple[PostgresServer, RedisServer]) -> Servers:
    """The stack most tests run on: Apache Kafka, PostgreSQL, Redis."""
    return Servers(apache_kafka, *stores)


@pytest.fixture
def stack(request: pytest.FixtureRequest, servers: Servers) -> Servers:
    """The stack of one test: ``servers``, or the same stores on Tansu.

    ``@pytest.mark.parametrize("stack", BROKERS, indirect=True)`` runs a test on each broker.
    """
    if getattr(request, "param", "kafka") == "kafka":
        return servers
    return Servers(request.getfixturevalue("tansu"), servers.postgres, servers.redis)


BROKERS = ["kafka", "tansu"]


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    server = ClickHouseServer(tmp_path_factory.mktemp("clickhouse")).start()
    try:
        yield server
    finally:
        server.stop()


_redis_db = itertools.count(1)


@pytest.fixture
def env(stack: Servers, tmp_path: Path) -> dict[str, str]:
    """``FOOTPRINT_*`` variables for one test: fresh topics, database, Redis db and data dir."""
    return make_env(stack, tmp_path)


def make_env(servers: Servers, tmp_path: Path) -> dict[str, str]:
    """Fresh topics, PostgreSQL database, Redis db and data dir, as ``FOOTPRINT_*`` variables."""
    tag = uuid.uuid4().hex[:8]
    values = {
        "FOOTPRINT_KAFKA_URL": servers.kafka.url,
        "FOOTPRINT_POSTGRES_URL": fresh_postgres_url(servers.postgres, f"t_{tag}"),
        "FOOTPRINT_REDIS_URL": fresh_redis_url(servers.redis),
        "FOOTPRINT_APP_ID": f"footprint-{tag}",
        "FOOTPRINT_FOOTPRINTS_TOPIC": f"footprints-{tag}",
        "FOOTPRINT_DEAD_LETTER_TOPIC": f"footprints-{tag}-dead-letter",
        "FOOTPRINT_NOTIFICATIONS_TOPIC": f"notifications-{tag}",
        "FOOTPRINT_NOTIFICATIONS_DEAD_LETTER_TOPIC": f"notifications-{tag}-dead-letter",
        "FOOTPRINT_JWT_SECRET": JWT_SECRET,
        "FOOTPRINT_DATA_DIR": str(tmp_path / "data"),
        "FOOTPRINT_BATCH_SECONDS": "0.2",
    }
    return values


def fresh_postgres_url(server: PostgresServer, database: str | None = None) -> str:
    """A new, empty database on ``server`` (named ``database``, else at random): its URL."""
    database = database or f"t_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    return server.url_for(database)


def fresh_redis_url(server: RedisServer) -> str:
    """The URL of the next Redis database number of ``server``, emptied."""
    import redis as redis_lib

    url = server.url.rsplit("/", 1)[0] + f"/{next(_redis_db) % 16}"
    redis_lib.Redis.from_url(url).flushdb()
    return url


def clickhouse_database_url(server: ClickHouseServer, name: str) -> str:
    """The server's URL with its own database for one test."""
    return server.url.rsplit("/", 1)[0] + f"/{name}"


def wait_until(
    check: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns a truthy value; fail with its last value on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as e:  # a server still starting answers with errors
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def wait_for_minute_room(seconds: float = 20.0) -> None:
    """Sleep into the next minute if fewer than ``seconds`` are left of this one.

    Tests that watch the live 1-minute window use it so that the window does not roll over
    between posting footprints and seeing them counted.
    """
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.2)


class Process:
    """A product process (``footprint run``, ``faust … worker``) run by a test."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("wb")
        self.proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=self._file,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self, timeout: float = 30.0) -> int:
        if self.alive():
            self.proc.send_signal(2)  # SIGINT: what Ctrl-C sends
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._file.close()
        return self.proc.returncode


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def _spawn(argv: list[str], env: dict[str, str], name: str) -> Process:
        p = Process(argv, env, tmp_path / f"{name}.log")
        started.append(p)
        return p

    yield _spawn
    for p in started:
        p.stop()


class Served:
    """Where a test's product process reaches its servers, from its ``env``."""

    env: dict[str, str]

    @property
    def pg(self) -> str:
        """Its PostgreSQL database."""
        return self.env["FOOTPRINT_POSTGRES_URL"]

    @property
    def bootstrap(self) -> str:
        """Its broker's host:port list."""
        return self.env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://")


@contextlib.contextmanager
def footprint_run(env: dict[str, str], log: Path) -> Iterator[tuple[str, Process]]:
    """``footprint run`` (API, relay and worker) on a free port: its base URL and process."""
    port = free_port()
    proc = Process([str(BIN / "footprint"), "run", "--port", str(port)], env, log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/health", proc)
        yield base, proc
    finally:
        proc.stop()


def stream_status(base: str, timeout: float = 30.0) -> dict[str, Any]:
    """``GET /api/stream/status`` of the API at ``base``, as an admin."""
    answer = httpx.get(base + "/api/stream/status", headers=admin_headers(), timeout=timeout)
    return dict(answer.json())


def wait_http(url: str, proc: Process, timeout: float = 90.0) -> None:
    """Wait for a process's HTTP endpoint, failing early with its log if it dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError(f"process exited ({proc.proc.returncode}):\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not up after {timeout}s:\n{proc.tail()}")


__all__ = [
    "BIN",
    "BROKERS",
    "Process",
    "Served",
    "Servers",
    "clickhouse_database_url",
    "footprint_run",
    "free_port",
    "fresh_redis_url",
    "stream_status",
    "wait_for_minute_room",
    "wait_http",
    "wait_until",
]
