"""Dead letters: original bytes, reason and source position, on a ``…-dead-letter`` topic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from faust.types import EventT, TopicT
from pydantic import ValidationError

from streams.status import status

__all__ = ["dead_letter", "decode", "decode_many"]

T = TypeVar("T")


# A message to dead-letter: the event, the reason, and the bytes to send when only one item of
# the message is bad (None: the message's own bytes).
Bad = tuple[EventT, str, bytes | None]


def decode(
    events: Sequence[EventT], parse: Callable[[bytes], T], what: str
) -> tuple[list[tuple[EventT, T]], list[Bad]]:
    """Split a batch into parsed values and (event, reason, None) for those that do not parse."""
    return decode_many(events, lambda raw: ([parse(raw)], []), what)


def decode_many(
    events: Sequence[EventT],
    parse: Callable[[bytes], tuple[list[T], list[tuple[bytes, str]]]],
    what: str,
) -> tuple[list[tuple[EventT, T]], list[Bad]]:
    """Like ``decode`` for messages holding several values (``parse`` returns the valid ones
    and each invalid one with its reason): an invalid item is dead-lettered alone, as its own
    bytes; a message that is not valid as a whole is dead-lettered with its original bytes."""
    good: list[tuple[EventT, T]] = []
    bad: list[Bad] = []
    for event in events:
        raw = event.value
        try:
            if not isinstance(raw, bytes):
                raise TypeError(f"value is {type(raw).__name__}, not bytes")
            values, invalid = parse(raw)
        except ValidationError as e:
            fields = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
                for err in e.errors()
            )
            bad.append((event, f"invalid {what}: {fields}", None))
            continue
        except Exception as e:
            bad.append((event, f"undecodable: {type(e).__name__}: {e}", None))
            continue
        if len(values) == 1:  # one value per message: the reference site's shape
            good.append((event, values[0]))
        else:
            good += [(event, value) for value in values]
        if invalid:
            bad += [(event, f"invalid {what}: {reason}", item) for item, reason in invalid]
    return good, bad


async def dead_letter(topic: TopicT, event: EventT, reason: str, item: bytes | None = None) -> None:
    """Send ``event`` (or only ``item``, one bad value of it) to ``topic``; wait for the broker."""
    msg = event.message
    headers = {
        "error": reason[:2000].encode(),
        "source-topic": msg.topic.encode(),
        "source-partition": str(msg.partition).encode(),
        "source-offset": str(msg.offset).encode(),
    }
    # A tombstone (null value) stays null; anything else not bytes is kept as its text.
    if item is not None:
        value: bytes | None = item
    else:
        value = event.value if isinstance(event.value, bytes | None) else str(event.value).encode()
    key = event.key if isinstance(event.key, bytes | None) else str(event.key).encode()
    # force=True: send now, not attached to the (batched) current event's acknowledgement.
    fut = await topic.send(key=key, value=value, headers=headers, force=True)
    await fut
    status.dead_lettered += 1
