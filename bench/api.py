"""Capture overhead: a FastAPI site with Footprint's middleware vs the same site without it.

Both apps run under uvicorn (one process each, uvloop + httptools when installed); load comes
from a separate process (wrk, else ``bench.loadgen``) with real user agents over ~200 links.

* throughput: closed loop, 32 connections, runs in the order plain, tracked, tracked, plain, so
  a drift of the machine during the run weighs on both sides equally; ratio = tracked / plain;
  once with a trivial handler (the worst case: the middleware's cost against almost nothing)
  and once with handlers that wait 2 ms (``await asyncio.sleep(0.002)``, a host app's I/O);
* added latency: one connection (no queueing), p50 and p99 of tracked minus plain;
* added work: the same two sites called in the benchmark's own process, without server or
  network (``bench/api_inprocess.py``): CPU µs per request with and without the middleware;
* broker down: the middleware pointed at a port nothing listens on; every request must still
  succeed. A second run with a 1,000-event memory bound makes the disk spool take the rest;
* delivery: with the broker up, the footprints on the topic are counted against the requests
  served, and with it down, the ones in the spool after shutdown.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.api_inprocess import cost_per_request
from bench.common import (
    ChildExited,
    CpuWindow,
    Output,
    Progress,
    Stack,
    bin_path,
    child_env,
    children,
    loadavg,
    tag,
    uvicorn,
    wait_until,
)
from bench.loadgen import have_wrk, run_load
from bench.profile import Recorder, summarize
from footprint.kafka_admin import true_end_offsets
from footprint.stack import free_port

__all__ = ["run"]

DURATIONS = {"tiny": (1.0, 1.0), "small": (5.0, 2.0), "full": (10.0, 3.0)}  # measure, warm-up
CONNECTIONS = 32
GOAL_RATIO = 0.90  # trivial handler
GOAL_RATIO_IO = 0.97  # handlers waiting 2 ms
IN_PROCESS_REQUESTS = {"tiny": 1_000, "small": 5_000, "full": 10_000}  # per round, 6 rounds


class Server:
    """One uvicorn process serving ``bench.hostapp:<factory>``."""

    def __init__(self, factory: str, env: dict[str, str], workdir: Path, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name
        self.served = 0  # responses counted by the load generator
        self.child = uvicorn(
            f"bench.hostapp:{factory}", self.port, workdir / f"{name}.log", env, factory=True
        )
        wait_until(self._up, timeout=60, what=f"{name} on {self.url}")

    def _up(self) -> bool:
        if not self.child.alive():
            raise ChildExited(f"{self.name} exited:\n{self.child.tail()}")
        return httpx.get(self.url + "/about", timeout=2).status_code == 200

    def load(self, duration: float, connections: int, workdir: Path) -> dict[str, Any]:
        """Run a load against this server and count what it served."""
        cpu = CpuWindow(self.child.pid)
        # The delivery process, when the middleware has one (FOOTPRINT_DELIVERY_PROCESS).
        helpers = [CpuWindow(pid) for pid in children(self.child.pid)]
        result = run_load(self.url, duration=duration, connections=connections, workdir=workdir)
        result.update({f"server_{k}": v for k, v in cpu.result().items()})
        if helpers:
            shares = [h.result()["cpu_percent"] for h in helpers]
            result["delivery_cpu_percent"] = (
                round(sum(shares), 1) if all(x is not None for x in shares) else None
            )
        result["load_average"] = loadavg()
        self.served += result["requests"]  # every completed response, whatever its status
        return result

    def stop(self) -> int:
        """Ctrl-C, as an operator would: the middleware flushes or spools on shutdown."""
        return self.child.stop(timeout=30)


async def _topic_total(bootstrap: str, topic: str) -> int:
    """Footprints on the topic: every message read, packs counted by their footprints."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return 0
        ends = await true_end_offsets(bootstrap, tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        total, read = 0, dict.fromkeys(tps, 0)
        while any(read[tp] < ends.get(tp, 0) for tp in tps):
            batches = await consumer.getmany(timeout_ms=2000)
            if not batches:
                break
            for tp, records in batches.items():
                read[tp] = records[-1].offset + 1
                for record in records:
                    value = json.loads(record.value)
                    total += len(value) if isinstance(value, list) else 1
        return total
    finally:
        await consumer.stop()


def _profile(
    server: Server, duration: float, loads: Path, out: Output, progress: Progress
) -> dict[str, Any] | None:
    """One more loaded run of the tracked app under py-spy (not counted in the figures)."""
    try:
        bin_path("py-spy")
    except FileNotFoundError:
        progress("py-spy is not installed: no profile of the tracked app")
        return None
    speedscope = out.charts.parent / "profiles" / "api.speedscope.json"
    speedscope.unlink(missing_ok=True)
    recorder = Recorder(server.child.pid, speedscope)
    result = server.load(duration, CONNECTIONS, loads)
    recorder.stop()
    if not speedscope.exists():
        progress("py-spy wrote no profile of the tracked app")
        return None
    summary = summarize(speedscope, seconds=recorder.seconds, rate=recorder.rate)
    summary["rps_under_profiler"] = result["rps"]
    progress(f"profiled the tracked app: GIL busy {summary['gil_busy_percent']}%")
    return summary


def _spooled(data_dir: Path) -> int:
    total = 0
    for segment in (data_dir / "spool").glob("*.jsonl"):
        total += sum(1 for line in segment.read_bytes().splitlines() if line.strip())
    return total


def _ratio(
    runs: dict[str, list[dict[str, Any]]], name: str = "tracked"
) -> tuple[float, float, float]:
    """Mean req/s without and with the middleware (``name``: in process, or ``process``, with a
    delivery process), and their ratio."""
    plain = sum(r["rps"] for r in runs["plain"]) / len(runs["plain"])
    tracked = sum(r["rps"] for r in runs[name]) / len(runs[name])
    return plain, tracked, tracked / plain


def _cpu_ratio(runs: dict[str, list[dict[str, Any]]], name: str = "tracked") -> float | None:
    """The same ratio per CPU-second of the server: requests served per second the process ran.

    On a shared machine a run's server may get less than a core (other tenants, the load
    generator); req/s then measures the machine, requests per CPU-second still the app. The
    two agree when the server had a whole core in every run.
    """

    def per_cpu_s(name: str) -> float | None:
        # A delivery process's CPU counts as the app's.
        rates = [
            r["rps"] / ((r["server_cpu_percent"] + (r.get("delivery_cpu_percent") or 0)) / 100)
            for r in runs[name]
            if r.get("server_cpu_percent")
        ]
        return sum(rates) / len(rates) if len(rates) == len(runs[name]) else None

    plain, tracked = per_cpu_s("plain"), per_cpu_s(name)
    return tracked / plain if plain and tracked else None


def _mean_delivery_cpu(runs: list[dict[str, Any]]) -> float | None:
    shares = [r.get("delivery_cpu_percent") for r in runs]
    return round(sum(shares) / len(shares), 1) if shares and None not in shares else None


def _process(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The middleware with a delivery process, against the same app without it."""
    _, rps, ratio = _ratio(runs, "process")
    return {
        "rps": round(rps, 1),
        "ratio": round(ratio, 4),
        "cpu_ratio": _round(_cpu_ratio(runs, "process")),
        "delivery_cpu_percent": _mean_delivery_cpu(runs["process"]),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def run(stack: Stack, size: str, out: Output, workdir: Path) -> dict[str, Any]:
    """Run the API benchmark; print and return its figures."""
    progress = Progress("api")
    duration, warmup = DURATIONS[size]
    loads = workdir / "load"
    t = tag()
    topic = f"bench-api-{t}"
    base_env = dict(
        FOOTPRINT_FOOTPRINTS_TOPIC=topic,
        FOOTPRINT_PARTITIONS="4",
    )
    up_env = child_env(
        **base_env, FOOTPRINT_KAFKA_URL=stack.kafka.url, FOOTPRINT_DATA_DIR=str(workdir / "up")
    )
    tool = "wrk" if have_wrk() else "bench.loadgen (wrk not installed)"
    progress(f"load from {tool}; {duration:g}s runs after {warmup:g}s warm-up")

    plain = Server("plain", child_env(), workdir, "plain")
    tracked = Server("tracked", up_env, workdir, "tracked")
    plain_io = Server("plain_io", child_env(), workdir, "plain-io")
    io_env = {**up_env, "FOOTPRINT_DATA_DIR": str(workdir / "up-io")}
    tracked_io = Server("tracked_io", io_env, workdir, "tracked-io")
    # The same middleware with FOOTPRINT_DELIVERY_PROCESS: footprints built and sent by a child.
    dp_dirs = [workdir / "up-dp", workdir / "up-io-dp"]
    process = Server(
        "tracked",
        {**up_env, "FOOTPRINT_DATA_DIR": str(dp_dirs[0]), "FOOTPRINT_DELIVERY_PROCESS": "true"},
        workdir,
        "tracked-dp",
    )
    process_io = Server(
        "tracked_io",
        {**up_env, "FOOTPRINT_DATA_DIR": str(dp_dirs[1]), "FOOTPRINT_DELIVERY_PROCESS": "true"},
        workdir,
        "tracked-io-dp",
    )
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "tracked": [], "process": []}
    io_runs: dict[str, list[dict[str, Any]]] = {"plain": [], "tracked": [], "process": []}
    profile: dict[str, Any] | None = None
    latency: dict[str, dict[str, Any]] = {}
    try:
        for server in (plain, tracked, process, plain_io, tracked_io, process_io):
            server.load(warmup, CONNECTIONS, loads)
        for label, trio, into in (
            ("", (plain, tracked, process), runs),
            ("2 ms ", (plain_io, tracked_io, process_io), io_runs),
        ):
            without, with_, with_child = trio
            for server, key in (
                (without, "plain"),
                (with_, "tracked"),
                (with_child, "process"),
                (with_child, "process"),
                (with_, "tracked"),
                (without, "plain"),
            ):
                result = server.load(duration, CONNECTIONS, loads)
                into[key].append(result)
                progress(
                    f"{label}{key:<8} {result['rps']:>8,.0f} req/s  p50 {result['p50_ms']:.2f} ms  "
                    f"p99 {result['p99_ms']:.2f} ms  failed {result['failed']}  "
                    f"server CPU {result.get('server_cpu_percent')}%"
                    + (
                        f" + delivery process {result['delivery_cpu_percent']}%"
                        if "delivery_cpu_percent" in result
                        else ""
                    )
                )
        # One connection: no queueing, and the 2 ms apps far from a full core, as a site's
        # server mostly is; the req/s ratio is then a latency ratio.
        for server in (plain, tracked, plain_io, tracked_io):
            result = server.load(duration, 1, loads)
            latency[server.name] = result
            progress(
                f"{server.name:<10} 1 connection: p50 {result['p50_ms']:.3f} ms  "
                f"p99 {result['p99_ms']:.3f} ms  {result['rps']:,.0f} req/s"
            )
        if size != "tiny":
            profile = _profile(tracked, duration, loads, out, progress)
    finally:
        plain.stop()
        plain_io.stop()
        tracked_exit = tracked.stop()
        tracked_io_exit = tracked_io.stop()
        process_exits = [process.stop(), process_io.stop()]
    served_up = tracked.served + tracked_io.served + process.served + process_io.served
    # Both tracked apps produce to the topic (a data directory each for their spools).
    recorded_up = (
        asyncio.run(_topic_total(stack.kafka.bootstrap, topic))
        + _spooled(workdir / "up")
        + _spooled(workdir / "up-io")
        + sum(_spooled(d) for d in dp_dirs)
    )
    progress(f"broker up: {recorded_up:,} footprints recorded for {served_up:,} requests served")
    # The same two sites called in this process: what the middleware costs per request, with
    # neither the load generator nor the broker competing for the cores while it is measured.
    in_process = cost_per_request(
        stack.kafka.bootstrap, f"{topic}-in-process", IN_PROCESS_REQUESTS[size]
    )
    progress(
        f"in process: {in_process['plain_us']:.1f} µs a request without, "
        f"{in_process['tracked_us']:.1f} µs with the middleware (+{in_process['added_us']:.1f} "
        f"µs, ratio {in_process['ratio']:.3f}); with a delivery process "
        f"{in_process['process_us']:.1f} µs (+{in_process['process_added_us']:.1f} µs) and "
        f"{in_process['process_child_us']:.1f} µs in its child"
    )

    dead_port = free_port()
    down: dict[str, dict[str, Any]] = {}
    for name, extra in (
        ("broker down", {}),
        ("broker down, spooling", {"FOOTPRINT_BUFFER_MAX_EVENTS": "1000"}),
    ):
        data_dir = workdir / f"down-{len(down)}"
        env = child_env(
            **base_env,
            **extra,
            FOOTPRINT_KAFKA_URL=f"kafka://127.0.0.1:{dead_port}",
            FOOTPRINT_DATA_DIR=str(data_dir),
        )
        server = Server("tracked", env, workdir, f"tracked-down-{len(down)}")
        try:
            server.load(warmup, CONNECTIONS, loads)
            result = server.load(duration, CONNECTIONS, loads)
        finally:
            exit_code = server.stop()
        result["served_total"] = server.served
        result["kept_in_spool_after_shutdown"] = _spooled(data_dir)
        result["exit_code"] = exit_code
        down[name] = result
        progress(
            f"{name}: {result['rps']:,.0f} req/s, failed {result['failed']}, "
            f"{result['kept_in_spool_after_shutdown']:,} of {server.served:,} footprints "
            "kept in the spool"
        )

    plain_rps, tracked_rps, ratio = _ratio(runs)
    io_plain_rps, io_tracked_rps, io_ratio = _ratio(io_runs)
    added_p50 = latency["tracked"]["p50_ms"] - latency["plain"]["p50_ms"]
    added_p99 = latency["tracked"]["p99_ms"] - latency["plain"]["p99_ms"]
    failed_down = sum(r["failed"] for r in down.values())
    data = {
        "size": size,
        "tool": tool,
        "duration_s": duration,
        "warmup_s": warmup,
        "connections": CONNECTIONS,
        "runs": runs,
        "plain_rps": round(plain_rps, 1),
        "tracked_rps": round(tracked_rps, 1),
        "ratio": round(ratio, 4),
        "cpu_ratio": _round(_cpu_ratio(runs)),
        "goal_ratio": GOAL_RATIO,
        "process": _process(runs),
        "io": {
            "handler_ms": 2,
            "runs": io_runs,
            "plain_rps": round(io_plain_rps, 1),
            "tracked_rps": round(io_tracked_rps, 1),
            "ratio": round(io_ratio, 4),
            "cpu_ratio": _round(_cpu_ratio(io_runs)),
            "process": _process(io_runs),
            "one_connection_ratio": round(
                latency["tracked-io"]["rps"] / latency["plain-io"]["rps"], 4
            ),
            "goal_ratio": GOAL_RATIO_IO,
        },
        "latency_1_connection": latency,
        "added_p50_ms": round(added_p50, 3),
        "added_p99_ms": round(added_p99, 3),
        "in_process": in_process,
        "broker_up": {
            "served": served_up,
            "recorded": recorded_up,
            "exit_code": tracked_exit,
            "exit_code_io": tracked_io_exit,
            "exit_codes_delivery_process": process_exits,
        },
        "broker_down": down,
        "profile": profile,
        "failed_broker_down": failed_down,
        "command": stack.command("api", size),
    }
    return out.publish(
        "api",
        data,
        {
            "api_with_vs_without_ratio": round(ratio, 4),
            "with_rps": round(tracked_rps),
            "without_rps": round(plain_rps),
            "api_delivery_process_ratio": _process(runs)["ratio"],
            "api_2ms_with_vs_without_ratio": round(io_ratio, 4),
            "api_2ms_delivery_process_ratio": _process(io_runs)["ratio"],
            "with_2ms_rps": round(io_tracked_rps),
            "without_2ms_rps": round(io_plain_rps),
            "added_p50_ms": round(added_p50, 3),
            "added_p99_ms": round(added_p99, 3),
            "in_process_added_us": in_process["added_us"],
            "in_process_ratio": in_process["ratio"],
            "failed_broker_down": failed_down,
        },
    )
