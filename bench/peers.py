"""Peers in the same run: what a user choosing a framework compares Footprint with.

On the same servers and the same topic of N footprints, one per message (the reference site's
shape: no packs), keyed by link, Kafka timestamp = when sent, each in its own consumer group
from the earliest offset and timed from its first record to its last:

1. *raw*: ``bench.worker.raw_consume`` (``getmany`` + ``json.loads`` + a dict count), the limit;
   run before and after the others, the ratios use the mean of both.
2. *reference*: the reference site's consumer: confluent-kafka ``Consumer.poll``, ``json.loads``,
   one ``INSERT INTO user_footprint … VALUES …`` and ``conn.commit()`` per message (psycopg).
3. *Quix Streams*: an application doing Footprint's job: a 1-minute tumbling count per link
   (``.current()``, the live figure) and Quix's ``PostgreSQLSink`` writing the footprints to
   ``user_footprint``; also window only and sink only (``bench/quix_app.py``, in its own
   virtual environment: see ``bench/requirements-quix.txt``). Every window count is checked
   against a count of the produced footprints, and the sink's rows against N.
4. *worker*: the Footprint worker (``bench.worker.run_worker``), timed from ready until
   PostgreSQL holds N rows, with its ClickHouse, Redis and heartbeat cross-checks. At small and
   full size it also runs on the same footprints produced as the API sends them (packs), for
   comparison with the worker benchmark; the ratios use the single-message topic.
5. *Faust's intake alone* (``bench.worker.run_intake``): the worker's app, topic settings and
   batches with an agent that only takes them (``bench/intake_app.py``), timed like the worker
   from ready: what Faust's per-message path costs, the ceiling of any pass over the topic.

Run: ``python -m bench peers [--size tiny|small|full] [--broker kafka]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from psycopg.types.json import Jsonb

from bench.common import (
    ROOT,
    Child,
    CpuWindow,
    Output,
    Progress,
    Stack,
    loadavg,
    tag,
)
from bench.worker import (
    PARTITIONS,
    partition_split,
    prepare,
    produce,
    raw_consume,
    raw_mean,
    run_intake,
    run_worker,
)
from footprint.kafka_admin import TopicSpec, ensure_topics
from footprint.records import Record, to_record
from footprint.schema import FIELDS, Footprint

__all__ = ["run"]

SIZES = {"tiny": 300, "small": 20_000, "full": 100_000}
# A peer that stores far below the others would take many minutes: bounded, then it fails
# (the in-process peers) or its rate is taken over what it stored (the worker, said so).
MAX_SECONDS = {"tiny": 60.0, "small": 180.0, "full": 600.0}
# Goals of issue 13 for later work, shown beside the measured ratios.
GOALS = {"raw": 0.25, "quix": 3.0, "reference": 5.0}
# librdkafka consumers join a group on Tansu only after about half of session.timeout.ms (23 s at
# the 45 s default): the smallest timeout Apache Kafka accepts keeps the wait to seconds. The
# wait is before the first record, so it is not in any figure.
_LIBRDKAFKA_GROUP = {"session.timeout.ms": 6000}
# Quix Streams copies the input topic's retention into its changelog topics and fails with
# KeyError 'retention.ms' when the broker does not report it (Tansu reports only explicit
# configs): the topic is created with both set, to their usual values.
# The batch size of the worker's second run on the same topic: its default before batches were
# bounded in bytes too (the default is now 20,000 messages).
OTHER_BATCH = 2_000
_TOPIC_CONFIG = {"retention.ms": "604800000", "retention.bytes": "-1"}


# --------------------------------------------------------------------------- producing


async def produce_single(
    bootstrap: str, topic: str, items: list[Footprint]
) -> tuple[dict[str, Any], list[Record]]:
    """One footprint per message, keyed by link, as the API's producer makes each record
    (``to_record``: the Kafka timestamp is when it is sent); the figures and the records sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    began = time.perf_counter()
    records: list[Record] = []
    try:
        pending = []
        for fp in items:
            record = to_record(fp)
            key, value, ts, _ = record
            records.append(record)
            pending.append(await producer.send(topic, value, key=key, timestamp_ms=ts))
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - began
    finally:
        await producer.stop()
    return {
        "events": len(items),
        "messages": len(items),
        "seconds": round(elapsed, 3),
        "events_per_s": round(len(items) / elapsed),
        "partitions": partition_split(items),
    }, records


