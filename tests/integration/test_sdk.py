"""The host SDK installs beside any app: a FastAPI site with its own ``api``, ``streams`` and
``schemas`` packages uses ``footprint.middleware`` and its footprints reach Kafka."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from footprint.producer import FootprintProducer
from tests.integration.traffic import consume_all

pytestmark = pytest.mark.integration

# The host's own packages, named like Footprint's service packages. Any import of one of those
# names from Footprint's SDK would load these and fail loudly.
HOST_FILES = {
    "api/__init__.py": "NAME = 'host api'\n",
    "api/routes.py": """
        from fastapi import APIRouter

        router = APIRouter()


        @router.get("/posts/{post_id}")
        async def post(post_id: int) -> dict[str, int]:
            return {"post": post_id}
    """,
    "api/middleware.py": "raise ImportError('the host app has no middleware module')\n",
    "api/producer.py": "raise ImportError('the host app has no producer module')\n",
    "streams/__init__.py": "NAME = 'host streams'\n",
    "schemas/__init__.py": "NAME = 'host schemas'\n",
    "schemas/footprint.py": "raise ImportError('the host app has no footprint schema')\n",
    "main.py": """
        import sys

        from fastapi import Depends, FastAPI
        from fastapi.testclient import TestClient

        import api
        import schemas
        import streams
        from api.routes import router
        from footprint.middleware import FootprintMiddleware, no_footprint
        from footprint.producer import FootprintProducer
        from footprint.schema import Footprint
        from footprint.settings import load_settings

        app = FastAPI()
        app.include_router(router)


        @app.get("/account", dependencies=[Depends(no_footprint)])
        async def account() -> dict[str, str]:
            return {"private": "yes"}


        kafka_url, topic, data_dir = sys.argv[1:4]
        settings = load_settings(kafka_url=kafka_url, footprints_topic=topic, data_dir=data_dir)
        app.add_middleware(FootprintMiddleware, settings=settings)
        with TestClient(app) as client:
            for i in range(5):
                assert client.get(f"/posts/{i}").json() == {"post": i}
            assert client.get("/account").status_code == 200
        # The host's packages are the host's; Footprint's SDK came from footprint alone.
        names = (api.NAME, schemas.NAME, streams.NAME)
        assert names == ("host api", "host schemas", "host streams")
        assert FootprintProducer.__module__ == "footprint.producer"
        assert Footprint.__module__ == "footprint.schema"
        print("served", flush=True)
    """,
}


def test_a_host_app_with_its_own_api_streams_and_schemas_packages_uses_the_sdk(
    env: dict[str, str], tmp_path: Path
) -> None:
    host = tmp_path / "host"
    for name, text in HOST_FILES.items():
        path = host / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    topic = env["FOOTPRINT_FOOTPRINTS_TOPIC"]
    run = subprocess.run(
        [sys.executable, "main.py", env["FOOTPRINT_KAFKA_URL"], topic, str(tmp_path / "spool")],
        cwd=host,  # the host's packages come first on sys.path, as in any app
        env={"PATH": "/usr/bin:/bin"},  # no FOOTPRINT_* variables: the host passes settings
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().endswith("served")

    bootstrap = env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://")
    want = [f"/posts/{i}" for i in range(5)]  # /account opted out
    links = _links(bootstrap, topic)
    if sorted(links) != want:
        # The host's stop gives the producer 5 s; on a loaded machine the rest may be in the
        # spool, which the next start of the host sends. Nothing may be missing from both.
        spool = tmp_path / "spool" / "spool"
        assert any(spool.glob("*")), f"on the topic {links}, and nothing spooled"
        assert asyncio.run(_send_spool(bootstrap, topic, spool)), "the spool was not delivered"
        links = _links(bootstrap, topic)
        assert sorted(set(links)) == want  # at least once: a spooled record may be there twice
        return
    assert sorted(links) == want


def _links(bootstrap: str, topic: str) -> list[str]:
    """The links of every footprint on the topic (up to one message per footprint: the
    producer packs what it sends together)."""
    links = []
    for record in consume_all(bootstrap, topic, want=5, timeout=10):
        body = json.loads(record.value)
        links += [item["link"] for item in (body if isinstance(body, list) else [body])]
    return links


async def _send_spool(bootstrap: str, topic: str, spool: Path) -> bool:
    """What the host's next start does with its spool: deliver it."""
    producer = FootprintProducer(bootstrap, topic, spool_dir=spool)
    await producer.start()
    try:
        return await producer.flush(60)
    finally:
        await producer.stop()
