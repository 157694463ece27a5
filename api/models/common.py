"""What the answers' models share."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, WithJsonSchema

__all__ = ["Answer", "IsoTime"]


class Answer(BaseModel):
    """A JSON answer built by the API itself: exactly these fields.

    A field a route starts to return without being described here fails the response (500 in
    every test that calls the route) instead of being silently left out of the answer.
    """

    model_config = ConfigDict(extra="forbid")


# Kept as the route's own isoformat() text (``+00:00``, the requested zone's offset): a datetime
# field would render it again (``Z``) and change answers clients already read.
IsoTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
