"""Throughput with more workers: 1, 2 and 4 Faust worker processes in one consumer group.

``python -m bench scale --broker kafka`` (also runs on Tansu):

1. For each partition count (4 and 8), N footprints are produced once, through the API's
   producer (packs, as ``bench worker`` sends them), to a source topic, and read back as raw
   messages.
2. For each number of workers: a fresh topic of that partition count and fresh stores; W
   processes of ``faust -A streams.app worker`` with one app id (one consumer group), each with
   its own data dir and web port. The benchmark waits until every worker's log shows the same
   group generation, an assignment of the topic (together every partition, once) and "Worker
   ready" after it: nothing is timed while the group rebalances.
3. The source messages are copied byte for byte (same partition, key, timestamp) to the topic,
   and the run is timed from the first message sent until PostgreSQL holds N rows. The copy
   (hundreds of packs) takes a fraction of the time the workers take; a producer serialising
   footprints again would be slower than two workers and be what was measured.
4. Per worker: CPU % and runqueue wait (``CpuWindow``), footprints processed (its heartbeat);
   per server (Kafka, PostgreSQL, ClickHouse, Redis) and for the benchmark itself: CPU seconds
   in the window, so the report can say where a footprint's CPU goes. At the end every store
   must hold exactly N: PostgreSQL rows, ClickHouse rows, Redis 1-minute windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import (
    Child,
    CpuWindow,
    Output,
    Progress,
    Stack,
    bin_path,
    child_env,
    loadavg,
    tag,
)
from bench.worker import _redis_minute_total, prepare, produce
from footprint.kafka_admin import TopicSpec, ensure_topics
from footprint.keys import STATUS_PREFIX
from footprint.stack import free_port

__all__ = ["LogState", "PLANS", "log_state", "run", "settled"]

SIZES = {"tiny": 2_000, "small": 20_000, "full": 100_000}
# Partition count → worker counts. Tiny is the smoke test's: it must finish within a minute.
PLANS: dict[str, dict[int, tuple[int, ...]]] = {
    "tiny": {4: (1, 2)},
    "small": {4: (1, 2, 4), 8: (1, 2, 4)},
    "full": {4: (1, 2, 4), 8: (1, 2, 4)},
}
MAX_SECONDS = {"tiny": 60.0, "small": 90.0, "full": 240.0}
# Four Faust processes importing at once on two cores take a while to join.
SETTLE_TIMEOUT = 180.0


# --------------------------------------------------------------------------- the group's state


@dataclass(frozen=True)
class LogState:
    """What one worker's log says about its place in the group."""

    generation: int | None
    partitions: frozenset[int]
    ready: bool


_JOINED = re.compile(r"Joined group '[^']*' \(generation (-?\d+)\)")
_ASSIGNED = "Setting newly assigned partitions"
_REVOKING = "Revoking previously assigned partitions"
_READY = "Worker ready"


def _partition_set(text: str) -> frozenset[int]:
    """``{0, 2-5}`` as Faust's tables print a partition set."""
    out: set[int] = set()
    for part in text.strip().strip("{}").split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return frozenset(out)


def log_state(text: str, topic: str) -> LogState:
    """The latest generation joined, the topic's partitions assigned then, and whether the
    worker said "Worker ready" after that assignment with no rebalance begun since."""
    joins = _JOINED.findall(text)
    generation = int(joins[-1]) if joins else None
    assigned_at = text.rfind(_ASSIGNED)
    partitions: frozenset[int] = frozenset()
    if assigned_at >= 0:
        # The assignment is a table: "| <topic>   | {0, 2} |", ending with "for group <id>".
        table = text[assigned_at:].split("for group", 1)[0]
        row = re.search(rf"^\|\s*{re.escape(topic)}\s*\|\s*(\{{[^}}]*\}})\s*\|", table, re.M)
        if row:
            partitions = _partition_set(row.group(1))
    ready_at = text.rfind(_READY)
    ready = ready_at > assigned_at >= 0 and ready_at > text.rfind(_REVOKING)
    return LogState(generation, partitions, ready)


def settled(states: list[LogState], partitions: int) -> bool:
    """Every worker ready in one generation, each with partitions, together each one once."""
    if not states or any(not s.ready or not s.partitions for s in states):
        return False
    if len({s.generation for s in states}) != 1:
        return False
    every = [p for s in states for p in s.partitions]
    return len(every) == len(set(every)) and set(every) == set(range(partitions))


