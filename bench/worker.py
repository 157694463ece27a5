"""Worker throughput: the real Faust worker vs a raw aiokafka consumer on the same topic.

1. N footprints are produced to a fresh 4-partition topic through the API's producer (packs of
   one partition's footprints per message, as the API sends them), partitioned by
   link, JSON from ``Footprint.to_bytes()``, Kafka timestamp = when sent (as the API sets it).
2. *raw*: ``AIOKafkaConsumer.getmany`` + ``json.loads`` + a dict count over that topic, timed from
   the first record to the N-th.
3. *worker*: ``faust -A streams.app worker -l info`` in a subprocess with its own app id,
   PostgreSQL and ClickHouse (18.16 server) databases and Redis db, reading the same topic from
   the start; timed from the first batch stored in PostgreSQL until PostgreSQL holds N rows
   (or for at most a few minutes, a rate over the rows stored by then).
   Then the raw consumer reads the topic again: the ratio uses the mean of both raw runs.
4. At small and full size, a second worker run with py-spy attached for the profile (its own
   figure is reported separately: sampling slows the process a little).
5. Per-event costs of each step in isolation (decode, counting plan, every sink at the worker's
   batch size), to show where the worker's time budget goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from bench.common import (
    ROOT,
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
from bench.profile import Recorder, summarize
from bench.traffic import footprints
from footprint import schema, wire
from footprint.kafka_admin import TopicSpec, ensure_topics, true_end_offsets
from footprint.producer import FootprintProducer
from footprint.schema import Footprint, pack
from footprint.settings import Settings
from footprint.stack import free_port

__all__ = ["run"]

SIZES = {"tiny": 2_000, "small": 20_000, "full": 100_000}
# A worker far below the goal would take many minutes to store every footprint: past this many
# seconds of measuring, the rate is taken over what it stored so far (and said so).
MAX_SECONDS = {"tiny": 60.0, "small": 90.0, "full": 240.0}
PROFILE_SECONDS = {"tiny": 20.0, "small": 45.0, "full": 90.0}
MICRO_SIZES = {"tiny": 4_000, "small": 20_000, "full": 40_000}
PARTITIONS = 4


# --------------------------------------------------------------------------- the common setup


def prepare(
    stack: Stack,
    name: str,
    n: int,
    progress: Progress,
    config: dict[str, str] | None = None,
    partitions: int = PARTITIONS,
) -> tuple[str, list[Footprint]]:
    """Every server up (before anything is timed), a fresh topic and ``n`` footprints."""
    _ = stack.postgres, stack.redis, stack.clickhouse
    topic = f"{name}-{tag()}"
    spec = TopicSpec(topic, partitions, config=config or {})
    asyncio.run(ensure_topics(stack.kafka.bootstrap, [spec]))
    progress(f"building {n:,} footprints")
    return topic, footprints(n, end=time.time())


def partition_split(items: list[Footprint], partitions: int = PARTITIONS) -> dict[str, int]:
    """Footprints per partition, as a producer keyed by link spreads them (murmur2)."""
    every = list(range(partitions))
    partitioner = DefaultPartitioner()
    split = Counter(partitioner(fp.link.encode(), every, every) for fp in items)
    return {str(p): split[p] for p in sorted(split)}


def raw_mean(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The raw consumer's two runs (before and after the others) and their mean."""
    return {
        "events_per_s": round((before["events_per_s"] + after["events_per_s"]) / 2),
        "seconds": round((before["seconds"] + after["seconds"]) / 2, 3),
        "before": before,
        "after": after,
    }


# --------------------------------------------------------------------------- producing


