"""What every benchmark shares: the servers, progress lines, child processes, results on disk."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from footprint.stack import ClickHouseServer, KafkaServer, PostgresServer, RedisServer
from footprint.stack.apache_kafka import KafkaCluster

__all__ = [
    "ROOT",
    "ChildExited",
    "CpuWindow",
    "SIZES",
    "Child",
    "Output",
    "Progress",
    "Stack",
    "measured_at",
    "median",
    "tag",
    "wait_until",
]

ROOT = Path(__file__).resolve().parent.parent
SIZES = ("tiny", "small", "full")
T = TypeVar("T")


def tag() -> str:
    """A short unique suffix for topics, databases and app ids of one run."""
    return uuid.uuid4().hex[:8]


def median(values: list[float]) -> float:
    """The median (the mean of the two middle values for an even count)."""
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def schedstat(pid: int) -> tuple[float, float] | None:
    """Seconds a process's threads ran on a CPU, and waited runnable for one (Linux only).

    On a shared machine the second figure says how much of a run went to other tenants.
    """
    cpu = wait = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                on_cpu, queued, _ = (task / "schedstat").read_text().split()
                cpu += int(on_cpu)
                wait += int(queued)
    except OSError:
        return None
    return cpu / 1e9, wait / 1e9


class CpuWindow:
    """CPU use of a process over a window of wall time, as percentages of one core."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.began = time.perf_counter()
        self.start = schedstat(pid)

    def result(self) -> dict[str, float | None]:
        """``cpu_percent`` (may pass 100 with threads) and ``runqueue_wait_percent``."""
        end = schedstat(self.pid)
        wall = time.perf_counter() - self.began
        if self.start is None or end is None or wall <= 0:
            return {"cpu_percent": None, "runqueue_wait_percent": None}
        # A thread that exits takes its counters along: never report a negative share.
        return {
            "cpu_percent": round(max(0.0, 100 * (end[0] - self.start[0]) / wall), 1),
            "runqueue_wait_percent": round(max(0.0, 100 * (end[1] - self.start[1]) / wall), 1),
        }


def children(pid: int) -> list[int]:
    """The live processes ``pid`` started (from any of its threads)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:
            continue
        if int(ppid) == pid and state != "Z":
            found.append(int(stat.parent.name))
    return found


def loadavg() -> float | None:
    """The 1-minute load average."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


