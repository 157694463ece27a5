"""The embedded stack against real servers: start, answer, pause/resume, stop leaves nothing."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from footprint.kafka_admin import TopicPartitionMismatch, TopicSpec, ensure_topics_sync
from footprint.stack import (
    KafkaServer,
    PostgresServer,
    RedisServer,
    ServerProcess,
    ServerStartError,
    free_port,
)
from footprint.stack.kafka import kafka_metadata_ok

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in pids if not pid_gone(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def test_postgres_serves_pauses_restarts_and_stops(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path / "pg")
    with server:
        assert server.url.endswith(f"127.0.0.1:{server.port}/footprint")
        with psycopg.connect(server.url, autocommit=True) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
            assert conn.execute("select current_database()").fetchone() == ("footprint",)
            conn.execute("create table kept (n int)")
            conn.execute("insert into kept values (42)")

            server.pause()
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(server.url, connect_timeout=1).close()
            server.resume()
            # The connection made before the pause survives it: state was frozen, not lost.
            assert conn.execute("select n from kept").fetchone() == (42,)

        server.restart()
        with psycopg.connect(server.url) as conn:
            assert conn.execute("select n from kept").fetchone() == (42,)
            backends = server._tree()
        pid = server.pid
        assert pid is not None
    assert server.pid is None
    assert wait_gone(backends) == []
    assert pid_gone(pid)


def test_redis_serves_pauses_and_stops(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        client = redis.Redis.from_url(server.url, socket_timeout=0.3)
        client.set("k", "v")
        assert client.get("k") == b"v"

        server.pause()
        assert server.paused
        with pytest.raises(redis.exceptions.TimeoutError):
            redis.Redis.from_url(server.url, socket_timeout=0.3).ping()
        server.resume()
        assert client.get("k") == b"v"
        client.close()
        pid = server.pid
        assert pid is not None
    assert pid_gone(pid)


def test_kafka_topics_messages_pause_and_stop(tmp_path: Path) -> None:
    server = KafkaServer(tmp_path / "kafka").start()
    try:
        assert server.url == f"kafka://127.0.0.1:{server.port}"
        spec = TopicSpec("visits", 3, config={"cleanup.policy": "compact"})
        ensure_topics_sync(server.bootstrap, [spec])
        ensure_topics_sync(server.bootstrap, [spec])  # existing with the same count: fine
        with pytest.raises(TopicPartitionMismatch, match=r"'visits' has 3 partitions, 5"):
            ensure_topics_sync(server.bootstrap, [TopicSpec("visits", 5)])

        async def roundtrip() -> bytes:
            producer = AIOKafkaProducer(bootstrap_servers=server.bootstrap)
            await producer.start()
            try:
                await producer.send_and_wait("visits", b"hello", key=b"k", partition=1)
            finally:
                await producer.stop()
            consumer = AIOKafkaConsumer(
                bootstrap_servers=server.bootstrap, auto_offset_reset="earliest"
            )
            await consumer.start()
            try:
                partitions = consumer.partitions_for_topic("visits") or set()
                assert len(partitions) == 3
                consumer.assign([TopicPartition("visits", 1)])
                message = await asyncio.wait_for(consumer.getone(), 10)
                return message.value
            finally:
                await consumer.stop()

        assert asyncio.run(roundtrip()) == b"hello"

        server.pause()
        with pytest.raises(OSError):
            kafka_metadata_ok(server.host, server.port, timeout=0.3)
        server.resume()
        assert kafka_metadata_ok(server.host, server.port)
        # Still the same broker: the topic made before the pause is there.
        ensure_topics_sync(server.bootstrap, [spec])
        pid = server.pid
        assert pid is not None
    finally:
        server.stop()
    assert pid_gone(pid)


def test_start_failure_reports_log_tail(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = RedisServer(tmp_path / "redis", port=taken.getsockname()[1], start_timeout=10)
        with pytest.raises(ServerStartError, match="(?s)exited with code.*in use"):
            server.start()
    assert not server.running


class Sleeper(ServerProcess):
    name = "sleeper"

    def command(self) -> list[str]:
        return ["sleep", "30"]

    def probe(self) -> bool:
        return False


def test_never_ready_is_killed_with_a_clear_error(tmp_path: Path) -> None:
    server = Sleeper(tmp_path / "s", start_timeout=0.3)
    with pytest.raises(ServerStartError, match="did not become ready"):
        server.start()
    assert not server.running


def test_atexit_stops_servers_left_running(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from footprint.stack import RedisServer\n"
        f"s = RedisServer({str(tmp_path / 'r')!r}).start()\n"
        "sys.stdout.write(f'{s.pid}\\n'); sys.stdout.flush()\n"
        "raise RuntimeError('crash with the server running')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert "crash with the server running" in done.stderr
    pid = int(done.stdout.strip())
    assert wait_gone([pid]) == []


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
