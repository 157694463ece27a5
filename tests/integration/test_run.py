"""``footprint run`` (what ``make run`` starts): its own real stack, and Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import re
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

    with httpx.Client(base_url=base, timeout=10) as api:
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
    deadline = time.monotonic() + 10
    while processes_using(data) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_using(data) == []
    assert (data / "postgres").is_dir() and (data / "clickhouse").is_dir()
