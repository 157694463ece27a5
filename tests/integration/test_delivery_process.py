"""The middleware with ``FOOTPRINT_DELIVERY_PROCESS``: footprints built and sent by a child
process, on a real broker, through the API process's deaths and its child's."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka.errors import UnknownTopicOrPartitionError
from fastapi import FastAPI
from fastapi.testclient import TestClient

from footprint.delivery_process import DeliveryProcess
from footprint.middleware import FootprintMiddleware
from footprint.records import to_record
from footprint.schema import Footprint
from footprint.settings import Settings
from footprint.spool import Spool
from footprint.stack import KafkaServer, free_port
from footprint.stack.apache_kafka import KafkaCluster
from tests.integration.conftest import BROKERS, ROOT, wait_until
from tests.integration.test_middleware_outage import _consume
from tests.integration.traffic import host_app

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="process checks read /proc (Linux)"),
]

Broker = KafkaCluster | KafkaServer


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Broker:
    """Apache Kafka, then Tansu."""
    name = "apache_kafka" if request.param == "kafka" else "tansu"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def tracked_site() -> FastAPI:
    """``uvicorn --factory``: the host app, its middleware configured from the environment."""
    app = host_app()
    app.add_middleware(FootprintMiddleware)
    return app


def _settings(kafka_url: str, topic: str, data_dir: Path) -> Settings:
    return Settings(
        kafka_url=kafka_url,
        footprints_topic=topic,
        data_dir=data_dir,
        delivery_process=True,
        redis_url=None,
    )


def _links(footprints: list[dict]) -> Counter[str]:
    return Counter(f["link"] for f in footprints)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (any of its threads started them)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_footprints_are_built_and_sent_by_a_child_process(broker: Broker, tmp_path: Path) -> None:
    topic = f"delivery-process-{tmp_path.name}"
    app = host_app()
    app.add_middleware(
        FootprintMiddleware, settings=_settings(broker.url, topic, tmp_path), exclude=[]
    )
    with TestClient(app, headers={"user-agent": "Mozilla/5.0 Firefox/128.0"}) as client:
        for i in range(120):
            assert client.get(f"/posts/{i % 6}").status_code == 200
        producer = _producer(app)
        assert isinstance(producer, DeliveryProcess)
        child = wait_until(lambda: producer.pid, timeout=60, what="the delivery process")
        assert child != os.getpid() and child in _children(os.getpid())
        assert client.portal.call(producer.flush, 30)  # type: ignore[union-attr]
        assert producer.stats.delivered == 120 and producer.pending == 0
    assert not _alive(child), "the child ends with the app"
    footprints = asyncio.run(_consume(broker.bootstrap, topic, 120, timeout=30))
    assert _links(footprints) == Counter({f"/posts/{i}": 20 for i in range(6)})
    assert len({f["event_id"] for f in footprints}) == 120
    first = Footprint.model_validate(footprints[0])
    assert (first.browser, first.site, len(first.visitor_id)) == ("Firefox", "testserver", 16)


def _producer(app: FastAPI) -> DeliveryProcess:
    """The middleware's producer, from the app's built middleware stack."""
    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, FootprintMiddleware):
        layer = getattr(layer, "app", None)
    assert isinstance(layer, FootprintMiddleware)
    producer = layer.producer
    assert isinstance(producer, DeliveryProcess)
    return producer


def test_a_child_killed_is_replaced_and_requests_never_fail(
    apache_kafka: KafkaCluster, tmp_path: Path
) -> None:
    broker = apache_kafka
    topic = "delivery-process-kill"
    app = host_app()
    app.add_middleware(FootprintMiddleware, settings=_settings(broker.url, topic, tmp_path))
    with TestClient(app) as client:
        assert client.get("/posts/0").status_code == 200
        producer = _producer(app)
        assert client.portal.call(producer.flush, 30)  # type: ignore[union-attr]
        first = wait_until(lambda: producer.pid, timeout=60, what="the delivery process")
        os.kill(first, signal.SIGKILL)
        # Requests while no child runs are served, and wait in the API process.
        statuses = [client.get(f"/posts/{1 + i % 3}").status_code for i in range(60)]
        assert statuses == [200] * 60
        wait_until(
            lambda: producer.pid not in (None, first), timeout=30, what="a new delivery process"
        )
        assert producer.started == 2
        assert client.portal.call(producer.flush, 30)  # type: ignore[union-attr]
    footprints = asyncio.run(_consume(broker.bootstrap, topic, 61, timeout=30))
    assert _links(footprints) == Counter(
        {"/posts/0": 1, "/posts/1": 20, "/posts/2": 20, "/posts/3": 20}
    )


@pytest.mark.parametrize(
    "how", ["api-killed", "api-killed-broker-down", "ctrl-c-to-the-group", "sigterm-to-the-group"]
)
def test_the_child_delivers_what_it_holds_when_the_api_process_ends(
    broker: Broker, tmp_path: Path, how: str
) -> None:
    """A uvicorn host killed with SIGKILL: the child sees its pipe close and delivers what it
    was handed (or, with the broker down, spools it). Or Ctrl-C as a terminal sends it, to the
    whole process group: the child ignores it and the app's shutdown stops it; SIGTERM to the
    group, as a service manager sends it: the same. Every footprint served reaches the topic or
    the spool."""
    topic = f"delivery-process-{tmp_path.name}"
    broker_down = how.endswith("broker-down")
    port = free_port()
    env = {
        **os.environ,
        "FOOTPRINT_KAFKA_URL": f"kafka://127.0.0.1:{free_port()}" if broker_down else broker.url,
        "FOOTPRINT_FOOTPRINTS_TOPIC": topic,
        "FOOTPRINT_DATA_DIR": str(tmp_path),
        "FOOTPRINT_DELIVERY_PROCESS": "true",
        "FOOTPRINT_REDIS_URL": "",
    }
    argv = [sys.executable, "-m", "uvicorn", "--factory", f"{__name__}:tracked_site"]
    argv += ["--port", str(port), "--log-level", "warning"]
    log = (tmp_path / "host.log").open("wb")
    host = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _up(url), timeout=60, what="the host app")
        with httpx.Client(base_url=url) as client:
            for i in range(200):
                assert client.get(f"/posts/{i % 4}").status_code == 200
        (child,) = _children(host.pid)
        if how.startswith("api-killed"):
            # A SIGKILL loses what the API process holds (the captures of its last 20 ms, as
            # its own producer's buffer would be): let the hand-over happen first.
            time.sleep(1.0)
            host.kill()
        else:
            # Ctrl-C in a terminal; SIGTERM from `docker stop` or systemd (KillMode=mixed or
            # control-group): the whole group gets it, the child waits for its pipe to close.
            sig = signal.SIGINT if how.startswith("ctrl-c") else signal.SIGTERM
            os.killpg(host.pid, sig)
        code = host.wait(30)
        if how.startswith("api-killed"):
            assert code == -signal.SIGKILL
        else:  # uvicorn shuts down, then ends by the signal it caught (a SIGTERM's -15)
            assert code in (0, -signal.SIGTERM), code
        wait_until(lambda: not _alive(child), timeout=30, what="the delivery process to end")
    finally:
        if host.poll() is None:
            host.kill()
        log.close()
    spooled = [
        Footprint.from_bytes(line).model_dump()
        for segment in Spool(tmp_path / "spool").segments()
        for line in segment.read_bytes().splitlines()
    ]
    # What the child could not deliver within its stop timeout (a broker slow to create the
    # topic on a loaded machine, or down) it spooled: each footprint is in one place, once.
    delivered = [] if broker_down else _on_topic(broker.bootstrap, topic, 200 - len(spooled))
    footprints = delivered + spooled
    assert _links(footprints) == Counter({f"/posts/{i}": 50 for i in range(4)}), (
        tmp_path / "host.log"
    ).read_text()
    assert len({f["event_id"] for f in footprints}) == 200


def _on_topic(bootstrap: str, topic: str, want: int) -> list[dict]:
    """The footprints on ``topic`` (none when nothing ever created it)."""
    if not want:
        return []
    try:
        return asyncio.run(_consume(bootstrap, topic, want, timeout=30))
    except UnknownTopicOrPartitionError:
        return []


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200  # not recorded
    except httpx.HTTPError:
        return False


def test_with_the_broker_down_the_child_spools_every_footprint(tmp_path: Path) -> None:
    dead = f"kafka://127.0.0.1:{free_port()}"
    app = host_app()
    app.add_middleware(FootprintMiddleware, settings=_settings(dead, "nowhere", tmp_path))
    began = time.monotonic()
    with TestClient(app) as client:
        statuses = [client.get(f"/posts/{i % 5}").status_code for i in range(150)]
        producer = _producer(app)
        wait_until(lambda: producer.pid is not None, timeout=30, what="the delivery process")
    assert statuses == [200] * 150
    assert time.monotonic() - began < 40  # the stop's 5 s, the child's start and exit
    lines = [
        line
        for segment in Spool(tmp_path / "spool").segments()
        for line in segment.read_bytes().splitlines()
    ]
    assert _links([Footprint.from_bytes(line).model_dump() for line in lines]) == Counter(
        {f"/posts/{i}": 30 for i in range(5)}
    )


def test_where_no_child_can_start_footprints_are_sent_from_the_api_process(
    apache_kafka: KafkaCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child that dies as it starts (here: a command that exits at once; in life, a Python
    that cannot import Footprint) is tried a few times, then the API process builds and sends
    the footprints itself: none is lost for want of a child."""
    topic = f"delivery-process-{tmp_path.name}"
    failing = [sys.executable, "-c", "import sys; sys.exit(3)"]
    monkeypatch.setattr(DeliveryProcess, "_argv", lambda self: failing)
    app = host_app()
    app.add_middleware(FootprintMiddleware, settings=_settings(apache_kafka.url, topic, tmp_path))
    with TestClient(app) as client:
        before = [client.get(f"/posts/{i % 2}").status_code for i in range(40)]
        producer = _producer(app)
        wait_until(lambda: producer.fallback is not None, timeout=30, what="the fallback")
        assert producer.started == 3 and producer.pid is None
        after = [client.get(f"/posts/{2 + i % 2}").status_code for i in range(40)]
        assert before + after == [200] * 80
        # Records built on the request path (a full queue) go to the same producer.
        built = Footprint(method="GET", link="/built-here", footprint_time=datetime.now(UTC))
        producer.offer_records([to_record(built)])
        assert client.portal.call(producer.flush, 30)  # type: ignore[union-attr]
        assert producer.stats.delivered == 81 and producer.pending == 0
    footprints = asyncio.run(_consume(apache_kafka.bootstrap, topic, 81, timeout=30))
    assert _links(footprints) == Counter(
        {"/built-here": 1, **{f"/posts/{i}": 20 for i in range(4)}}
    )