# --------------------------------------------------------------------------- CPU of the servers


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its live descendants and the children it has reaped."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            # PostgreSQL forks a backend per connection: the ones that exit are in children_*.
            total += t.user + t.system + t.children_user + t.children_system
    return total


def _process_cpu(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


def server_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each server's processes, and by this benchmark process."""
    out = {name: sum(_tree_cpu(pid) for pid in pids) for name, pids in stack.pids().items()}
    out["bench"] = _process_cpu(os.getpid())
    return out


# --------------------------------------------------------------------------- topics


async def read_messages(
    bootstrap: str, topic: str, partitions: int, count: int
) -> list[tuple[int, bytes | None, bytes, int]]:
    """Every message of ``topic``: partition, key, value, timestamp (ms)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    out: list[tuple[int, bytes | None, bytes, int]] = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + 120
        while len(out) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, records in batches.items():
                out += [(tp.partition, r.key, r.value, r.timestamp) for r in records if r.value]
    finally:
        await consumer.stop()
    if len(out) < count:
        raise RuntimeError(f"read {len(out)} of {count} messages of {topic}")
    return out


async def copy_messages(
    bootstrap: str,
    topic: str,
    messages: list[tuple[int, bytes | None, bytes, int]],
    on_start: Callable[[], None],
) -> float:
    """Send the messages to ``topic`` as they were; the seconds until the broker had them all.

    ``on_start`` runs once connected, right before the first message: the measure's start.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=1024 * 1024
    )
    await producer.start()
    try:
        on_start()
        began = time.perf_counter()
        sent = [
            await producer.send(topic, value, key=key, partition=p, timestamp_ms=ts)
            for p, key, value, ts in messages
        ]
        await asyncio.gather(*sent)
        return time.perf_counter() - began
    finally:
        await producer.stop()


# --------------------------------------------------------------------------- one measurement


def _heartbeats(redis_url: str) -> dict[int, dict[str, Any]]:
    """Each worker's last heartbeat, by its pid (the worker id is ``host:pid``)."""
    client = redis.Redis.from_url(redis_url)
    try:
        out = {}
        for key in client.scan_iter(f"{STATUS_PREFIX}*"):
            raw = client.get(key)
            if raw:
                beat = json.loads(raw)
                out[int(str(beat["worker_id"]).rsplit(":", 1)[1])] = beat
        return out
    finally:
        client.close()


def _wait_settled(
    workers: list[Child], topic: str, partitions: int, progress: Progress
) -> list[LogState]:
    began = time.monotonic()
    deadline = began + SETTLE_TIMEOUT
    while True:
        for w in workers:
            if not w.alive():
                raise RuntimeError(f"a worker exited:\n{w.tail()}")
        states = [log_state(w.log.read_text(errors="replace"), topic) for w in workers]
        if settled(states, partitions):
            progress(
                f"{len(workers)} worker(s) ready in generation {states[0].generation} after "
                f"{time.monotonic() - began:.1f}s: "
                + ", ".join(str(sorted(s.partitions)) for s in states)
            )
            return states
        if time.monotonic() > deadline:
            raise TimeoutError(f"the group did not settle within {SETTLE_TIMEOUT:.0f}s: {states}")
        time.sleep(0.2)


def _minute_total(client: redis.Redis) -> int:
    return sum(
        int(v) for key in client.scan_iter("footprint:live:1m:*:totals") for v in client.hvals(key)
    )


