"""Dead letters: original bytes, reason and source position, on a ``…-dead-letter`` topic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from faust.types import EventT, TopicT
from pydantic import ValidationError

from streams.status import status

__all__ = ["dead_letter", "decode", "decode_many"]

T = TypeVar("T")


def decode(
    events: Sequence[EventT], parse: Callable[[bytes], T], what: str
) -> tuple[list[tuple[EventT, T]], list[tuple[EventT, str]]]:
    """Split a batch into parsed values and (event, reason) for those that do not parse."""
    return decode_many(events, lambda raw: ([parse(raw)], None), what)


def decode_many(
    events: Sequence[EventT],
    parse: Callable[[bytes], tuple[list[T], str | None]],
    what: str,
) -> tuple[list[tuple[EventT, T]], list[tuple[EventT, str]]]:
    """Like ``decode`` for messages holding several values (``parse`` returns the valid ones
    and why others are not): a message with any invalid value is dead-lettered whole, with
    its original bytes, and its valid values are kept as well."""
    good: list[tuple[EventT, T]] = []
    bad: list[tuple[EventT, str]] = []
    for event in events:
        raw = event.value
        try:
            if not isinstance(raw, bytes):
                raise TypeError(f"value is {type(raw).__name__}, not bytes")
            values, problem = parse(raw)
        except ValidationError as e:
            fields = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
                for err in e.errors()
            )
            bad.append((event, f"invalid {what}: {fields}"))
            continue
        except Exception as e:
            bad.append((event, f"undecodable: {type(e).__name__}: {e}"))
            continue
        good += [(event, value) for value in values]
        if problem:
            bad.append((event, f"invalid {what}: {problem}"))
    return good, bad


async def dead_letter(topic: TopicT, event: EventT, reason: str) -> None:
    """Send ``event`` to ``topic`` and wait until the broker has it."""
    msg = event.message
    headers = {
        "error": reason[:2000].encode(),
        "source-topic": msg.topic.encode(),
        "source-partition": str(msg.partition).encode(),
        "source-offset": str(msg.offset).encode(),
    }
    # A tombstone (null value) stays null; anything else not bytes is kept as its text.
    value = event.value if isinstance(event.value, bytes | None) else str(event.value).encode()
    key = event.key if isinstance(event.key, bytes | None) else str(event.key).encode()
    # force=True: send now, not attached to the (batched) current event's acknowledgement.
    fut = await topic.send(key=key, value=value, headers=headers, force=True)
    await fut
    status.dead_lettered += 1
