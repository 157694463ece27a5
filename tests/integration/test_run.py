"""``footprint run`` (what ``make run`` starts): its own real stack, and Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer

from tests.integration.conftest import BIN, free_port, wait_http, wait_until

pytestmark = pytest.mark.integration


def processes_using(path: Path) -> list[str]:
    """Command lines of live processes that mention ``path`` (the embedded servers do)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(path) in cmdline:
                found.append(cmdline)
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="process listing reads /proc (Linux)")
@pytest.mark.parametrize("broker", ["tansu", "kafka"])
def test_run_starts_its_own_stack_and_ctrl_c_stops_everything(
    broker: str, tmp_path: Path, spawn
) -> None:
    data = tmp_path / "footprint-data"
    port = free_port()
    # Empty server URLs mean "embedded": footprint run starts every server itself.
    env = {f"FOOTPRINT_{name}_URL": "" for name in ("KAFKA", "POSTGRES", "CLICKHOUSE", "REDIS")}
    env["FOOTPRINT_DATA_DIR"] = str(data)
    argv = [str(BIN / "footprint"), "run", "--port", str(port), "--broker", broker]
    proc = spawn(argv, env, "run")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc, timeout=180)
    assert processes_using(data), "the embedded servers run under the data dir"
    # It says where a site's producers should send: a third-party client does, and is counted.
    printed = re.search(
        r"Kafka bootstrap\s+(\S+)\s+\(produce footprints to topic '(\S+)'", proc.tail(400)
    )
    assert printed, proc.tail()
    bootstrap, topic = printed.groups()
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, b'{"method": "GET", "link": "/from-a-producer"}')
    assert producer.flush(30) == 0

    # The dashboard's link carries a fresh admin token in its fragment: the stats need one.
    link = re.search(rf"Dashboard\s+http://127\.0\.0\.1:{port}/#token=(\S+)", proc.tail(400))
    assert link, proc.tail()
    assert httpx.get(base + "/api/stats/live", timeout=10).status_code == 401
    reader = {"Authorization": f"Bearer {link.group(1)}"}
    with httpx.Client(base_url=base, headers=reader, timeout=10) as api:
        assert api.get("/docs").status_code == 200
        r = api.post("/api/footprints", json={"method": "GET", "link": "/hello"})
        assert r.status_code == 202
        live = wait_until(
            lambda: (
                (b := api.get("/api/stats/live", params={"window": "1h"}).json())["total"] == 2
                and b
            ),
            what="both footprints in the live 1h window",
        )
        assert sorted(p["link"] for p in live["top_pages"]) == ["/from-a-producer", "/hello"]

    assert proc.stop() == 0, proc.tail()
    wait_until(
        lambda: processes_using(data) == [],
        timeout=10,
        what="no process left using the data dir",
    )
    assert (data / "postgres").is_dir() and (data / "clickhouse").is_dir()


@pytest.mark.parametrize(
    ("secret", "said"),
    [
        (None, "FOOTPRINT_JWT_SECRET is not set"),
        ("change-me-in-production-0123456789abcdef", "FOOTPRINT_JWT_SECRET is a value published"),
    ],
)
def test_run_on_every_interface_refuses_a_missing_or_published_secret(
    tmp_path: Path, secret: str | None, said: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    env["FOOTPRINT_DATA_DIR"] = str(tmp_path / "data")
    if secret:
        env["FOOTPRINT_JWT_SECRET"] = secret
    argv = [str(BIN / "footprint"), "run", "--host", "0.0.0.0", "--port", str(free_port())]
    started = time.monotonic()
    # In tmp_path: no .env of the repository is read.
    done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stdout + done.stderr
    assert said in done.stderr and "0.0.0.0" in done.stderr, done.stderr
    # Refused before anything started: no embedded server wrote its data dir.
    assert not (tmp_path / "data").exists()
    print(
        f"footprint run --host 0.0.0.0 with secret={secret!r}: "
        f"exit {done.returncode} in {elapsed:.1f} s"
    )
