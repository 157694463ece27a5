"""HTTP load from a separate process: wrk when installed, else this module's own generator.

``python -m bench.loadgen http://127.0.0.1:8000 --duration 10 --connections 32`` runs a closed
loop (each connection sends its next request when the previous answer arrives);
``--rate 50`` runs an open loop at a fixed request rate over a pool of connections: a slow
answer does not delay the next request (no coordinated omission). Latency is reported from the
moment each request was written (``p50_ms``…) and from the moment it was due (``due_p99_ms``,
which adds any wait for a free connection and this client's own scheduling delays). Both
print one JSON object. Paths rotate over the benchmark's links and real user agents, as the
middleware would see them on a site.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.traffic import LINKS, USER_AGENTS

__all__ = ["have_wrk", "run_load", "wrk_script"]


def have_wrk() -> bool:
    """Whether wrk is on PATH."""
    return shutil.which("wrk") is not None


# Headers every request carries (e.g. a stats credential), set by the entry points.
HEADERS: dict[str, str] = {}


def _request_bytes(host: str, paths: list[str], i: int) -> bytes:
    path = paths[i % len(paths)]
    agent = USER_AGENTS[i % len(USER_AGENTS)]
    extra = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\n{extra}"
        "Accept: application/json\r\n\r\n"
    ).encode()


def default_paths() -> list[str]:
    """The site's links, every tenth with a campaign tag."""
    return [
        link + ("?utm_source=newsletter" if i % 10 == 0 else "") for i, link in enumerate(LINKS)
    ]


# --------------------------------------------------------------------------- wrk


