"""py-spy evidence: record a process, then rank functions by self and inclusive time.

``py-spy record --format speedscope`` writes one sampled profile per thread; each sample is a
stack listed root first. *Self* time counts the leaf frame of each sample, *inclusive* time
every distinct function on the stack. Open the ``.speedscope.json`` file at
https://www.speedscope.app for the flame graph.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import ROOT, bin_path

__all__ = ["Recorder", "summarize"]

# Packages as they appear in a frame's file path, most specific first.
_PACKAGES = (
    ("faust", "/faust/"),
    ("mode", "/mode/"),
    ("aiokafka", "/aiokafka/"),
    ("kafka (aiokafka's vendored)", "/kafka/"),
    ("pydantic", "/pydantic"),
    ("psycopg", "/psycopg"),
    ("clickhouse_driver", "/clickhouse_driver/"),
    ("redis", "/redis/"),
    ("uvicorn", "/uvicorn/"),
    ("starlette", "/starlette/"),
    ("fastapi", "/fastapi/"),
    ("ua_parser", "/ua_parser"),
    ("other site-packages", "site-packages/"),
)


# Where a Faust worker's time goes, as stages recognised by a function on the stack. A sample
# counts for the first stage (in this order) that one of its frames matches: table writes happen
# inside the agent's pass, so they are looked for before the pass itself.
STAGES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "table writes → changelog (Table.__setitem__, send_changelog)",
        (("Table.on_key_set", "faust/"), ("Collection.send_changelog", "faust/")),
    ),
    (
        "Faust producer buffer: publishing changelog records, flow control",
        (
            ("ProducerBuffer._handle_pending", "faust/"),
            ("ProducerBuffer.wait_until_ebb", "faust/"),
            ("ProducerBuffer.flush", "faust/"),
            ("Producer.flush", "faust/"),
        ),
    ),
    (
        "aiokafka sender: produce requests to the broker",
        (("Sender._sender_routine", "aiokafka/"), ("Sender._send_produce_req", "aiokafka/")),
    ),
    (
        "the agent's pass: decode, count, sinks (incl. ClickHouse inserts in their thread)",
        (
            ("process", "streams/agents/"),
            ("count_and_store", "streams/agents/"),
            ("_DriverClickHouse.insert", "footprint/"),
        ),
    ),
    (
        "message intake: fetch, deserialize, events, acks",
        (
            ("Fetcher._fetcher", "faust/"),
            ("Conductor._compile_message_handler.<locals>.on_message", "faust/"),
            ("Stream._c_aiter", "faust/"),
            ("Stream.take_events", "faust/"),
            ("Consumer.getmany", "faust/"),
            ("AIOKafkaConsumer.getmany", "aiokafka/"),
            ("Fetcher._fetch_requests_routine", "aiokafka/"),
        ),
    ),
    ("other tasks and timers (heartbeat, monitors)", (("Service._execute_task", "mode/"),)),
)


def _stage(frames: list[dict[str, Any]], stack: list[int]) -> str:
    names = {(frames[i]["name"], frames[i].get("file") or "") for i in stack}
    for label, markers in STAGES:
        for name, where in markers:
            if any(n == name and where in f for n, f in names):
                return label
    return "event loop and everything else"


class Recorder:
    """``py-spy record`` attached to a pid until ``stop()`` (sent as Ctrl-C, which saves)."""

    def __init__(self, pid: int, output: Path, rate: int = 100) -> None:
        self.output = output
        self.rate = rate
        self.started = time.monotonic()
        self.seconds = 0.0
        output.parent.mkdir(parents=True, exist_ok=True)
        self._log = output.with_suffix(".log").open("wb")
        self.proc = subprocess.Popen(
            [
                bin_path("py-spy"),
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                # Only the thread holding the GIL: the worker's limit is one Python thread's CPU,
                # and idle threads (waiting in epoll or on a queue) are left out exactly.
                "--gil",
                "--format",
                "speedscope",
                "--output",
                str(output),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop sampling and write the file; True when the file exists."""
        self.seconds = time.monotonic() - self.started
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        if self.output.exists():
            self.output.with_suffix(".log").unlink(missing_ok=True)  # kept only on failure
            return True
        return False


