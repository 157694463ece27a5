"""Stream buffers bounded in bytes as well as in messages: ``ByteBoundedQueue``.

Faust's fetcher puts each message's event in its channel's queue, and waits while the queue is
full; a queue is bounded in messages (``stream_buffer_maxsize``, or a topic's ``maxsize``).
While the footprint agent holds a batch, its next batch collects in that queue. With one
footprint per message, a queue as large as a batch lets the whole next batch be fetched while
the pass waits for PostgreSQL, instead of 4,096 messages (Faust's default) and the rest after
the pass: 19,896-22,134 -> 21,096-23,605 footprints/s on 200,000 single footprints (Tansu, A/B
of six pairs). A count alone cannot bound memory, though: 20,000 packs of 400 footprints
would be gigabytes. So every queue is also full once the values it holds add up to
``max_bytes`` (``FOOTPRINT_BATCH_MAX_BYTES``, the bound of a batch): the fetcher then waits as
it does for a full queue, and the worker holds at most two batches' worth of messages.
"""

from __future__ import annotations

from typing import Any

from mode.utils.queues import ThrowableQueue

__all__ = ["ByteBoundedQueue", "value_size"]


def value_size(item: Any) -> int:
    """The bytes of an event's value (0 when it is not bytes, e.g. a decoded changelog value)."""
    value = getattr(item, "value", None)
    return len(value) if isinstance(value, bytes) else 0


class ByteBoundedQueue(ThrowableQueue):  # type: ignore[misc]  # mode's queue is untyped here
    """Faust's channel queue, also full once the values it holds reach ``max_bytes``.

    ``asyncio.Queue`` moves every item through ``_put`` and ``_get`` and checks ``full()``
    before each put (and again when a waiting put is woken): counting the bytes there bounds
    every way in and out, Faust's ``force_put_nowait`` included. A put that finds the queue
    not full is taken whatever its size, so the bound can be passed by one message.
    """

    def __init__(self, *args: Any, max_bytes: int, **kwargs: Any) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        super().__init__(*args, **kwargs)

    def _put(self, item: Any) -> None:
        super()._put(item)
        self.bytes += value_size(item)

    def _get(self) -> Any:
        item = super()._get()
        self.bytes -= value_size(item)
        return item

    def full(self) -> bool:
        return bool(super().full()) or self.bytes >= self.max_bytes

    def clear(self) -> None:
        super().clear()
        self.bytes = 0
