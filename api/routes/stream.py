"""Stream processing status: workers, committed offsets and lag, the API's own producer."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status

from api.auth import AdminUser, StatsReader
from api.deps import KafkaOffsetsDep, ProducerDep, RedisDep, SettingsDep
from api.stream_status import recent_dead_letters, worker_heartbeats

router = APIRouter(prefix="/api/stream", tags=["stream"])

ALIVE_SECONDS = 10.0


@router.get("/status")
async def stream_status(
    _reader: StatsReader, redis: RedisDep, offsets: KafkaOffsetsDep, producer: ProducerDep
) -> dict[str, Any]:
    """Is a worker alive, how far behind is it, what failed last (stats credential)."""
    errors: dict[str, str] = {}
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
        "producer": {**asdict(producer.stats), "pending": producer.pending},
        "errors": errors,
        "checked_at": time.time(),
    }


@router.get("/dead-letters")
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
