"""``POST /api/footprints``."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from api.models.common import Answer

__all__ = ["Accepted"]


class Accepted(Answer):
    """Footprints taken for counting and storing (asynchronously: not stored yet)."""

    accepted: int = Field(description="How many footprints the body held.")
    event_ids: list[UUID] = Field(description="Each footprint's event id, in the body's order.")