def _short(path: str) -> str:
    """A frame's file, relative to site-packages, the repository or the stdlib."""
    for marker in ("site-packages/", "dist-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    root = str(ROOT) + "/"
    if path.startswith(root):
        return path[len(root) :]
    if "/lib/python3" in path:
        return "stdlib/" + path.split("/lib/python3", 1)[1].split("/", 1)[1]
    return path


def _bare(frame: dict[str, Any]) -> str:
    return f"{frame['name']} ({Path(frame.get('file') or '?').name}:{frame.get('line') or '?'})"


def _package(path: str) -> str:
    # A virtual environment inside the repository (make install's .venv) is not the repository.
    if path.startswith(str(ROOT) + "/") and "-packages/" not in path:
        return "footprint (this repository)"
    for name, marker in _PACKAGES:
        if marker in path:
            return name
    if "/lib/python3" in path:
        if "/asyncio/" in path:
            return "asyncio (stdlib)"
        if "/json/" in path:
            return "json (stdlib)"
        return "other stdlib"
    return "native / other"


def summarize(path: Path, top: int = 10, seconds: float = 0.0, rate: int = 100) -> dict[str, Any]:
    """Top functions by self and inclusive share of samples, and self time by package.

    With ``seconds`` (how long the recording ran) the result also says how busy the GIL was:
    GIL-holding samples over the samples a fully busy thread would have given.
    """
    doc = json.loads(path.read_text())
    frames = doc["shared"]["frames"]
    # One function may show up at several lines: group on name and file.
    keys = [f"{f['name']} ({_short(f.get('file') or '?')})" for f in frames]
    packages = [_package(f.get("file") or "") for f in frames]
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    pkg_counts: Counter[str] = Counter()
    project_incl: Counter[str] = Counter()
    callers: dict[str, Counter[str]] = {}
    stages: Counter[str] = Counter()
    total = 0
    for profile in doc["profiles"]:
        for stack in profile.get("samples", []):
            if not stack:
                continue
            total += 1
            leaf = stack[-1]
            self_counts[keys[leaf]] += 1
            stages[_stage(frames, stack)] += 1
            # Who called the leaf, two frames up: "LogRecord.__init__" alone says little.
            chain = " < ".join(_bare(frames[i]) for i in reversed(stack[-4:-1]))
            callers.setdefault(keys[leaf], Counter())[chain] += 1
            pkg_counts[packages[leaf]] += 1
            seen = {keys[i] for i in stack}
            for k in seen:
                incl_counts[k] += 1
            for k in {keys[i] for i in stack if packages[i] == "footprint (this repository)"}:
                project_incl[k] += 1

    def ranked(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return [
            {"function": k, "samples": v, "percent": round(100.0 * v / total, 1) if total else 0}
            for k, v in counter.most_common(n)
        ]

    top_self = ranked(self_counts, top)
    for entry in top_self:
        chain, count = callers[entry["function"]].most_common(1)[0]
        entry["called_from"] = chain
        entry["called_from_percent"] = round(100.0 * count / entry["samples"])
    # Debug logging that is created and then dropped costs real time: make it visible.
    logging_share = sum(
        1
        for profile in doc["profiles"]
        for stack in profile.get("samples", [])
        if any(frames[i]["name"] == "Logger.debug" for i in stack)
    )
    return {
        "file": str(path),
        "logger_debug_percent": round(100.0 * logging_share / total, 1) if total else 0,
        "samples": total,
        "seconds": round(seconds, 2),
        # py-spy's clock and ours differ slightly: a saturated GIL reads as 100.
        "gil_busy_percent": min(100.0, round(100.0 * total / (seconds * rate), 1))
        if seconds
        else None,
        "threads": len(doc["profiles"]),
        "top_self": top_self,
        "top_inclusive": ranked(incl_counts, top + 15),
        "by_package": ranked(pkg_counts, 20),
        "project_inclusive": ranked(project_incl, top + 5),
        "stages": ranked(stages, len(STAGES) + 1),
    }