async def produce(
    bootstrap: str, topic: str, items: list[Footprint], partitions: int = PARTITIONS
) -> dict[str, Any]:
    """Send every footprint through the API's producer (packed per partition, as the API
    sends them); return the rate, the partition split and the number of messages."""
    producer = FootprintProducer(bootstrap, topic, partitions=partitions, max_buffer=len(items))
    every = list(range(partitions))
    began = time.perf_counter()
    await producer.start()
    try:
        for fp in items:
            producer.offer(fp)
        if not await producer.flush(timeout=300):
            raise RuntimeError(f"producer could not deliver: {producer.stats}")
        elapsed = time.perf_counter() - began
    finally:
        await producer.stop()
    return {
        "events": len(items),
        "seconds": round(elapsed, 3),
        "events_per_s": round(len(items) / elapsed),
        "partitions": partition_split(items, partitions),
        "messages": sum(
            (await true_end_offsets(bootstrap, [TopicPartition(topic, p) for p in every])).values()
        ),
    }


# --------------------------------------------------------------------------- raw consumer


async def raw_consume(bootstrap: str, topic: str, n: int, timeout: float) -> dict[str, Any]:
    """getmany + json.loads + count per link, from the first record to the n-th."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    counts: dict[str, int] = {}
    total = 0
    first: float | None = None
    cpu: CpuWindow | None = None
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout
        while total < n and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                if first is None:
                    first = time.perf_counter()
                    cpu = CpuWindow(os.getpid())
                for record in records:
                    value = json.loads(record.value)
                    # A value may pack several footprints (a producer design choice).
                    for fp in value if isinstance(value, list) else (value,):
                        link = fp["link"]
                        counts[link] = counts.get(link, 0) + 1
                        total += 1
        last = time.perf_counter()
        usage = cpu.result() if cpu else {}
    finally:
        await consumer.stop()
    if total < n or first is None:
        raise RuntimeError(f"raw consumer read {total} of {n} footprints within {timeout:.0f}s")
    elapsed = last - first
    return {
        "events": total,
        "seconds": round(elapsed, 3),
        "events_per_s": round(total / elapsed),
        "links": len(counts),
        "load_average": loadavg(),
        **usage,
    }


# --------------------------------------------------------------------------- the real worker


def _heartbeat(redis_url: str) -> dict[str, int]:
    """The worker heartbeats' ``processed`` and ``batches``, summed over workers."""
    client = redis.Redis.from_url(redis_url)
    try:
        total = {"processed": 0, "batches": 0}
        for key in client.scan_iter("footprint:worker:*"):
            raw = client.get(key)
            if raw:
                beat = json.loads(raw)
                for name in total:
                    total[name] += int(beat.get(name, 0) or 0)
        return total
    finally:
        client.close()


def _redis_minute_total(redis_url: str) -> int:
    """Sum of every 1-minute window's site-wide totals: each event is in exactly one."""
    client = redis.Redis.from_url(redis_url)
    try:
        total = 0
        for key in client.scan_iter("footprint:live:1m:*:totals"):
            total += sum(int(v) for v in client.hvals(key))
        return total
    finally:
        client.close()


def faust_worker_argv(app: str) -> list[str]:
    """``faust -A <app> worker`` as the benchmarks run it, on a free web port."""
    return [
        bin_path("faust"),
        "-A",
        app,
        "worker",
        # -l info, as docker-compose runs it. Not warn or error: then Faust's worker sets the
        # root logger to DEBUG for its terminal spinner (faust/worker.py,
        # _setup_spinner_handler) and every aiokafka/Faust debug record gets built (~12 % of
        # the worker's time in a profile taken with -l warn).
        "-l",
        "info",
        "--web-port",
        str(free_port()),
    ]


