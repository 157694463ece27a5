"""Find the items a store refuses by splitting the batch in halves, as many times as needed.

A store that refuses a batch (``StoreRefused``) says nothing of which items it minds. The
batch is split in two and each half written; a refused half is split again, until each refused
item is alone. With k refused items among n that is at most about 2·k·log2(n) writes besides
the first, and every accepted item is written exactly once: a refused write stored nothing
(PostgreSQL's transaction), or the sink checks what it may already hold (ClickHouse).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from streams.sinks.base import Batch, StoreRefused

__all__ = ["Isolated", "isolate", "isolate_batch"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Isolated(Generic[T, R]):
    """What ``isolate`` found: each accepted write's result, and each refused item alone."""

    results: list[R] = field(default_factory=list)
    refused: list[tuple[T, StoreRefused]] = field(default_factory=list)
    writes: int = 0


async def isolate(
    items: Sequence[T], write: Callable[[Sequence[T]], Awaitable[R]]
) -> Isolated[T, R]:
    """Write ``items``; on a refusal split the refused part in halves until it is one item.

    ``write`` raises ``StoreRefused`` for data the store will never take (it retries outages
    itself); any other exception propagates.
    """
    found: Isolated[T, R] = Isolated()

    async def attempt(chunk: Sequence[T]) -> None:
        found.writes += 1
        try:
            found.results.append(await write(chunk))
        except StoreRefused as e:
            if len(chunk) == 1:
                found.refused.append((chunk[0], e))
                return
            middle = len(chunk) // 2
            await attempt(chunk[:middle])
            await attempt(chunk[middle:])

    if items:
        await attempt(items)
    return found


async def isolate_batch(
    batch: Batch, write: Callable[[Batch], Awaitable[object]]
) -> list[tuple[int, StoreRefused]]:
    """``isolate`` over a batch's footprints; return the index of each refused one.

    A refused write may have stored part of the batch (ClickHouse inserts month by month), so
    every smaller write holds the whole batch's footprints as in doubt: the sink checks which
    it already has before inserting, and none is inserted twice.
    """
    whole = batch.in_doubt | {fp.event_id for fp in batch.footprints if fp.event_id}

    def part(indexes: Sequence[int]) -> Batch:
        if len(indexes) == len(batch.footprints):
            return batch
        return replace(
            batch,
            footprints=[batch.footprints[i] for i in indexes],
            sources=[batch.sources[i] for i in indexes] if batch.sources else (),
            in_doubt=whole,
        )

    found = await isolate(range(len(batch.footprints)), lambda indexes: write(part(indexes)))
    return found.refused
