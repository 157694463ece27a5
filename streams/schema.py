"""``RawSchema``: the schema of the worker's topics, whose keys and values are raw bytes.

Faust decodes every message through its serializer registry: the key and the value each go
through a codec lookup and the ``raw`` codec, and the event is built through the app's settings
registry (``App.create_event``): ~9 % of the worker's time on a topic of one footprint per
message (profiled). For raw bytes all of that returns the message's own key and value, so
``RawSchema.compile`` builds the event from them directly, with the app's ``Event`` class read
once. The agents validate the values themselves (``footprint/wire.py``, ``schemas/``).

Sending is unchanged: ``Schema.dumps_key`` / ``dumps_value`` with the ``raw`` serializers.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import AppT, Message

__all__ = ["RawSchema"]


class RawSchema(faust.Schema):  # type: ignore[misc]  # faust.Schema is untyped
    """Keys and values as the broker gave them (bytes or None), without a codec."""

    def __init__(self) -> None:
        super().__init__(key_serializer="raw", value_serializer="raw")

    def compile(self, app: AppT, **_: Any) -> Any:
        """The topic's decode function: an event of the message's own key and value.

        Faust's keyword arguments (decode-error callbacks, ``default_propagate``) are accepted
        and unused: nothing here can fail to decode.
        """
        event_class: Any = app.conf.Event

        async def decode(message: Message, *, propagate: bool = False) -> Any:
            return event_class(app, message.key, message.value, message.headers, message)

        return decode
