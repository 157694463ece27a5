"""Windowed visit counts in Faust tables, per link and per source partition (site-wide).

A value is ``[count, last_applied_offset]``. Every key lives on one source partition (links are
the message key; site-wide keys *are* the partition), so remembering the last offset applied
makes each update idempotent: events re-read after a crash are recognised and not re-counted.
Site-wide totals are kept per partition because a key must belong to a single changelog
partition; the API sums them.
"""

import faust
from faust.types import TableT

from footprint.settings import get_settings
from footprint.windows import WINDOWS, retention_seconds
from streams.app import app
from streams.counting import DERIVED

__all__ = ["NOTIFY_PROGRESS", "PROGRESS", "SITE_VISITS", "VISITS"]

_settings = get_settings()


def _windowed(name: str, window: str) -> TableT:
    table = app.Table(
        name,
        default=None,
        partitions=_settings.partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
        help=f"{window} visit counts: {name}",
    )
    spec = WINDOWS[window]
    expires = retention_seconds(window)
    size, step = spec.size, spec.step  # type: ignore[attr-defined]
    # The wrapper sets table.window (used for expiry and for restoring tuple keys); the agent
    # writes ``(key, window_range)`` keys itself, per batch.
    if size == step:
        table.tumbling(size, expires=expires)
    else:
        table.hopping(size, step, expires=expires)
    return table


# A window in DERIVED has no table: its counts are sums of another's (streams/counting.py).
VISITS: dict[str, TableT] = {w: _windowed(f"visits-{w}", w) for w in WINDOWS if w not in DERIVED}

# Per source partition: {"applied": offset, "inflight": offset}; see streams/progress.py.
PROGRESS: TableT = app.Table(
    "progress",
    default=None,
    partitions=_settings.partitions,
    schema=faust.Schema(key_serializer="json", value_serializer="json"),
    help="how far each footprints partition has been written to the stores",
)
SITE_VISITS: dict[str, TableT] = {
    w: _windowed(f"site-visits-{w}", w) for w in WINDOWS if w not in DERIVED
}

# Per notifications partition: {"applied": offset}, for the notifications agent's GapGuard.
NOTIFY_PROGRESS: TableT = app.Table(
    "notify-progress",
    default=None,
    partitions=_settings.partitions,
    schema=faust.Schema(key_serializer="json", value_serializer="json"),
    help="how far each notifications partition has been stored and fanned out",
)
