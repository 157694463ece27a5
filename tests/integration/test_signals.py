"""Signals always work: Ctrl-C and SIGTERM stop ``footprint run`` and the worker in bounded time,
even while a store write is being retried, and no embedded server outlives its parent.

Each test prints one figure line (seconds from the signal to the exit, what was stored).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from footprint.stack import KafkaServer, PostgresServer, RedisServer
from footprint.stack.orphans import PIDFILE
from tests.integration.conftest import (
    BIN,
    JWT_SECRET,
    ROOT,
    Process,
    Servers,
    admin_headers,
    clickhouse_database_url,
    free_port,
    make_env,
    wait_http,
    wait_until,
)
from tests.integration.test_faults import footprints, migrate, produce, start_worker
from tests.integration.test_run import processes_using
from tests.integration.traffic import postgres_rows

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="process checks read /proc (Linux)"),
]

# What the product promises (FOOTPRINT_STOP_TIMEOUT is 10 s by default), with room for a busy CI.
BOUND = 15.0
EMBEDDED = {f"FOOTPRINT_{name}_URL": "" for name in ("KAFKA", "POSTGRES", "CLICKHOUSE", "REDIS")}


def server_pids(data: Path) -> dict[str, int]:
    """The embedded servers' pids, from the pid files ``footprint run`` keeps in its data dir."""
    found = {}
    for pidfile in sorted(data.glob(f"*/{PIDFILE}")):
        saved = json.loads(pidfile.read_text())
        found[saved["name"]] = int(saved["pid"])
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is dead)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop_and_time(proc: Process, sig: signal.Signals, bound: float = 30.0) -> tuple[int, float]:
    """Send ``sig``; the exit code and the seconds until the process was gone."""
    began = time.monotonic()
    proc.proc.send_signal(sig)
    try:
        code = proc.proc.wait(bound)
    except subprocess.TimeoutExpired:
        os.killpg(proc.proc.pid, signal.SIGKILL)
        proc.proc.wait()
        raise AssertionError(
            f"still running {bound:.0f}s after {sig.name}:\n{proc.tail()}"
        ) from None
    return code, time.monotonic() - began


def start_run(spawn: Any, data: Path, name: str) -> tuple[Process, str]:
    port = free_port()
    env = {
        **EMBEDDED,
        "FOOTPRINT_DATA_DIR": str(data),
        "FOOTPRINT_BATCH_SECONDS": "0.2",
        "FOOTPRINT_JWT_SECRET": JWT_SECRET,  # what admin_headers() signs with
    }
    proc = spawn([str(BIN / "footprint"), "run", "--port", str(port)], env, name)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc, timeout=120)
    return proc, base


def post(api: httpx.Client, n: int, link: str, at: str | None = None) -> None:
    body = {"method": "GET", "link": link} | ({"footprint_time": at} if at else {})
    for _ in range(n):
        assert api.post("/api/footprints", json=body).status_code == 202


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_run_stops_in_bounded_time_while_postgres_is_down_and_leaves_no_server(
    sig: signal.Signals, tmp_path: Path, spawn
) -> None:
    data = tmp_path / "data"
    proc, base = start_run(spawn, data, "run")
    pids = server_pids(data)
    assert set(pids) == {"kafka", "postgres", "redis"} and all(map(alive, pids.values())), pids
    with httpx.Client(base_url=base, timeout=10) as api:
        # One time for the footprints and the question: the window "now" would change on the
        # hour (seen: footprints of 18:59:59.99 looked for in 19:00-20:00).
        at = datetime.now(UTC).isoformat()
        post(api, 5, "/before", at)
        live = {"window": "1h", "at": at}
        wait_until(
            lambda: (
                api.get("/api/stats/live", params=live, headers=admin_headers()).json()["total"]
                == 5
            ),
            what="the first footprints counted",
        )
        # PostgreSQL goes away under the worker: every claim of the next batch fails.
        os.kill(pids["postgres"], signal.SIGKILL)
        post(api, 5, "/during")
    wait_until(
        lambda: "postgres unavailable, retrying" in proc.log.read_text(errors="replace"),
        what="the worker retrying the PostgreSQL write",
    )

    code, took = stop_and_time(proc, sig)
    print(f"footprint run, postgres down, {sig.name}: exit {code} after {took:.1f}s")
    assert code == 0, proc.tail()  # a clean stop, not the deadline's forced exit
    assert took <= BOUND, proc.tail()
    assert "batch of" in proc.tail(400) and "read again on the next start" in proc.tail(400)
    assert [name for name, pid in pids.items() if alive(pid)] == []
    assert processes_using(data) == []


