"""The Faust application. Run the worker with ``faust -A streams.app worker -l info``.

Settings are passed explicitly: Faust's own environment names (``BROKER_URL``…) are not used.
Topics, tables and agents live in sibling modules, found by autodiscovery.
"""

import faust

from footprint import heap
from footprint.settings import SettingsError, get_settings
from streams import compat, shutdown
from streams.batching import ReadyStream
from streams.buffer import ByteBoundedQueue

try:
    _settings = get_settings()
    _brokers = [f"kafka://{host}" for host in _settings.kafka_bootstrap.split(",")]
    # Faust's own files (its default is ./<app id>-data) go under the data dir.
    _datadir = _settings.data_dir / "faust"
    _datadir.mkdir(parents=True, exist_ok=True)
except SettingsError as e:
    raise SystemExit(f"footprint worker: {e}") from None

_COMMIT_ON_TIMER_ONLY = 2**62  # Faust's count-based commit never comes due


class FootprintApp(faust.App):  # type: ignore[misc]  # faust.App is untyped
    """Faust's app, whose queues are bounded in bytes too (streams/buffer.py)."""

    def FlowControlQueue(  # noqa: N802  # Faust's name
        self, maxsize: int | None = None, *, clear_on_resume: bool = False
    ) -> ByteBoundedQueue:
        return ByteBoundedQueue(
            maxsize=maxsize,
            max_bytes=_settings.batch_max_bytes,
            flow_control=self.flow_control,
            clear_on_resume=clear_on_resume,
        )


app = FootprintApp(
    _settings.app_id,
    broker=_brokers,
    store="memory://",
    datadir=str(_datadir),
    autodiscover=["streams.agents", "streams.retention"],
    origin="streams",
    topic_partitions=_settings.partitions,
    topic_replication_factor=_settings.replication_factor,
    broker_rebalance_timeout=_settings.rebalance_timeout,
    broker_session_timeout=_settings.session_timeout,
    broker_heartbeat_interval=1.0,
    # Faust waits 1200 s for a produce response. Seen on a three-broker cluster: a response sat
    # unread in the socket and the changelog producer, so the whole agent, hung for those
    # 20 minutes. Kafka's own producers wait 30 s, then retry on a new connection.
    producer_request_timeout=compat.PRODUCER_REQUEST_TIMEOUT,
    consumer_auto_offset_reset="earliest",
    # Offsets are committed on Faust's timer (broker_commit_interval, 2.8 s), in its own task.
    # Faust also commits every 10,000 acknowledged messages *inside its fetch loop*, which then
    # delivers nothing until the producer is flushed and the broker has answered: ~0.5 s
    # without records every 10,000 footprints of one per message (measured on Tansu). A commit
    # later only means a longer replay after a crash, and every write is idempotent.
    broker_commit_every=_COMMIT_ON_TIMER_ONLY,
    processing_guarantee=_settings.processing_guarantee,
    table_cleanup_interval=60.0,
    web_enabled=not _settings.embedded_worker,
    web_port=_settings.worker_web_port,
    web_bind="127.0.0.1",
    Stream=ReadyStream,
)

# The worker's patches of faust/aiokafka private names, each checked: see streams/compat.py.
compat.apply(_settings)
# Ctrl-C and SIGTERM stop the worker in bounded time, even mid-retry: see streams/shutdown.py.
shutdown.install(app, _settings)


@app.task
async def freeze_startup_heap() -> None:
    """Once every service has started: out of the collector's way (footprint/heap.py)."""
    heap.freeze_startup()