class Progress:
    """Timestamped progress lines on stdout: ``[worker   12.3s] message``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        """Seconds since this benchmark started."""
        return time.monotonic() - self.started

    def __call__(self, message: str) -> None:
        print(f"[{self.name:<7}{self.elapsed:7.1f}s] {message}", flush=True)


class ChildExited(RuntimeError):
    """A process the benchmark started is gone: waiting longer cannot help."""


def wait_until(
    check: Callable[[], T | None], *, timeout: float, interval: float = 0.1, what: str
) -> T:
    """Poll ``check`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except ChildExited:
            raise
        except Exception as e:  # a server or process still starting answers with errors
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


class Child:
    """A process this benchmark started (worker, uvicorn, load generator), with its log."""

    def __init__(
        self, argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> None:
        self.argv = argv
        self.log = log
        self._file = log.open("wb")
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def alive(self) -> bool:
        """Whether it has not exited."""
        return self.proc.poll() is None

    def tail(self, n: int = 40) -> str:
        """The last ``n`` lines of its log."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self, timeout: float = 20.0, sig: int = signal.SIGINT) -> int:
        """Ask it to stop (Ctrl-C by default), then kill it, by its own pid only."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._file.close()
        return self.proc.returncode


def uvicorn(app: str, port: int, log: Path, env: dict[str, str], *, factory: bool = False) -> Child:
    """One uvicorn process serving ``app`` on 127.0.0.1 (warnings only, no access log)."""
    argv = [sys.executable, "-m", "uvicorn", *(["--factory"] if factory else []), app]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning", "--no-access-log"]
    log.parent.mkdir(parents=True, exist_ok=True)
    return Child(argv, log, env=env)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank; NaN when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# The API refuses to start without a signing secret; any 32+ characters do for a benchmark.
BENCH_JWT_SECRET = "footprint-benchmark-secret-0123456789abcdef"


def child_env(**values: str) -> dict[str, str]:
    """The environment minus any ``FOOTPRINT_*`` of the caller's shell, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    env["FOOTPRINT_JWT_SECRET"] = BENCH_JWT_SECRET
    env.update(values)
    return env


def bin_path(name: str) -> str:
    """An executable installed beside this interpreter (the venv's ``faust``, ``py-spy``)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (pip install {name})")
    return found


class Stack:
    """The real servers, started on first use and shared by the benchmarks of one invocation."""

    def __init__(
        self, base: Path, progress: Callable[[str], None] = print, broker: str = "tansu"
    ) -> None:
        self.base = base
        self.progress = progress
        self.broker = broker
        self._kafka: KafkaServer | KafkaCluster | None = None
        self._postgres: PostgresServer | None = None
        self._redis: RedisServer | None = None
        self._clickhouse: ClickHouseServer | None = None
        self._redis_dbs = iter(range(1, 16))

    def _start(self, server: Any) -> Any:
        began = time.monotonic()
        server.start()
        self.progress(
            f"started {server.name} on port {server.port} in {time.monotonic() - began:.1f}s"
        )
        return server

    @property
    def kafka(self) -> KafkaServer | KafkaCluster:
        """Tansu (memory-only), or one Apache Kafka node with ``--broker kafka``."""
        if self._kafka is None:
            if self.broker == "kafka":
                self._kafka = self._start(KafkaCluster(self.base / "apache-kafka"))
            else:
                self._kafka = self._start(KafkaServer(self.base / "kafka"))
        return self._kafka

    def command(self, name: str, size: str) -> str:
        """The command line that reproduces a benchmark on this stack."""
        broker = f" --broker {self.broker}" if self.broker != "tansu" else ""
        return f"python -m bench {name} --size {size}{broker}"

    @property
    def postgres(self) -> PostgresServer:
        """PostgreSQL with the embedded stack's settings (fsync off)."""
        if self._postgres is None:
            self._postgres = self._start(PostgresServer(self.base / "postgres"))
        return self._postgres

    @property
    def redis(self) -> RedisServer:
        """redis-server, persistence off."""
        if self._redis is None:
            self._redis = self._start(RedisServer(self.base / "redis"))
        return self._redis

    @property
    def clickhouse(self) -> ClickHouseServer:
        """Debian's clickhouse-server 18.16, native protocol."""
        if self._clickhouse is None:
            self._clickhouse = self._start(ClickHouseServer(self.base / "clickhouse"))
        return self._clickhouse

    def postgres_db(self, name: str) -> str:
        """A fresh database with the migrations applied; returns its URL."""
        import psycopg

        from footprint.migrate import apply_postgres

        with psycopg.connect(self.postgres.url_for("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = self.postgres.url_for(name)
        apply_postgres(url)
        return url

    def drop_postgres_db(self, name: str) -> None:
        """Free the disk a benchmark's database used."""
        import psycopg

        with psycopg.connect(self.postgres.url_for("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def clickhouse_db(self, name: str) -> str:
        """A fresh database on the ClickHouse server with the migrations applied; its URL."""
        from footprint.clickhouse import connect
        from footprint.migrate import apply_clickhouse

        admin = connect(self.clickhouse.url)
        try:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.execute(f"CREATE DATABASE {name}")
        finally:
            admin.close()
        url = self.clickhouse.url.rsplit("/", 1)[0] + f"/{name}"
        client = connect(url)
        try:
            apply_clickhouse(client)
        finally:
            client.close()
        return url

    def drop_clickhouse_db(self, name: str) -> None:
        """Drop a benchmark's ClickHouse database."""
        from footprint.clickhouse import connect

        admin = connect(self.clickhouse.url)
        try:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
        finally:
            admin.close()

    def redis_db(self) -> str:
        """A Redis URL on a database number no other benchmark of this run uses, emptied."""
        import redis

        url = self.redis.url.rsplit("/", 1)[0] + f"/{next(self._redis_dbs)}"
        redis.Redis.from_url(url).flushdb()
        return url

    def pids(self) -> dict[str, list[int]]:
        """The main process of each server started so far (a Kafka cluster: each node's)."""
        out: dict[str, list[int]] = {}
        if self._kafka is not None:
            nodes = getattr(self._kafka, "nodes", [self._kafka])
            out["kafka"] = [pid for node in nodes if (pid := node.pid) is not None]
        for name, server in (
            ("postgres", self._postgres),
            ("clickhouse", self._clickhouse),
            ("redis", self._redis),
        ):
            if server is not None and server.pid is not None:
                out[name] = [server.pid]
        return out

    def stop(self) -> None:
        """Stop every server started, newest first."""
        for server in (self._clickhouse, self._redis, self._postgres, self._kafka):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop()
        self._kafka = self._postgres = self._redis = self._clickhouse = None


def measured_at(data: dict[str, Any], path: Path | None = None) -> datetime | None:
    """When a result was measured: its ``measured_at``, else the mtime of ``path`` if given.

    The mtime is a fallback for results saved before the field existed: a git checkout resets it.
    """
    value = data.get("measured_at")
    if isinstance(value, int | float):  # the API benchmark once saved time.time()
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        # ISO 8601; the scaling benchmark once saved "2026-11-30 08:54 UTC".
        when = datetime.fromisoformat(value.removesuffix(" UTC"))
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    if path is not None:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return None


@dataclass
class Output:
    """Where a run writes: BENCHMARKS.md, results/*.json, charts/*.png and profiles/."""

    report: Path
    results: Path
    charts: Path
    size: str
    results_written: list[str] = field(default_factory=list)
    # Results measured on Apache Kafka are saved as NAME.kafka.json beside Tansu's NAME.json.
    broker: str = "tansu"
    # The hand-written notes the report inserts (bench/notes/KEY.md), read from the repository
    # whatever the output directory.
    notes: Path = ROOT / "bench" / "notes"

    @property
    def profiles(self) -> Path:
        """Where the benchmarks write py-spy's flame graphs, beside the charts."""
        return self.charts.parent / "profiles"

    @classmethod
    def for_size(cls, size: str, report_dir: Path | None) -> Output:
        """The repository for small and full runs; a temporary directory for tiny ones."""
        if report_dir is None and size == "tiny":
            report_dir = Path(tempfile.mkdtemp(prefix="footprint-bench-tiny-"))
        if report_dir is None:
            return cls(
                ROOT / "BENCHMARKS.md", ROOT / "bench" / "results", ROOT / "bench" / "charts", size
            )
        return cls(
            report_dir / "BENCHMARKS.md", report_dir / "results", report_dir / "charts", size
        )

    def save(self, name: str, data: dict[str, Any]) -> Path:
        """Write one benchmark's results as JSON (``NAME.kafka.json`` on Apache Kafka), with
        the UTC time they were saved as ``measured_at``."""
        data = {**data, "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
        if self.broker != "tansu" and name != "machine":
            name = f"{name}.{self.broker}"
            data["broker"] = self.broker
        self.results.mkdir(parents=True, exist_ok=True)
        path = self.results / f"{name}.json"
        path.write_text(json.dumps(data, indent=2, default=str) + "\n")
        self.results_written.append(name)
        return path

    def publish(self, name: str, data: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
        """Save a benchmark's results with its ``RESULT`` line of ``figures``; print the line."""
        line = result_line(figures)
        data["result"] = line
        self.save(name, data)
        print(line, flush=True)
        return data

    def load(self, name: str) -> dict[str, Any] | None:
        """A benchmark's saved results, or None."""
        path = self.results / f"{name}.json"
        if not path.exists():
            return None
        return dict(json.loads(path.read_text()))


def result_line(prefix_values: dict[str, Any]) -> str:
    """``RESULT k=v k=v``: the one closing line a benchmark prints."""
    parts = []
    for key, value in prefix_values.items():
        if isinstance(value, float):
            value = f"{value:.4g}" if abs(value) < 10 else f"{value:.0f}"
        parts.append(f"{key}={value}")
    return "RESULT " + " ".join(parts)
