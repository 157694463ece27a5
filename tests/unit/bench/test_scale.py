"""The scaling benchmark's pure parts: reading a worker's place in the group from its log, the
ratio table, the exactness check and the model for a bigger machine."""

from __future__ import annotations

from typing import Any

import pytest

from bench.scale import LogState, log_state, settled
from bench.scale_report import check, costs, model, ratios, render

TOPIC = "bench-scale-4p-2w-abc"


def _assigned(partitions: str, generation: int = 1) -> str:
    # As Faust 0.15 / aiokafka 0.14 print it at -l info (copied from a worker's log).
    return f"""[2026-11-30 08:22:49,487] [21291] [INFO] Revoking previously assigned partitions set() for group g
[2026-11-30 08:22:54,502] [21291] [INFO] Joined group 'g' (generation {generation}) with member_id faust-x
[2026-11-30 08:22:54,503] [21291] [INFO] Successfully synced group g with generation {generation}
[2026-11-30 08:22:54,504] [21291] [INFO] Setting newly assigned partitions
+Topic Partition Set----------------+------------+
| topic                             | partitions |
+-----------------------------------+------------+
| g-visits-1m-changelog             | {{0-3}}      |
| {TOPIC}             | {partitions}     |
| notifications                     | {{9}}     |
+-----------------------------------+------------+ for group g
[2026-11-30 08:22:54,506] [21291] [INFO] Executing _on_partitions_assigned
"""  # noqa: E501


READY = "[2026-11-30 08:22:55,659] [21290] [INFO] [^---Recovery]: Worker ready\n"


def test_log_state_reads_the_topic_row_not_the_changelogs() -> None:
    state = log_state(_assigned("{1, 3}") + READY, TOPIC)
    assert state == LogState(1, frozenset({1, 3}), True)
    assert log_state(_assigned("{0, 2-5, 7}") + READY, TOPIC).partitions == {0, 2, 3, 4, 5, 7}


def test_ready_counts_only_after_the_latest_assignment() -> None:
    assert not log_state(_assigned("{0-3}"), TOPIC).ready
    # Ready in generation 1, then a new member made the group rebalance: not ready any more.
    again = _assigned("{0-3}") + READY + "[INFO] Revoking previously assigned partitions {…}\n"
    assert not log_state(again, TOPIC).ready
    later = _assigned("{0-3}") + READY + _assigned("{0, 2}", generation=2)
    assert log_state(later, TOPIC) == LogState(2, frozenset({0, 2}), False)
    assert log_state(later + READY, TOPIC).ready
    assert log_state("starting…", TOPIC) == LogState(None, frozenset(), False)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([LogState(2, frozenset({0, 2}), True), LogState(2, frozenset({1, 3}), True)], True),
        # One worker still in the previous generation.
        ([LogState(1, frozenset({0, 1, 2, 3}), True), LogState(2, frozenset({1, 3}), True)], False),
        # Partition 3 is nobody's, or partition 1 is two workers'.
        ([LogState(2, frozenset({0, 2}), True), LogState(2, frozenset({1}), True)], False),
        ([LogState(2, frozenset({0, 1, 2}), True), LogState(2, frozenset({1, 3}), True)], False),
        # A worker without partitions does not take part in the measure.
        ([LogState(2, frozenset({0, 1, 2, 3}), True), LogState(2, frozenset(), True)], False),
        ([LogState(2, frozenset({0, 2}), False), LogState(2, frozenset({1, 3}), True)], False),
        ([], False),
    ],
)
def test_settled(states: list[LogState], expected: bool) -> None:
    assert settled(states, 4) is expected