def run_worker(
    stack: Stack,
    topic: str,
    n: int,
    workdir: Path,
    progress: Progress,
    *,
    profile_to: Path | None = None,
    max_seconds: float = 600.0,
    timeout: float = 120.0,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Start a worker on ``topic`` with fresh stores; time it until PostgreSQL holds n rows.

    Measuring stops after ``max_seconds`` from the first stored batch even if fewer rows are
    there; ``timeout`` bounds the wait for that first batch.
    """
    t = tag()
    db = f"bench_worker_{t}"
    postgres_url = stack.postgres_db(db)
    clickhouse_url = stack.clickhouse_db(db)
    redis_url = stack.redis_db()
    app_id = f"bench-worker-{t}"
    dead_letter = f"{topic}-dead-letter-{t}"
    asyncio.run(ensure_topics(stack.kafka.bootstrap, [TopicSpec(dead_letter, 1)]))
    env = child_env(
        FOOTPRINT_KAFKA_URL=stack.kafka.url,
        FOOTPRINT_POSTGRES_URL=postgres_url,
        FOOTPRINT_CLICKHOUSE_URL=clickhouse_url,
        FOOTPRINT_REDIS_URL=redis_url,
        FOOTPRINT_FOOTPRINTS_TOPIC=topic,
        FOOTPRINT_DEAD_LETTER_TOPIC=dead_letter,
        FOOTPRINT_APP_ID=app_id,
        FOOTPRINT_PARTITIONS=str(PARTITIONS),
        FOOTPRINT_DATA_DIR=str(workdir / f"data-{t}"),
        **(extra_env or {}),
    )
    argv = faust_worker_argv("streams.app")
    workdir.mkdir(parents=True, exist_ok=True)
    launched = time.perf_counter()
    # cwd: Faust keeps a "<app id>-data" directory in the working directory.
    worker = Child(argv, workdir / f"worker-{t}.log", env=env, cwd=workdir)
    recorder: Recorder | None = None
    recorded: tuple[float, int] | None = None
    result: dict[str, Any] = {"app_id": app_id, "log": str(worker.log)}
    try:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            first_at: float | None = None
            first_rows = 0
            last_report = 0.0
            rows = 0
            deadline = time.monotonic() + timeout
            cpu: CpuWindow | None = None
            ready_at: float | None = None
            # The worker's resident memory, sampled with every poll (50 ms): its peak.
            memory = psutil.Process(worker.pid)
            peak_rss = 0
            while True:
                if not worker.alive():
                    raise RuntimeError(f"the worker exited:\n{worker.tail()}")
                with contextlib.suppress(psutil.Error):
                    peak_rss = max(peak_rss, memory.memory_info().rss)
                now = time.perf_counter()
                if ready_at is None and "Worker ready" in worker.log.read_text(errors="replace"):
                    # From here the worker fetches: packs make its first batch most of the
                    # topic, so the measure starts when it can read, not at its first batch.
                    ready_at = now
                    deadline = time.monotonic() + max_seconds
                    cpu = CpuWindow(worker.pid)
                    result["startup_s"] = round(now - launched, 2)
                    progress(f"worker ready after {now - launched:.1f}s")
                    if profile_to is not None:
                        recorder = Recorder(worker.pid, profile_to)
                row = conn.execute("SELECT count(*) FROM user_footprint").fetchone()
                rows = int(row[0]) if row else 0
                now = time.perf_counter()
                if rows and first_at is None:
                    first_at, first_rows = now, rows
                    progress(f"worker stored its first batch ({rows:,} rows) after "
                             f"{now - launched:.1f}s")  # fmt: skip
                if rows >= n:
                    break
                if now - last_report >= 5:
                    last_report = now
                    if ready_at is not None:
                        rate = rows / max(now - ready_at, 1e-9)
                        progress(f"worker: {rows:,}/{n:,} rows in PostgreSQL ({rate:,.0f}/s)")
                if time.monotonic() > deadline:
                    if first_at is None:
                        raise TimeoutError(f"the worker stored nothing within {timeout:.0f}s")
                    progress(f"stopping the measure after {max_seconds:.0f}s at {rows:,} rows")
                    break
                time.sleep(0.05)
            done = time.perf_counter()
            result["peak_rss_mb"] = round(peak_rss / 2**20, 1)
            result.update(cpu.result() if cpu else {})
            result["load_average"] = loadavg()
        if recorder is not None:
            recorder.stop()
            recorded = (recorder.seconds, recorder.rate)
            recorder = None
        if recorded is not None:
            result["profile_seconds"], result["profile_rate"] = recorded
        assert first_at is not None and ready_at is not None
        elapsed = done - ready_at
        result.update(
            events=n,
            stored=rows,
            capped=rows < n,
            first_batch_rows=first_rows,
            first_batch_after_ready_s=round(first_at - ready_at, 3),
            seconds=round(elapsed, 3),
            events_per_s=round(rows / elapsed) if elapsed > 0 else None,
            end_to_end_s=round(done - launched, 2),
        )
        # Cross-checks: every store and the heartbeat agree on N (when all were stored).
        deadline = time.monotonic() + (15 if rows >= n else 0)
        beat = _heartbeat(redis_url)
        while time.monotonic() < deadline and beat["processed"] < n:
            time.sleep(0.5)
            beat = _heartbeat(redis_url)
        result["heartbeat_processed"] = beat["processed"]
        # How full the agent's batches really were (FOOTPRINT_BATCH_SIZE is the ceiling).
        if beat["batches"]:
            result["mean_batch"] = round(beat["processed"] / beat["batches"], 1)
        result["redis_1m_total"] = _redis_minute_total(redis_url)
        from footprint.clickhouse import connect

        client = connect(clickhouse_url)
        try:
            result["clickhouse_rows"] = int(
                client.execute("SELECT count() FROM user_footprint FINAL")[0][0]
            )
        finally:
            client.close()
    finally:
        if recorder is not None:
            recorder.stop()
        code = worker.stop(timeout=15)  # measured already: a slow shutdown is not a result
        result["exit_code"] = code
        stack.drop_postgres_db(db)
        stack.drop_clickhouse_db(db)
    return result


def run_intake(
    stack: Stack, topic: str, n: int, workdir: Path, progress: Progress, timeout: float = 120.0
) -> dict[str, Any]:
    """Faust's intake alone on ``topic`` (``bench/intake_app.py``): the worker's app and batches
    with no pass, timed like the worker from ready, and from its first batch, to n events."""
    t = tag()
    out = workdir / f"intake-{t}.json"
    env = child_env(
        FOOTPRINT_KAFKA_URL=stack.kafka.url,
        FOOTPRINT_FOOTPRINTS_TOPIC=topic,
        FOOTPRINT_APP_ID=f"bench-intake-{t}",
        FOOTPRINT_PARTITIONS=str(PARTITIONS),
        FOOTPRINT_DATA_DIR=str(workdir / f"data-{t}"),
        FOOTPRINT_BENCH_INTAKE_N=str(n),
        FOOTPRINT_BENCH_INTAKE_OUT=str(out),
        PYTHONPATH=str(ROOT),  # bench/ is not an installed package
    )
    argv = faust_worker_argv("bench.intake_app")
    workdir.mkdir(parents=True, exist_ok=True)
    child = Child(argv, workdir / f"intake-{t}.log", env=env, cwd=workdir)
    try:
        deadline = time.monotonic() + timeout
        ready_at: float | None = None
        cpu: CpuWindow | None = None
        while not out.exists():
            if not child.alive():
                raise RuntimeError(f"the intake app exited:\n{child.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the intake app took fewer than {n:,} events in {timeout}s")
            if ready_at is None and "Worker ready" in child.log.read_text(errors="replace"):
                ready_at, cpu = time.monotonic(), CpuWindow(child.pid)
            time.sleep(0.02)
        result: dict[str, Any] = {**(cpu.result() if cpu else {}), "load_average": loadavg()}
        report = json.loads(out.read_text())
    finally:
        child.stop(timeout=15)
    assert ready_at is not None
    # Both sides read time.monotonic(): one clock for every process of the machine.
    elapsed = report["last"] - ready_at
    batched = report["last"] - report["first"]
    return {
        **result,
        "events": report["events"],
        "batches": report["batches"],
        "seconds": round(elapsed, 3),
        "events_per_s": round(report["events"] / elapsed),
        "from_first_batch_s": round(batched, 3),
        "log": str(child.log),
    }


# --------------------------------------------------------------------------- per-event costs


async def _sink_costs(
    stack: Stack, items: list[Footprint], batch_size: int
) -> dict[str, dict[str, float]]:
    from streams.counting import Item, plan, split_link_key
    from streams.sinks import Batch, WindowCount
    from streams.sinks.clickhouse import ClickHouseSink
    from streams.sinks.postgres import PostgresSink
    from streams.sinks.redis import RedisSink

    t = tag()
    db = f"bench_sinks_{t}"
    sinks = [
        PostgresSink(stack.postgres_db(db)),
        ClickHouseSink(stack.clickhouse_db(db)),
        RedisSink(stack.redis_db()),
    ]
    batches = []
    offset = 0
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        entries = []
        for fp in chunk:
            entries.append(Item(0, offset, fp.link, fp.timestamp, fp.visitor_id))
            offset += 1
        p = plan(entries)
        counts = [
            WindowCount(
                window, r[0], r[1], len(kp.offsets), link=split_link_key(name)[1], partition=0
            )
            for window, group in p.links.items()
            for (name, r), kp in group.items()
        ] + [
            WindowCount(window, r[0], r[1], len(kp.offsets), partition=kp.partition)
            for window, group in p.site.items()
            for (_, r), kp in group.items()
        ]
        batches.append(Batch(footprints=chunk, counts=counts, visitors=p.visitors))
    out: dict[str, dict[str, float]] = {}
    try:
        for sink in sinks:
            await sink.open()
            began = time.perf_counter()
            for batch in batches:
                await sink.write(batch)
            elapsed = time.perf_counter() - began
            out[f"{sink.name} sink write"] = {
                "us_per_event": round(elapsed / len(items) * 1e6, 2),
                "events_per_s": round(len(items) / elapsed),
            }
    finally:
        for sink in sinks:
            await sink.close()
        stack.drop_postgres_db(db)
        stack.drop_clickhouse_db(db)
    return out


def per_event_costs(stack: Stack, n: int, progress: Progress) -> dict[str, dict[str, float]]:
    """Microseconds per event of each step the worker does, measured alone in this process."""
    from streams.counting import Item, plan

    batch_size = int(Settings.model_fields["batch_size"].default)
    items = footprints(n, end=time.time(), seed=7)
    values = [fp.to_bytes() for fp in items]
    costs: dict[str, dict[str, float]] = {}

    def measure(name: str, fn: Any) -> None:
        began = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - began
        costs[name] = {
            "us_per_event": round(elapsed / n * 1e6, 2),
            "events_per_s": round(n / elapsed),
        }

    measure("json.loads", lambda: [json.loads(v) for v in values])
    measure("Footprint.from_bytes (pydantic)", lambda: [Footprint.from_bytes(v) for v in values])
    # What the worker runs: msgspec, pydantic only when in doubt (footprint/wire.py); one
    # footprint per message (a third-party producer's shape) and packs of 500 (the API's).
    measure("wire.unpack, one per message (msgspec)", lambda: [wire.unpack(v) for v in values])
    packs = [pack(values[i : i + 500]) for i in range(0, n, 500)]
    measure("schema.unpack, packs of 500 (pydantic)", lambda: [schema.unpack(p) for p in packs])
    measure("wire.unpack, packs of 500 (msgspec)", lambda: [wire.unpack(p) for p in packs])
    entries = [Item(0, i, fp.link, fp.timestamp, fp.visitor_id) for i, fp in enumerate(items)]

    def plan_batches() -> None:
        for start in range(0, n, batch_size):
            plan(entries[start : start + batch_size])

    measure(f"counting.plan (batches of {batch_size})", plan_batches)
    # Every table key a batch touches is one table write, hence one changelog record.
    keys = [
        sum(len(g) for g in p.links.values()) + sum(len(g) for g in p.site.values())
        for p in (plan(entries[i : i + batch_size]) for i in range(0, n, batch_size))
    ]
    costs["_table_keys_per_batch"] = {
        "us_per_event": round(sum(keys) / len(keys), 1),
        "events_per_s": 0,
    }
    progress(f"measuring each sink alone, batches of {batch_size}")
    costs.update(asyncio.run(_sink_costs(stack, items, batch_size)))
    costs["_batch_size"] = {"us_per_event": float(batch_size), "events_per_s": 0}
    return costs


# --------------------------------------------------------------------------- the benchmark


def _have_py_spy() -> bool:
    try:
        bin_path("py-spy")
    except FileNotFoundError:
        return False
    return True


def run(stack: Stack, size: str, out: Output, workdir: Path) -> dict[str, Any]:
    """Run the worker benchmark; print and return its figures."""
    progress = Progress("worker")
    n = SIZES[size]
    bootstrap = stack.kafka.bootstrap
    topic, items = prepare(stack, "bench-footprints", n, progress)
    produced = asyncio.run(produce(bootstrap, topic, items))
    del items
    progress(
        f"produced {n:,} footprints to {topic} at {produced['events_per_s']:,}/s, "
        f"partitions {produced['partitions']}, {produced['messages']:,} messages"
    )
    raw_before = asyncio.run(raw_consume(bootstrap, topic, n, timeout=120))
    progress(f"raw consumer: {raw_before['events_per_s']:,} events/s ({raw_before['seconds']}s)")

    progress("starting the Faust worker (group join takes a few seconds)")
    worker = run_worker(stack, topic, n, workdir, progress, max_seconds=MAX_SECONDS[size])
    progress(
        f"worker: {worker['events_per_s']:,} events/s ({worker['stored']:,} rows in "
        f"{worker['seconds']}s, {worker.get('cpu_percent')}% of a core)"
    )
    # Read the topic raw again: the machine may have changed under the worker's run.
    raw_after = asyncio.run(raw_consume(bootstrap, topic, n, timeout=120))
    progress(f"raw consumer again: {raw_after['events_per_s']:,} events/s")
    raw = raw_mean(raw_before, raw_after)

    profiled: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    profile_error = None
    if size != "tiny" and not _have_py_spy():
        profile_error = "py-spy is not installed (pip install py-spy): no profile"
        progress(profile_error)
    elif size != "tiny":
        speedscope = out.charts.parent / "profiles" / "worker.speedscope.json"
        speedscope.unlink(missing_ok=True)
        progress("second worker run with py-spy attached")
        profiled = run_worker(
            stack,
            topic,
            n,
            workdir,
            progress,
            profile_to=speedscope,
            max_seconds=PROFILE_SECONDS[size],
        )
        progress(f"worker under py-spy: {profiled['events_per_s']:,} events/s")
        if not speedscope.exists():
            log = speedscope.with_suffix(".log")
            profile_error = "py-spy wrote no profile: " + (
                log.read_text(errors="replace")[-500:] if log.exists() else "no log"
            )
            progress(profile_error)
        else:
            profile = summarize(
                speedscope,
                seconds=profiled.get("profile_seconds", 0.0),
                rate=profiled.get("profile_rate", 100),
            )

    exactly_once: dict[str, Any] | None = None
    if stack.broker == "kafka":
        # The same run with Kafka transactions (Faust's exactly_once), for the comparison with
        # the idempotent design: counts are exact either way (checked below).
        progress("the worker again with processing_guarantee=exactly_once")
        exactly_once = run_worker(
            stack,
            topic,
            n,
            workdir,
            progress,
            max_seconds=MAX_SECONDS[size],
            extra_env={"FOOTPRINT_PROCESSING_GUARANTEE": "exactly_once"},
        )
        progress(f"worker with exactly_once: {exactly_once['events_per_s']:,} events/s")

    progress("per-event costs of each step alone")
    costs = per_event_costs(stack, MICRO_SIZES[size], progress)

    ratio = worker["events_per_s"] / raw["events_per_s"]
    data = {
        "size": size,
        "events": n,
        "partitions": PARTITIONS,
        "links": 200,
        "produced": produced,
        "raw": raw,
        "worker": worker,
        "worker_profiled": profiled,
        "worker_exactly_once": exactly_once,
        "profile": profile,
        "profile_error": profile_error,
        "per_event_costs": costs,
        "ratio": round(ratio, 4),
        "goal_ratio": 0.20,
        "command": stack.command("worker", size),
    }
    return out.publish(
        "worker",
        data,
        {
            "worker_vs_raw_ratio": round(ratio, 4),
            "worker_evs": worker["events_per_s"],
            "raw_evs": raw["events_per_s"],
        },
    )
