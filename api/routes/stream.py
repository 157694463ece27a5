"""Stream processing status: workers, committed offsets and lag, the API's own producer, the
community events' outbox."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status

from api.auth import AdminUser, AllSitesReader
from api.deps import KafkaOffsetsDep, OutboxDep, ProducerDep, RedisDep, SettingsDep
from api.models.errors import errors
from api.models.stream import DeadLetters, StreamStatus
from api.stream_status import outbox_status, recent_dead_letters, worker_heartbeats

router = APIRouter(prefix="/api/stream", tags=["stream"], responses=errors(401, 403))

ALIVE_SECONDS = 10.0
# A store's state across workers is the worst any live worker reports: a bug of the worker's
# own code is not an outage of the store, and the two call for different people.
_SEVERITY = {"ok": 0, "unavailable": 1, "bug": 2}


def store_states(workers: list[dict[str, Any]]) -> dict[str, str]:
    """Each store's worst state among ``workers``: ``ok``, ``unavailable`` or ``bug``."""
    worst: dict[str, str] = {}
    for worker in workers:
        for store, state in (worker.get("sinks") or {}).items():
            if _SEVERITY.get(state, 1) >= _SEVERITY.get(worst.get(store, "ok"), 0):
                worst[store] = state
    return worst


@router.get("/status", response_model=StreamStatus)
async def stream_status(
    _reader: AllSitesReader,
    redis: RedisDep,
    offsets: KafkaOffsetsDep,
    producer: ProducerDep,
    relay: OutboxDep,
    request: Request,
) -> dict[str, Any]:
    """Is a worker alive, how far behind is it, what failed last, what waits in the outbox."""
    errors: dict[str, str] = {}
    # Read before the offsets: an empty outbox then means every event is counted in the lag.
    try:
        outbox: dict[str, Any] | None = await outbox_status(relay)
    except Exception as e:
        outbox, errors["postgres"] = None, f"{type(e).__name__}: {e}"
    try:
        workers = await worker_heartbeats(redis)
    except Exception as e:
        workers, errors["redis"] = [], str(e)
    try:
        partitions = await offsets.partitions()
    except Exception as e:
        partitions, errors["kafka"] = [], f"{type(e).__name__}: {e}"
    alive = [w for w in workers if w.get("age_seconds", 1e9) < ALIVE_SECONDS]
    last_errors = [w for w in workers if w.get("last_error")]
    last = max(last_errors, key=lambda w: w.get("last_error_at") or 0, default=None)
    bugs = [w for w in workers if w.get("last_bug")]
    last_bug = max(bugs, key=lambda w: w.get("last_bug_at") or 0, default=None)
    return {
        "worker_alive": bool(alive),
        "workers": workers,
        "processed": sum(w.get("processed", 0) for w in workers),
        "dead_lettered": sum(w.get("dead_lettered", 0) for w in workers),
        "duplicates_dropped": sum(w.get("duplicates", 0) for w in workers),
        "notification_events": sum(w.get("notification_events", 0) for w in workers),
        "notifications": sum(w.get("notifications", 0) for w in workers),
        "partitions": partitions,
        "lag": sum(p["lag"] for p in partitions),
        "last_error": last.get("last_error") if last else None,
        "stores": store_states(alive),
        "last_bug": last_bug.get("last_bug") if last_bug else None,
        "producer": {**asdict(producer.stats), "pending": producer.pending},
        "outbox": outbox,
        "refused_unknown_site": request.app.state.sites.refused,
        "errors": errors,
        "checked_at": time.time(),
    }


@router.get(
    "/dead-letters",
    response_model=DeadLetters,
    responses=errors(422, 503, notes={503: "The broker is unavailable"}),
)
async def dead_letters(
    settings: SettingsDep,
    _moderator: AdminUser,
    topic: Annotated[Literal["footprints", "notifications"], Query()] = "footprints",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The most recent dead letters (moderators only): original value, error, source."""
    name = (
        settings.dead_letter_topic
        if topic == "footprints"
        else settings.notifications_dead_letter_topic
    )
    try:
        entries = await recent_dead_letters(settings.kafka_bootstrap, name, limit)
    except Exception as e:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"kafka unavailable: {e}") from e
    return {"topic": name, "entries": entries}
