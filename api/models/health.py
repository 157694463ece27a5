"""``GET /health``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.models.common import Answer

__all__ = ["Health"]


class Health(Answer):
    """The API process is up."""

    status: Literal["ok"] = Field(description="Always ok: an answer at all means alive.")
    kafka_connected: bool = Field(description="Whether the producer reaches the broker now.")
    pending_footprints: int = Field(
        description="Footprints accepted but not yet acknowledged by the broker (memory and disk)."
    )