# A child that says it is ready, lets batches fill its pipe, confirms none and exits.
_VANISHING_CHILD = """
import os, pickle, struct, sys, time
body = pickle.dumps(("ready", os.getpid()), protocol=5)
sys.stdout.buffer.write(struct.pack(">I", len(body)) + body)
sys.stdout.buffer.flush()
time.sleep(1.5)
"""


def test_batches_a_dead_child_never_confirmed_go_to_the_next_one_once(
    apache_kafka: KafkaCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"delivery-process-{tmp_path.name}"
    real = DeliveryProcess._argv
    children = iter([[sys.executable, "-c", _VANISHING_CHILD]])
    monkeypatch.setattr(DeliveryProcess, "_argv", lambda self: next(children, None) or real(self))
    app = host_app()
    app.add_middleware(FootprintMiddleware, settings=_settings(apache_kafka.url, topic, tmp_path))
    with TestClient(app) as client:
        producer = _producer(app)
        first = wait_until(lambda: producer.pid, timeout=30, what="the first child")
        for i in range(50):
            assert client.get(f"/posts/{i % 5}").status_code == 200
            time.sleep(0.01)  # several batches, written into the first child's pipe
        wait_until(lambda: producer.pid not in (None, first), timeout=60, what="the next child")
        assert client.portal.call(producer.flush, 30)  # type: ignore[union-attr]
        assert producer.started == 2
    footprints = asyncio.run(_consume(apache_kafka.bootstrap, topic, 50, timeout=30))
    assert _links(footprints) == Counter({f"/posts/{i}": 10 for i in range(5)})
    assert len({f["event_id"] for f in footprints}) == len(footprints) == 50