def expected_windows(items: list[Footprint], records: list[Record]) -> Counter[tuple[str, int]]:
    """Footprints per (link, 1-minute window start in ms) by the Kafka timestamp each was sent
    with: Quix Streams windows by it (the records of a run can straddle a minute)."""
    return Counter(
        (fp.link, ts // 60_000 * 60_000) for fp, (_, _, ts, _) in zip(items, records, strict=True)
    )


# --------------------------------------------------------------------------- the reference site


def reference_consume(
    bootstrap: str, postgres_url: str, topic: str, n: int, timeout: float
) -> dict[str, Any]:
    """confluent-kafka poll, json.loads, one INSERT and commit per message (the reference site)."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-reference-{tag()}",
            "auto.offset.reset": "earliest",
            **_LIBRDKAFKA_GROUP,
        }
    )
    columns = ", ".join(FIELDS)
    insert = f"INSERT INTO user_footprint ({columns}) VALUES ({', '.join(['%s'] * len(FIELDS))})"
    total = 0
    first: float | None = None
    cpu: CpuWindow | None = None
    try:
        with psycopg.connect(postgres_url) as conn:
            consumer.subscribe([topic])
            deadline = time.monotonic() + timeout
            while total < n and time.monotonic() < deadline:
                msg = consumer.poll(1.0)
                if msg is None:
                    continue
                if msg.error():
                    raise RuntimeError(f"reference consumer: {msg.error()}")
                if first is None:
                    first = time.perf_counter()
                    cpu = CpuWindow(os.getpid())
                data = json.loads(msg.value() or b"")  # no tombstones on this topic
                values = [data.get(c) for c in FIELDS]
                conn.execute(insert, [Jsonb(v) if isinstance(v, dict) else v for v in values])
                conn.commit()
                total += 1
            last = time.perf_counter()
            usage = cpu.result() if cpu else {}
            row = conn.execute("SELECT count(*) FROM user_footprint").fetchone()
            stored = int(row[0]) if row else 0
    finally:
        consumer.close()
    if total < n or first is None:
        raise RuntimeError(f"reference consumer stored {total} of {n} within {timeout:.0f}s")
    if stored != n:
        raise RuntimeError(f"reference consumer: {stored} rows in PostgreSQL for {n} footprints")
    elapsed = last - first
    return {
        "events": total,
        "stored": stored,
        "seconds": round(elapsed, 3),
        "events_per_s": round(total / elapsed),
        "load_average": loadavg(),
        **usage,
    }


# --------------------------------------------------------------------------- Quix Streams


QUIX_VENV = ROOT / ".venv-quix"
QUIX_REQUIREMENTS = ROOT / "bench" / "requirements-quix.txt"


def quix_python(progress: Progress) -> Path:
    """The interpreter of Quix Streams' own virtual environment, created on first use."""
    python = QUIX_VENV / "bin" / "python"
    stamp = QUIX_VENV / ".installed"
    if stamp.exists() and stamp.stat().st_mtime >= QUIX_REQUIREMENTS.stat().st_mtime:
        return python
    progress(f"installing Quix Streams into {QUIX_VENV} (once)")
    subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(QUIX_REQUIREMENTS)], check=True
    )
    stamp.touch()
    return python