def wrk_script(path: Path, paths: list[str]) -> Path:
    """A wrk Lua script rotating paths and user agents, printing exact percentiles as JSON."""
    lua_paths = ", ".join(json.dumps(p) for p in paths)
    lua_agents = ", ".join(json.dumps(a) for a in USER_AGENTS)
    lua_headers = "".join(f"[{json.dumps(k)}] = {json.dumps(v)}, " for k, v in HEADERS.items())
    path.write_text(
        f"""
local paths = {{{lua_paths}}}
local agents = {{{lua_agents}}}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1],
                    {{{lua_headers}["User-Agent"] = agents[(i % #agents) + 1]}})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "JSON {{\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, \\"p90_us\\": %d, " ..
    "\\"p99_us\\": %d, \\"p999_us\\": %d, \\"max_us\\": %d, \\"mean_us\\": %.1f, " ..
    "\\"connect\\": %d, \\"read\\": %d, \\"write\\": %d, \\"status\\": %d, \\"timeout\\": %d}}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""
    )
    return path


def _wrk(url: str, duration: float, connections: int, script: Path) -> dict[str, Any]:
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    match = re.search(r"^JSON (.+)$", out.stdout, re.MULTILINE)
    if out.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "tool": "wrk",
        "mode": f"closed loop, {connections} connections",
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "rps": round(raw["requests"] / seconds, 1),
        "socket_errors": errors,
        "non_2xx": raw["status"],
        "failed": errors + raw["status"],
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "p999_ms": raw["p999_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "mean_ms": round(raw["mean_us"] / 1000, 3),
    }


# --------------------------------------------------------------------------- the Python generator


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(self, payload: bytes) -> int:
        self.writer.write(payload)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length:
            await self.reader.readexactly(length)
        return status


async def _open(host: str, port: int) -> _Conn:
    reader, writer = await asyncio.open_connection(host, port)
    return _Conn(reader, writer)


async def _closed_loop(
    host: str, port: int, paths: list[str], duration: float, connections: int
) -> tuple[list[float], int, int, float]:
    latencies: list[float] = []
    errors = 0
    non_2xx = 0
    counter = 0
    deadline = time.perf_counter() + duration

    async def client() -> None:
        nonlocal errors, non_2xx, counter
        conn: _Conn | None = None
        while time.perf_counter() < deadline:
            counter += 1
            payload = _request_bytes(f"{host}:{port}", paths, counter)
            began = time.perf_counter()
            try:
                if conn is None:
                    conn = await _open(host, port)
                status = await conn.request(payload)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors += 1
                conn = None
                continue
            latencies.append(time.perf_counter() - began)
            if not 200 <= status < 400:
                non_2xx += 1
        if conn is not None:
            conn.writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return latencies, errors, non_2xx, time.perf_counter() - began


async def _open_loop(
    host: str, port: int, paths: list[str], duration: float, rate: float, max_connections: int
) -> tuple[list[float], int, int, float]:
    latencies: list[float] = []  # from the moment the request was written
    from_due: list[float] = []  # from the moment it was due: includes any wait for a connection
    errors = 0
    non_2xx = 0
    idle: list[_Conn] = []
    opened = 0
    slots = asyncio.Semaphore(max_connections)
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int, due: float) -> None:
        nonlocal errors, non_2xx, opened
        async with slots:
            conn = idle.pop() if idle else None
            try:
                if conn is None:
                    conn = await _open(host, port)
                    opened += 1
                sent = time.perf_counter()
                status = await conn.request(_request_bytes(f"{host}:{port}", paths, i))
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors += 1
                return
            done = time.perf_counter()
            latencies.append(done - sent)
            from_due.append(done - due)
            idle.append(conn)
            if not 200 <= status < 400:
                non_2xx += 1

    start = time.perf_counter() + 0.05
    total = int(duration * rate)
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    for conn in idle:
        conn.writer.close()
    return latencies, errors, non_2xx, time.perf_counter() - start, from_due


def _pct(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000, 3)


def _summary(
    latencies: list[float],
    errors: int,
    non_2xx: int,
    seconds: float,
    from_due: list[float] | None = None,
    *,
    mode: str,
) -> dict[str, Any]:
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return _pct(ordered, q)

    extra = {}
    if from_due is not None:
        due = sorted(from_due)
        extra = {"due_p50_ms": _pct(due, 50), "due_p99_ms": _pct(due, 99)}
    return {
        **extra,
        "tool": "bench.loadgen",
        "mode": mode,
        "requests": len(ordered),
        "seconds": round(seconds, 3),
        "rps": round(len(ordered) / seconds, 1) if seconds else 0.0,
        "socket_errors": errors,
        "non_2xx": non_2xx,
        "failed": errors + non_2xx,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "p999_ms": pct(99.9),
        "max_ms": round(ordered[-1] * 1000, 3) if ordered else float("nan"),
        "mean_ms": round(sum(ordered) / len(ordered) * 1000, 3) if ordered else float("nan"),
    }


async def _python_load(
    url: str, duration: float, connections: int, rate: float | None, paths: list[str]
) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if rate:
        result = await _open_loop(host, port, paths, duration, rate, connections)
        return _summary(*result, mode=f"open loop, {rate:g} requests/s")
    closed = await _closed_loop(host, port, paths, duration, connections)
    return _summary(*closed, mode=f"closed loop, {connections} connections")


# --------------------------------------------------------------------------- entry points


def run_load(
    url: str,
    *,
    duration: float,
    connections: int = 32,
    rate: float | None = None,
    paths: list[str] | None = None,
    workdir: Path,
    force_python: bool = False,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Load ``url`` from another process: wrk for closed loops when present, else Python."""
    paths = paths or default_paths()
    HEADERS.clear()
    HEADERS.update(headers or {})
    workdir.mkdir(parents=True, exist_ok=True)
    if rate is None and not force_python and have_wrk():
        return _wrk(url, duration, connections, wrk_script(workdir / "paths.lua", paths))
    argv = [
        sys.executable,
        "-m",
        "bench.loadgen",
        url,
        "--duration",
        str(duration),
        "--connections",
        str(connections),
        "--paths",
        json.dumps(paths),
        "--headers",
        json.dumps(HEADERS),
    ]
    if rate:
        argv += ["--rate", str(rate)]
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    """Command line: run one load and print its JSON summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=None)
    parser.add_argument("--paths", default=None, help="a JSON list of paths")
    parser.add_argument("--headers", default="{}", help="a JSON object of request headers")
    args = parser.parse_args(argv)
    paths = json.loads(args.paths) if args.paths else default_paths()
    HEADERS.update(json.loads(args.headers))
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    result = runner(_python_load(args.url, args.duration, args.connections, args.rate, paths))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