def _timed(
    conn: psycopg.Connection[Any],
    clickhouse: Any,
    live: redis.Redis,
    stack: Stack,
    children: list[Child],
    messages: list[tuple[int, bytes | None, bytes, int]],
    topic: str,
    n: int,
    max_seconds: float,
) -> dict[str, Any]:
    """Copy the messages, time until N rows in PostgreSQL, then until every store has N.

    The worker writes PostgreSQL first, then ClickHouse and Redis: the CPU per footprint is
    taken over the whole pipeline (to the last store), the rate to PostgreSQL as in
    ``bench worker``, and to the last store too.
    """
    # The benchmark's own polling backend is not the workers' PostgreSQL cost.
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    poller = int(row[0]) if row else 0
    cpus: list[CpuWindow] = []
    workers_before: list[float] = []
    servers_before: dict[str, float] = {}
    poller_before = 0.0
    began = 0.0

    def start() -> None:
        nonlocal poller_before, began
        cpus.extend(CpuWindow(c.pid) for c in children)
        workers_before.extend(_process_cpu(c.pid) for c in children)
        servers_before.update(server_cpu(stack))
        poller_before = _process_cpu(poller)
        began = time.perf_counter()

    copy_s = asyncio.run(copy_messages(stack.kafka.bootstrap, topic, messages, start))
    first_at: float | None = None
    pg_at: float | None = None
    rows = 0
    deadline = began + max_seconds
    while True:
        if not all(c.alive() for c in children):
            raise RuntimeError("a worker exited while measured")
        now = time.perf_counter()
        if pg_at is None:
            row = conn.execute("SELECT count(*) FROM user_footprint").fetchone()
            rows = int(row[0]) if row else 0
            now = time.perf_counter()
            if rows and first_at is None:
                first_at = now
            if rows >= n or now > deadline:
                pg_at = now
                per_worker = [
                    {"pid": c.pid, **cpu.result()} for c, cpu in zip(children, cpus, strict=True)
                ]
                if rows < n:
                    break
        else:
            # Cheap polls (a count() of parts, a few hashes), so they barely weigh on the stores.
            stored = int(clickhouse.execute("SELECT count() FROM user_footprint")[0][0])
            now = time.perf_counter()
            if (stored >= n and _minute_total(live) >= n) or now > deadline:
                break
        time.sleep(0.05)
    done = time.perf_counter()
    servers_after = server_cpu(stack)
    cpu_s = {k: servers_after[k] - servers_before.get(k, 0.0) for k in servers_after}
    cpu_s["postgres"] -= _process_cpu(poller) - poller_before
    cpu_s["workers"] = sum(
        _process_cpu(c.pid) - before for c, before in zip(children, workers_before, strict=True)
    )
    assert pg_at is not None
    elapsed = pg_at - began
    return {
        "copy_s": round(copy_s, 3),
        "stored": rows,
        "capped": rows < n,
        "seconds": round(elapsed, 3),
        "events_per_s": round(rows / elapsed),
        "first_row_after_s": round(first_at - began, 3) if first_at else None,
        "all_stores_s": round(done - began, 3),
        "all_stores_evs": round(rows / (done - began)),
        "per_worker": per_worker,
        "cpu_s": {k: round(max(v, 0.0), 3) for k, v in cpu_s.items()},
        "load_average": loadavg(),
    }


def _stop_all(children: list[Child], timeout: float = 15.0) -> list[int]:
    """Ctrl-C every worker at once (four shutdowns one after the other take a minute)."""
    for c in children:
        if c.alive():
            with contextlib.suppress(ProcessLookupError):
                c.proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + timeout
    for c in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            c.proc.wait(max(0.1, deadline - time.monotonic()))
    return [c.stop(timeout=1) for c in children]  # kills what is left, closes the logs


def measure(
    stack: Stack,
    messages: list[tuple[int, bytes | None, bytes, int]],
    n: int,
    partitions: int,
    workers: int,
    workdir: Path,
    progress: Progress,
    max_seconds: float,
) -> dict[str, Any]:
    """W workers in one group on a fresh topic; from the first message sent to N rows."""
    t = tag()
    db = f"bench_scale_{t}"
    postgres_url = stack.postgres_db(db)
    clickhouse_url = stack.clickhouse_db(db)
    redis_url = stack.redis_db()
    topic = f"bench-scale-{partitions}p-{workers}w-{t}"
    dead_letter = f"{topic}-dead-letter"
    bootstrap = stack.kafka.bootstrap
    asyncio.run(ensure_topics(bootstrap, [TopicSpec(topic, partitions), TopicSpec(dead_letter, 1)]))
    workdir.mkdir(parents=True, exist_ok=True)
    children: list[Child] = []
    result: dict[str, Any] = {"partitions": partitions, "workers": workers, "events": n}
    try:
        for i in range(workers):
            env = child_env(
                FOOTPRINT_KAFKA_URL=stack.kafka.url,
                FOOTPRINT_POSTGRES_URL=postgres_url,
                FOOTPRINT_CLICKHOUSE_URL=clickhouse_url,
                FOOTPRINT_REDIS_URL=redis_url,
                FOOTPRINT_FOOTPRINTS_TOPIC=topic,
                FOOTPRINT_DEAD_LETTER_TOPIC=dead_letter,
                FOOTPRINT_APP_ID=f"bench-scale-{t}",  # one app id: one consumer group
                FOOTPRINT_PARTITIONS=str(partitions),  # Faust's tables follow the topic
                FOOTPRINT_DATA_DIR=str(workdir / f"data-{t}-{i}"),
                FOOTPRINT_WORKER_WEB_PORT=str(free_port()),
            )
            argv = [bin_path("faust"), "-A", "streams.app", "worker", "-l", "info"]
            children.append(Child(argv, workdir / f"worker-{t}-{i}.log", env=env, cwd=workdir))
        states = _wait_settled(children, topic, partitions, progress)
        result["assignments"] = [sorted(s.partitions) for s in states]
        from footprint.clickhouse import connect

        clickhouse = connect(clickhouse_url)
        live = redis.Redis.from_url(redis_url)
        try:
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                result.update(
                    _timed(conn, clickhouse, live, stack, children, messages, topic, n, max_seconds)
                )
        finally:
            clickhouse.close()
            live.close()
        # Checks: the heartbeats (each worker's share), ClickHouse and Redis all agree on N.
        beats = _heartbeats(redis_url)
        wait_until = time.monotonic() + (15 if result["stored"] >= n else 0)
        while sum(int(b.get("processed", 0)) for b in beats.values()) < n:
            if time.monotonic() > wait_until:
                break
            time.sleep(0.5)
            beats = _heartbeats(redis_url)
        for w in result["per_worker"]:
            w["processed"] = int(beats.get(w["pid"], {}).get("processed", 0))
        result["heartbeat_processed"] = sum(w["processed"] for w in result["per_worker"])
        result["redis_1m_total"] = _redis_minute_total(redis_url)
        client = connect(clickhouse_url)
        try:
            result["clickhouse_rows"] = int(
                client.execute("SELECT count() FROM user_footprint FINAL")[0][0]
            )
        finally:
            client.close()
    finally:
        result["exit_codes"] = _stop_all(children)
        stack.drop_postgres_db(db)
        stack.drop_clickhouse_db(db)
    return result