def quix_run(
    python: Path,
    bootstrap: str,
    postgres_url: str | None,
    topic: str,
    expected: Counter[tuple[str, int]],
    workdir: Path,
    *,
    window: bool,
    timeout: float,
) -> dict[str, Any]:
    """``bench/quix_app.py`` on ``topic``: the 1-minute count per link (``window``) and/or its
    PostgreSQLSink writing the footprints (``postgres_url``); checked, then timed from the
    first record to the last processed (window only) or stored (with the sink)."""
    n = sum(expected.values())
    t = tag()
    postgres = None
    if postgres_url is not None:
        info = psycopg.conninfo.conninfo_to_dict(postgres_url)
        postgres = {
            "host": info["host"],
            "port": int(info.get("port") or 5432),
            "dbname": info["dbname"],
            "user": info["user"],
            "password": info.get("password") or "",
        }
    config = workdir / f"quix-{t}.json"
    config.write_text(
        json.dumps(
            {
                "bootstrap": bootstrap,
                "topic": topic,
                "events": n,
                "group": f"bench-quix-{t}",
                "state_dir": str(workdir / f"quix-state-{t}"),
                "timeout": timeout,
                "window": window,
                "postgres": postgres,
                "consumer": _LIBRDKAFKA_GROUP,
            }
        )
    )
    answer = workdir / f"quix-{t}.result.json"
    app = Child(
        # -I: the script's folder (bench/, with a profile.py) must not shadow the stdlib.
        [str(python), "-I", str(ROOT / "bench" / "quix_app.py"), str(config), str(answer)],
        workdir / f"quix-{t}.log",
    )
    began = time.monotonic()
    try:
        # A stalled app stops itself after ``timeout`` without records; this bounds the rest.
        app.proc.wait(timeout + 120)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"Quix Streams did not finish:\n{app.tail()}") from None
    finally:
        code = app.stop()
    if code != 0 or not answer.exists():
        raise RuntimeError(f"Quix Streams exited with {code}:\n{app.tail()}")
    r = json.loads(answer.read_text())
    if r["seen"] < n or r["first"] is None:
        raise RuntimeError(f"Quix Streams read {r['seen']} of {n} within {timeout:.0f}s")
    result: dict[str, Any] = {"events": r["seen"], "run_s": round(time.monotonic() - began, 2)}
    ends: list[tuple[float, float]] = []
    if window:
        counts = Counter({
            (key, int(start)): v
            for k, v in r["counts"].items()
            for key, start in [k.split("\t")]
        })  # fmt: skip
        if counts != expected:
            wrong = {k: (counts.get(k), v) for k, v in expected.items() if counts.get(k) != v}
            raise RuntimeError(
                f"Quix Streams' window counts differ (got, want), {len(wrong)} windows: "
                f"{dict(list(wrong.items())[:5])}; {len(counts)} windows for {len(expected)}"
            )
        result.update(windows=len(counts), window_total=sum(counts.values()))
        ends.append((r["last_window"], r["cpu_at_window"]))
    if postgres_url is not None:
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute("SELECT count(*) FROM user_footprint").fetchone()
        stored = int(row[0]) if row else 0
        if stored != n or r["last_write"] is None:
            raise RuntimeError(f"Quix Streams' sink: {stored} rows in PostgreSQL for {n}")
        result["stored"] = stored
        ends.append((r["last_write"], r["cpu_at_write"]))
    last, cpu_last = max(ends)
    elapsed = last - r["first"]
    result.update(
        seconds=round(elapsed, 3),
        events_per_s=round(n / elapsed),
        # From the first record to run() returning: adds the last checkpoint and closing.
        with_shutdown_s=round(r["returned"] - r["first"], 3),
        cpu_percent=round(100 * (cpu_last - r["cpu_first"]) / elapsed, 1),
        load_average=loadavg(),
        log=str(app.log),
    )
    return result


# --------------------------------------------------------------------------- the benchmark


def _versions(quix: Path) -> dict[str, str]:
    """The peers' client versions: the reference consumer's here, Quix's in its venv."""
    from confluent_kafka import libversion

    out = {name: metadata.version(name) for name in ("confluent-kafka", "aiokafka")}
    out["librdkafka"] = libversion()[0]
    probe = (
        "import importlib.metadata as m, confluent_kafka as c; "
        "print(m.version('quixstreams'), m.version('confluent-kafka'), c.libversion()[0])"
    )
    found = subprocess.run([str(quix), "-c", probe], capture_output=True, text=True, check=True)
    out["quixstreams"], out["quix_confluent-kafka"], out["quix_librdkafka"] = found.stdout.split()
    return out