def _run(partitions: int, workers: int, rate: int, **over: Any) -> dict[str, Any]:
    n = 20_000
    run = {
        "partitions": partitions,
        "workers": workers,
        "events": n,
        "stored": n,
        "capped": False,
        "clickhouse_rows": n,
        "redis_1m_total": n,
        "heartbeat_processed": n,
        "events_per_s": rate,
        "seconds": n / rate,
        "copy_s": 0.1,
        "all_stores_s": n / rate + 0.2,
        "all_stores_evs": rate - 100,
        "load_average": 2.5,
        "per_worker": [
            {"pid": i, "cpu_percent": 80.0, "runqueue_wait_percent": 10.0, "processed": share}
            for i, share in enumerate([n // workers] * workers)
        ],
        # CPU seconds over the run: 0.8 s of workers for 20,000 footprints = 40 µs each.
        "cpu_s": {
            "workers": 0.8,
            "postgres": 0.2,
            "clickhouse": 0.1,
            "redis": 0.04,
            "kafka": 0.06,
            "bench": 0.3,
        },
    }
    return {**run, **over}


def test_ratios_are_per_partition_count() -> None:
    runs = [_run(4, 1, 10_000), _run(4, 2, 15_000), _run(8, 1, 12_000), _run(8, 4, 6_000)]
    assert ratios(runs) == {"4": {"1": 1.0, "2": 1.5}, "8": {"1": 1.0, "4": 0.5}}
    # Without a one-worker run there is nothing to compare with.
    assert ratios([_run(4, 2, 15_000)]) == {"4": {"2": None}}


def test_check_names_every_store_that_is_not_exact() -> None:
    assert check([_run(4, 1, 10_000)]) == []
    problems = check([_run(8, 2, 10_000, clickhouse_rows=19_999, redis_1m_total=20_002)])
    assert problems == [
        "8 partitions, 2 worker(s): ClickHouse rows 19999 of 20000",
        "8 partitions, 2 worker(s): Redis 1-minute total 20002 of 20000",
    ]


def test_model_from_the_one_worker_run() -> None:
    run = _run(8, 1, 10_000)
    assert costs(run) == {
        "workers": 40.0,
        "postgres": 10.0,
        "clickhouse": 5.0,
        "redis": 2.0,
        "kafka": 3.0,
        "bench": 15.0,
    }
    split = {"4": {"partitions": {"0": 50, "1": 20, "2": 20, "3": 10}, "messages": 8}}
    split["8"] = {"partitions": {str(p): 12 for p in range(8)} | {"0": 16}, "messages": 16}
    data = {"runs": [_run(4, 1, 9_000), run, _run(8, 2, 14_000)], "produced": split}
    m = model(data)
    assert m is not None and m["partitions"] == 8
    # The whole pipeline's rate (to the last store) and the worker's CPU over that time.
    assert m["one_worker_evs"] == 9_900 and m["one_worker_cpu_percent"] == 36.4
    # 60 µs in all without the benchmark's 15: the worker 2/3, the stores 17/60, Kafka 1/20.
    assert m["us_total"] == 60.0
    assert (m["worker_share"], m["stores_share"], m["kafka_share"]) == (0.667, 0.283, 0.05)
    assert m["worker_core_evs"] == 25_000 and m["redis_core_evs"] == 500_000
    assert m["busiest_partition_share"] == {"4": 0.5, "8": 0.16}
    # 4 cores: 4 × 9,900 (a worker per core) is less than 4 / 60 µs = 66,667 and 9,900 / 0.16;
    # from 8 cores the busiest partition's worker is the limit: 9,900 / 0.16 = 61,875.
    assert m["predicted"]["8"] == {"4": 39_600, "8": 61_875, "16": 61_875}
    # 4 partitions, busiest 50 %: 9,900 / 0.5 whatever the cores.
    assert m["predicted"]["4"] == {"4": 19_800, "8": 19_800, "16": 19_800}
    assert model({"runs": [_run(4, 2, 1)], "produced": split}) is None


def test_render_says_what_the_cores_allow_and_flags_wrong_counts() -> None:
    runs = [_run(4, 1, 10_000), _run(4, 2, 12_000, redis_1m_total=1)]
    split = {"4": {"partitions": {"0": 50, "1": 20, "2": 20, "3": 10}, "messages": 8}}
    data = {
        "events": 20_000,
        "nproc": 2,
        "command": "python -m bench scale --size small --broker kafka",
        "measured_at": "2026-11-30 09:00 UTC",
        "produced": split,
        "runs": runs,
        "ratios": ratios(runs),
        "problems": check(runs),
        "result": "RESULT nproc=2",
    }
    text = render(data, "Apache Kafka")
    assert "`nproc` = 2" in text and "What 2 cores allow" in text
    # 1.5 CPU seconds over 2.2 and 1.87 s to the last store.
    assert "used 68–80 % of one core" in text and "of the 200 % the machine has" in text
    assert "| 4 | 2 | **12,000** (1.20×, 1.67 s) | **11,900** (1.20×, 1.87 s) |" in text
    assert "**not exact**" in text and "Redis 1-minute total 1 of 20000" in text
    assert "Model for a bigger machine" in text and "RESULT nproc=2" in text