# --------------------------------------------------------------------------- the benchmark


def run(stack: Stack, size: str, out: Output, workdir: Path) -> dict[str, Any]:
    """Run the scaling benchmark; print and return its figures."""
    from bench.scale_report import check, ratios

    progress = Progress("scale")
    n = SIZES[size]
    runs: list[dict[str, Any]] = []
    produced: dict[str, Any] = {}
    for partitions, worker_counts in PLANS[size].items():
        source, items = prepare(stack, "bench-scale-source", n, progress, partitions=partitions)
        made = asyncio.run(produce(stack.kafka.bootstrap, source, items, partitions))
        del items
        produced[str(partitions)] = made
        progress(
            f"{partitions} partitions: produced {n:,} footprints in {made['messages']:,} "
            f"messages at {made['events_per_s']:,}/s, split {made['partitions']}"
        )
        messages = asyncio.run(
            read_messages(stack.kafka.bootstrap, source, partitions, made["messages"])
        )
        for workers in worker_counts:
            progress(f"{partitions} partitions, {workers} worker(s): starting")
            r = measure(
                stack, messages, n, partitions, workers, workdir, progress, MAX_SECONDS[size]
            )
            runs.append(r)
            cpu = ", ".join(
                f"{w['cpu_percent']}% (wait {w['runqueue_wait_percent']}%, "
                f"{w['processed']:,} footprints)"
                for w in r["per_worker"]
            )
            progress(
                f"{partitions} partitions, {workers} worker(s): {r['events_per_s']:,}/s "
                f"({r['stored']:,} rows in {r['seconds']}s, copy {r['copy_s']}s); workers {cpu}; "
                f"load average {r['load_average']}"
            )
    data: dict[str, Any] = {
        "size": size,
        "events": n,
        "nproc": os.cpu_count(),
        "plan": {str(p): list(w) for p, w in PLANS[size].items()},
        "produced": produced,
        "runs": runs,
        "command": stack.command("scale", size),
    }
    data["ratios"] = ratios(runs)
    data["problems"] = check(runs)
    if data["problems"]:
        progress("stores not exact: " + "; ".join(data["problems"]))
    figures: dict[str, Any] = {"nproc": data["nproc"]}
    for r in runs:
        key = f"p{r['partitions']}w{r['workers']}"
        figures[f"{key}_evs"] = r["events_per_s"]
        figures[f"{key}_ratio"] = data["ratios"][str(r["partitions"])][str(r["workers"])]
    figures["load_average"] = loadavg()
    figures["exact"] = int(not data["problems"])
    result = out.publish("scale", data, figures)
    if data["problems"]:
        raise RuntimeError("a scaling figure over wrong counts: " + "; ".join(data["problems"]))
    return result
