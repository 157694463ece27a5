"""The Quix Streams peer: Footprint's job written as a Quix Streams application.

A 1-minute tumbling count per link (``.current()``: every update, as Footprint's live counts)
and/or Quix's own ``PostgreSQLSink`` writing the footprints into ``user_footprint``. It runs in
its own virtual environment (``bench/requirements-quix.txt``): Quix Streams pins older pydantic
and confluent-kafka than Footprint uses, and installed beside the product it would downgrade
what the worker is measured with. So this file imports only the standard library and Quix.

``python bench/quix_app.py CONFIG.json RESULT.json``: CONFIG has ``bootstrap``, ``topic``,
``events``, ``group``, ``state_dir``, ``timeout``, ``window`` (bool), ``postgres`` (libpq
keywords, or null for no sink) and ``consumer`` (extra librdkafka settings). RESULT gets the
monotonic times (``perf_counter``) and process CPU times of the first record, the last window
update and the last sink write, and the window counts.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta
from typing import Any

from quixstreams import Application
from quixstreams.sinks.community.postgresql import PostgreSQLSink


class TimedSink(PostgreSQLSink):
    """Quix's PostgreSQL sink, noting when its last batch reached PostgreSQL."""

    last_write: float | None = None
    cpu_at_write: float | None = None

    def write(self, batch: Any) -> None:
        super().write(batch)
        self.last_write = time.perf_counter()
        self.cpu_at_write = time.process_time()


def main(config_path: str, result_path: str) -> int:
    """Run the application until it has read ``events`` records; write what it saw."""
    with open(config_path) as f:
        config = json.load(f)
    n = int(config["events"])
    app = Application(
        broker_address=config["bootstrap"],
        consumer_group=config["group"],
        auto_offset_reset="earliest",
        state_dir=config["state_dir"],
        loglevel="WARNING",
        consumer_extra_config=config.get("consumer") or None,
    )
    marks: dict[str, float] = {}
    seen = 0
    counts: dict[str, int] = {}

    def first_and_last(value: dict[str, Any]) -> None:
        nonlocal seen
        if not seen:
            marks["first"] = time.perf_counter()
            marks["cpu_first"] = time.process_time()
        seen += 1
        if seen == n:
            # Stop after this message: Quix then runs its last checkpoint (sink flush, state,
            # offsets) before run() returns.
            app.stop()

    def note_window(value: dict[str, Any], key: str, *_: Any) -> None:
        # .current() emits the window's count after each footprint: the last one is the count.
        counts[f"{key}\t{value['start']}"] = value["value"]
        marks["last_window"] = time.perf_counter()
        marks["cpu_at_window"] = time.process_time()

    source = app.topic(config["topic"], key_deserializer="str", value_deserializer="json")
    sdf = app.dataframe(source)
    sdf = sdf.update(first_and_last)
    sink: TimedSink | None = None
    if config["postgres"]:
        sink = TimedSink(
            **config["postgres"],
            table_name="user_footprint",
            # Footprint's own table as it is: no added columns, a replay skips stored ids.
            schema_auto_update=False,
            include_metadata=False,
            on_conflict_do_nothing=True,
        )
        sdf.sink(sink)
    if config["window"]:
        windows = sdf.tumbling_window(timedelta(minutes=1)).count().current()
        windows.update(note_window, metadata=True)
    app.run(collect=False, timeout=float(config["timeout"]))
    result = {
        "seen": seen,
        "first": marks.get("first"),
        "last_window": marks.get("last_window"),
        "last_write": sink.last_write if sink else None,
        "returned": time.perf_counter(),
        # CPU time of every thread of this process (librdkafka's included).
        "cpu_first": marks.get("cpu_first"),
        "cpu_at_window": marks.get("cpu_at_window"),
        "cpu_at_write": sink.cpu_at_write if sink else None,
        "counts": counts,
    }
    with open(result_path, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
