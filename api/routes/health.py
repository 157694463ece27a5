"""Liveness of the API process."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ProducerDep
from api.models.health import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health(producer: ProducerDep) -> dict[str, Any]:
    """The API is up; how many footprints wait for the broker."""
    return {
        "status": "ok",
        "kafka_connected": producer.stats.connected,
        "pending_footprints": producer.pending,
    }
