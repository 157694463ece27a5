"""The notification agent's batching policy alone: Faust's clock against ``take_ready``.

A Faust agent in this process (its test context: a channel, no broker) takes events arriving
open loop (Poisson) at the notify benchmark's rate; each pass waits as long as the worker's
inbox and fan-out pass takes on this machine (a sleep: I/O, as those round trips are). Per
policy: the latency from arrival to the end of the event's pass, passes per second, and the
CPU an idle agent burns waiting for events. Nothing else runs, so the policies compare
within one run without the noise of the end-to-end figures.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import faust

from streams.batching import ReadyStream

__all__ = ["POLICIES", "compare"]

# (key, label, how the agent takes its batches)
POLICIES: list[tuple[str, str, Callable[[Any], AsyncIterator[Any]]]] = [
    (
        "clock_10ms",
        "Faust `take_events`, 10 ms clock (the worker before)",
        lambda stream: stream.take_events(2000, within=0.010),
    ),
    (
        "clock_2ms",
        "Faust `take_events`, 2 ms clock",
        lambda stream: stream.take_events(2000, within=0.002),
    ),
    (
        "ready_2ms",
        "`take_ready`, 2 ms linger (the worker now)",
        lambda stream: stream.take_ready(2000, linger=0.002),
    ),
]
PASS_SECONDS = 0.008  # the worker's pass at 500 events/s: inbox ~5.4 ms + fan-out ~2.3 ms (p50)
SIZES = {"tiny": (0.5, 0.5), "small": (2.0, 2.0), "full": (4.0, 5.0)}  # loaded s, idle s


def _app() -> faust.App:
    # The broker is never reached: test contexts feed each agent's stream from a channel.
    return faust.App("bench-batching", broker="kafka://127.0.0.1:1", Stream=ReadyStream)


async def _loaded(app: faust.App, name: str, take: Any, rate: float, seconds: float) -> dict:
    latencies: list[float] = []
    sizes: list[int] = []
    n = int(rate * seconds)
    handled = asyncio.Event()

    async def agent(stream: Any) -> None:
        async for batch in take(stream):
            await asyncio.sleep(PASS_SECONDS)
            done = time.perf_counter()
            sizes.append(len(batch))
            latencies.extend(done - event.value for event in batch)
            if len(latencies) >= n:
                handled.set()

    wrapped = app.agent(name=f"loaded-{name}")(agent)
    rnd = random.Random(1)  # the same arrivals for every policy
    async with wrapped.test_context() as ctx:
        began = due = time.perf_counter()
        for _ in range(n):
            due += rnd.expovariate(rate)
            ahead = due - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
            await ctx.put(time.perf_counter(), wait=False)
        await asyncio.wait_for(handled.wait(), timeout=60)
        took = time.perf_counter() - began
    q = statistics.quantiles(latencies, n=100)
    return {
        "events": n,
        "handled": len(latencies),
        "p50_ms": round(q[49] * 1e3, 2),
        "p99_ms": round(q[98] * 1e3, 2),
        "passes_per_s": round(len(sizes) / took, 1),
        "events_per_pass": round(statistics.mean(sizes), 2),
    }


async def _idle(app: faust.App, name: str, take: Any, seconds: float) -> float:
    async def agent(stream: Any) -> None:
        async for _ in take(stream):
            pass

    wrapped = app.agent(name=f"idle-{name}")(agent)
    async with wrapped.test_context():
        await asyncio.sleep(0.2)
        cpu = time.process_time()
        await asyncio.sleep(seconds)
        return round((time.process_time() - cpu) / seconds * 100, 2)


async def _compare(rate: float, size: str) -> dict[str, Any]:
    loaded_s, idle_s = SIZES[size]
    app = _app()
    policies = {}
    for key, label, take in POLICIES:
        result = await _loaded(app, key, take, rate, loaded_s)
        result["label"] = label
        result["idle_cpu_percent"] = await _idle(app, key, take, idle_s)
        policies[key] = result
    return {
        "rate": rate,
        "pass_ms": PASS_SECONDS * 1e3,
        "loaded_seconds": loaded_s,
        "idle_seconds": idle_s,
        "policies": policies,
    }


def compare(rate: float, size: str) -> dict[str, Any]:
    """Each policy under the same arrivals, and idle."""
    return asyncio.run(_compare(rate, size))


if __name__ == "__main__":
    import json

    print(json.dumps(compare(500.0, "full"), indent=1))