def run(stack: Stack, size: str, out: Output, workdir: Path) -> dict[str, Any]:
    """Run the peers benchmark; print and return its figures."""
    progress = Progress("peers")
    n = SIZES[size]
    limit = MAX_SECONDS[size]
    bootstrap = stack.kafka.bootstrap
    workdir.mkdir(parents=True, exist_ok=True)
    topic, items = prepare(stack, "bench-peers", n, progress, config=_TOPIC_CONFIG)
    produced, records = asyncio.run(produce_single(bootstrap, topic, items))
    expected = expected_windows(items, records)
    progress(
        f"produced {n:,} footprints to {topic}, one per message, at "
        f"{produced['events_per_s']:,}/s, partitions {produced['partitions']}"
    )

    raw_before = asyncio.run(raw_consume(bootstrap, topic, n, timeout=limit))
    progress(f"raw consumer: {raw_before['events_per_s']:,}/s")

    def database(name: str) -> tuple[str, str]:
        db = f"bench_{name}_{tag()}"
        return db, stack.postgres_db(db)

    db, url = database("reference")
    try:
        progress("reference consumer (confluent-kafka, one INSERT and commit per message)")
        reference = reference_consume(bootstrap, url, topic, n, timeout=limit)
    finally:
        stack.drop_postgres_db(db)
    progress(f"reference consumer: {reference['events_per_s']:,}/s")

    python = quix_python(progress)
    quix: dict[str, dict[str, Any]] = {}
    variants = [("window_and_sink", True, True), ("window", True, False)]
    if size != "tiny":  # the smoke test covers the sink with the window, in less time
        variants.append(("sink", False, True))
    for name, window, sink in variants:
        db, url = database("quix")
        try:
            progress(f"Quix Streams: {name.replace('_and_', ' + ')}")
            quix[name] = quix_run(
                python, bootstrap, url if sink else None, topic, expected, workdir,
                window=window, timeout=limit,
            )  # fmt: skip
        finally:
            stack.drop_postgres_db(db)
        progress(f"Quix Streams {name}: {quix[name]['events_per_s']:,}/s")

    progress("starting the Faust worker on the same topic (group join takes a few seconds)")
    worker = run_worker(stack, topic, n, workdir, progress, max_seconds=limit)
    progress(f"worker: {worker['events_per_s']:,}/s ({worker['stored']:,} rows)")
    # What Faust's per-message path alone takes from this topic: the ceiling of any pass.
    progress("Faust's intake alone: the worker's app and batches, no pass")
    intake = run_intake(stack, topic, n, workdir, progress)
    progress(f"Faust's intake alone: {intake['events_per_s']:,}/s")

    packed: dict[str, Any] | None = None
    other: dict[str, Any] | None = None
    if size != "tiny":
        # Every pass pays per table key and per store round trip: with one footprint per
        # message, smaller batches spread that over fewer footprints (not in the ratios).
        progress(f"the worker again with FOOTPRINT_BATCH_SIZE={OTHER_BATCH}")
        other = run_worker(
            stack, topic, n, workdir, progress, max_seconds=limit,
            extra_env={"FOOTPRINT_BATCH_SIZE": str(OTHER_BATCH)},
        )  # fmt: skip
        other["batch_size"] = OTHER_BATCH
        progress(f"worker with batches of {OTHER_BATCH:,}: {other['events_per_s']:,}/s")
        packs_topic = f"bench-peers-packs-{tag()}"
        asyncio.run(ensure_topics(bootstrap, [TopicSpec(packs_topic, PARTITIONS)]))
        packed_produced = asyncio.run(produce(bootstrap, packs_topic, items))
        progress(f"the worker again on packs ({packed_produced['messages']:,} messages)")
        packed = run_worker(stack, packs_topic, n, workdir, progress, max_seconds=limit)
        packed["messages"] = packed_produced["messages"]
        progress(f"worker on packs: {packed['events_per_s']:,}/s")

    raw_after = asyncio.run(raw_consume(bootstrap, topic, n, timeout=limit))
    progress(f"raw consumer again: {raw_after['events_per_s']:,}/s")
    raw = raw_mean(raw_before, raw_after)

    w = worker["events_per_s"]
    ratios = {
        "worker_vs_raw": round(w / raw["events_per_s"], 4),
        "worker_vs_quix": round(w / quix["window_and_sink"]["events_per_s"], 3),
        "worker_vs_quix_window": round(w / quix["window"]["events_per_s"], 3),
        "worker_vs_reference": round(w / reference["events_per_s"], 3),
    }
    data = {
        "size": size,
        "events": n,
        "partitions": PARTITIONS,
        "links": len({fp.link for fp in items}),
        "windows": len(expected),
        "produced": produced,
        "raw": raw,
        "reference": reference,
        "quix": quix,
        "worker": worker,
        "faust_intake": intake,
        "worker_packs": packed,
        "worker_other_batches": other,
        "ratios": ratios,
        "goals": GOALS,
        "versions": _versions(python),
        "command": stack.command("peers", size),
    }
    return out.publish(
        "peers",
        data,
        {
            **ratios,
            "worker_evs": w,
            "raw_evs": raw["events_per_s"],
            "quix_evs": quix["window_and_sink"]["events_per_s"],
            "reference_evs": reference["events_per_s"],
            "intake_evs": intake["events_per_s"],
        },
    )