def test_worker_sigterm_while_postgres_is_down_exits_in_time_and_loses_no_footprint(
    tansu: KafkaServer,
    stores: tuple[PostgresServer, RedisServer],
    clickhouse_server: Any,
    tmp_path: Path,
    spawn,
) -> None:
    # A PostgreSQL of this test's own, to stop under the worker.
    postgres = PostgresServer(tmp_path / "own-postgres").start()
    try:
        env = make_env(Servers(tansu, postgres, stores[1]), tmp_path)
        env["FOOTPRINT_CLICKHOUSE_URL"] = clickhouse_database_url(
            clickhouse_server, f"t_{tmp_path.name[-20:].replace('-', '_')}"
        )
        migrate(env)
        bootstrap = tansu.bootstrap
        topic = env["FOOTPRINT_FOOTPRINTS_TOPIC"]
        pg_url = env["FOOTPRINT_POSTGRES_URL"]
        first, second = footprints(300, seed=3)[0], footprints(300, seed=4)[0]

        worker = start_worker(spawn, env, "worker-0")
        produce(bootstrap, topic, first, 0.5)
        wait_until(lambda: len(postgres_rows(pg_url)) == 300, what="the first 300 stored")
        postgres.stop()
        produce(bootstrap, topic, second, 0.5)
        wait_until(
            lambda: "postgres unavailable, retrying" in worker.log.read_text(errors="replace"),
            what="the worker retrying the PostgreSQL write",
        )
        code, took = stop_and_time(worker, signal.SIGTERM)
        assert took <= BOUND, worker.tail()
        assert code == 0, worker.tail()

        # The store is back; a new worker reads the given-up batch again and stores it.
        postgres.start()
        worker = start_worker(spawn, env, "worker-1")
        wait_until(lambda: len(postgres_rows(pg_url)) >= 600, what="all 600 stored")
        rows = postgres_rows(pg_url)
        print(f"worker SIGTERM, postgres down: exit {code} after {took:.1f}s; stored {len(rows)}")
        assert len(rows) == len({r[0] for r in rows}) == 600
        assert {r[0] for r in rows} == {fp.event_id for fp in first + second}
    finally:
        postgres.stop()


def test_run_killed_leaves_no_server_and_the_next_run_stops_a_leftover(
    tmp_path: Path, spawn
) -> None:
    data = tmp_path / "data"
    proc, _ = start_run(spawn, data, "run-0")
    pids = server_pids(data)
    # A stopped PostgreSQL holds the parent-death signal pending: it stays, as a server that
    # ignores the signal (or one on macOS, without it) would, and keeps its data dir locked.
    os.kill(pids["postgres"], signal.SIGSTOP)
    os.killpg(proc.proc.pid, signal.SIGKILL)
    proc.proc.wait()
    wait_until(
        lambda: not alive(pids["kafka"]) and not alive(pids["redis"]),
        timeout=10,
        what="the broker and Redis dying with their parent",
    )
    assert alive(pids["postgres"])

    again, base = start_run(spawn, data, "run-1")
    assert not alive(pids["postgres"])
    assert "left running in" in again.tail(400)
    with httpx.Client(base_url=base, timeout=10) as api:
        post(api, 3, "/after-a-kill")
        wait_until(
            lambda: (
                api.get("/api/stats/live", params={"window": "1h"}, headers=admin_headers()).json()[
                    "total"
                ]
                >= 3
            ),
            what="footprints counted by the second run",
        )
    code, took = stop_and_time(again, signal.SIGINT)
    print(f"footprint run killed, restarted on its data dir; Ctrl-C: exit {code} after {took:.1f}s")
    assert code == 0 and took <= BOUND, again.tail()
    assert processes_using(data) == []


_ORPHAN = """
import sys, threading, time
from footprint.stack import PostgresServer, RedisServer
kind, where = sys.argv[1], sys.argv[2]
server = (RedisServer if kind == "redis" else PostgresServer)(where)
# Started off the main thread: no parent-death signal, so it outlives this process.
t = threading.Thread(target=server.start)
t.start()
t.join()
print(server.pid, flush=True)
time.sleep(600)
"""


@pytest.fixture
def orphan(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, int]]:
    """A server whose parent was SIGKILLed: its data dir and pid."""
    where = tmp_path / request.param
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, request.param, str(where)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    assert alive(pid)
    try:
        yield where, pid
    finally:
        if alive(pid):
            psutil.Process(pid).kill()


@pytest.mark.parametrize("orphan", ["redis", "postgres"], indirect=True)
def test_a_server_left_running_is_stopped_by_the_next_start_on_its_data_dir(
    orphan: tuple[Path, int],
) -> None:
    where, pid = orphan
    server = (RedisServer if where.name == "redis" else PostgresServer)(where)
    with server:
        assert not alive(pid)
        assert server.running and server.pid != pid
        assert re.search(rf'"pid": {server.pid}\b', (where / PIDFILE).read_text())
    assert not (where / PIDFILE).exists()
