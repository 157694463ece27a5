"""The OpenAPI document shows every answer's shape, and the shapes match what the code builds.

``app.openapi()`` is walked as a client (or schemathesis) reads it, so that a route added later
without a response model fails here. No servers: the lifespan does not run.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi import FastAPI

from api.main import create_app
from api.models.notifications import Notification, NotificationType
from api.models.stream import ProducerStatus, RelayStatus, WorkerHeartbeat
from api.outbox import RelayStats
from footprint.inbox import as_dict
from footprint.producer import ProducerStats
from schemas.community import EVENT_TYPES, CreatePost, PenaltyUser
from streams.status import WorkerStatus
from tests.unit.offline import offline_settings

JSON = "application/json"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return create_app(offline_settings(tmp_path))


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def shapeless(spec: dict[str, Any], schema: dict[str, Any] | None) -> str | None:
    """Why a JSON answer's schema does not say what comes back (None: it does)."""
    schema = _resolve(spec, schema or {})
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        reasons = [shapeless(spec, branch) for branch in branches]
        return next((r for r in reasons if r), None)
    if schema.get("type") == "array":
        return shapeless(spec, schema.get("items"))
    if not schema.get("properties"):
        return f"no fields declared: {json.dumps(schema)[:120]}"
    return None


def unshaped_answers(spec: dict[str, Any]) -> list[str]:
    """Each operation whose 2xx answer the document does not describe, with why."""
    found = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for code, response in op["responses"].items():
                if not str(code).startswith("2") or str(code) == "204":
                    continue
                where = f"{method.upper()} {path} {code}"
                content = response.get("content")
                if not content:
                    found.append(f"{where}: no content declared")
                for media, body in (content or {}).items():
                    if not body.get("schema"):
                        found.append(f"{where} {media}: no schema")
                    elif media == JSON and (why := shapeless(spec, body["schema"])):
                        found.append(f"{where}: {why}")
    return found


def test_every_answer_of_every_operation_has_a_shape(app: FastAPI) -> None:
    spec = app.openapi()
    assert not unshaped_answers(spec), "\n".join(unshaped_answers(spec))
    # The walk did see the operations it is meant to check.
    for path in ("/health", "/api/stats/summary", "/api/stream/status", "/api/notifications"):
        assert spec["paths"][path]["get"]["responses"]["200"]["content"][JSON]["schema"]


def test_a_route_added_without_a_model_is_caught(app: FastAPI) -> None:
    @app.get("/api/unshaped")
    async def unshaped() -> dict[str, Any]:
        return {"anything": 1}

    @app.get("/api/nothing", response_model=None)
    async def nothing() -> Any:
        return {}

    app.openapi_schema = None
    found = unshaped_answers(app.openapi())
    assert [f.split(":")[0] for f in found] == [
        "GET /api/unshaped 200",  # an open object: no fields declared
        "GET /api/nothing 200 application/json",  # no schema at all
    ], found


# Operations in another product's shape, whose invalid input is answered 400 as there.
INVALID_IS_400 = {("post", "/api/event")}  # Plausible's Events API


def test_guarded_and_validated_operations_declare_their_errors(app: FastAPI) -> None:
    spec = app.openapi()
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            declared = set(op["responses"])
            needs = set()
            if op.get("security"):
                needs.add("401")
                challenge = op["responses"].get("401", {}).get("headers", {})
                if "WWW-Authenticate" not in challenge:
                    missing.append(f"{method.upper()} {path}: 401 without WWW-Authenticate")
            if op.get("parameters") or op.get("requestBody"):
                needs.add("400" if (method, path) in INVALID_IS_400 else "422")
            if op.get("requestBody"):
                needs.add("413")  # the body limit applies before the route
            missing += [f"{method.upper()} {path}: {code}" for code in sorted(needs - declared)]
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")) and not response.get("content", {}).get(JSON):
                    missing.append(f"{method.upper()} {path}: {code} without a JSON shape")
    assert not missing, "\n".join(missing)


# The parts the routes copy from dataclasses of other modules (asdict): a field added there must
# be described here, or the answer would fail its model.


def _fields(cls: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_status_models_have_the_fields_of_what_they_describe() -> None:
    assert set(ProducerStatus.model_fields) == _fields(ProducerStats) | {"pending"}
    assert set(RelayStatus.model_fields) == _fields(RelayStats)
    assert set(WorkerHeartbeat.model_fields) == _fields(WorkerStatus) | {
        "heartbeat_at",
        "age_seconds",
    }
    assert get_args(NotificationType) == EVENT_TYPES


def _round_trip(model: Any, answer: dict[str, Any]) -> dict[str, Any]:
    return json.loads(model.model_validate(answer).model_dump_json())


def test_models_pass_what_the_code_builds_unchanged() -> None:
    worker = WorkerStatus(worker_id="host:1", processed=3, sinks={"postgres": "ok"})
    worker.failed("clickhouse", "refused", 2)
    worker.bug("boom")
    beat = {**json.loads(worker.to_json()), "age_seconds": 0.25}
    assert _round_trip(WorkerHeartbeat, beat) == beat
    producer = {**dataclasses.asdict(ProducerStats(offered=2, last_error="x")), "pending": 1}
    assert _round_trip(ProducerStatus, producer) == producer
    for event in (
        CreatePost(actor_id="ann", post_id=7, title="<b>hi</b>"),
        PenaltyUser(actor_id="mod", user_id="bob", reason="spam"),
    ):
        created = datetime(2026, 11, 22, 9, 30, 0, 123456, tzinfo=UTC)
        row = (1, "bob", event.type, event.model_dump(mode="json"), False, created)
        notification = as_dict(row)
        assert _round_trip(Notification, notification) == notification
