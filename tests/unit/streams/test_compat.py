"""streams/compat.py: every patched private name exists, and a missing one fails loudly."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import faust
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import (
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)
from faust.exceptions import PartitionsMismatch
from faust.tables.base import Collection
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.producer import ProducerBuffer
from faust.types import TP
from mode import Service

from streams import compat


def test_the_names_patched_exist_in_the_installed_faust_and_aiokafka() -> None:
    compat.require(AIOKafkaConsumerThread, "_highwaters")
    compat.require(AIOKafkaConsumerThread, "_create_worker_consumer")
    compat.require(faust.App, "_consumer_wait_empty")
    compat.require(Collection, "_verify_source_topic_partitions")
    compat.require(Consumer, "_drain_messages")
    compat.require(Consumer, "wait_first")
    compat.require(Consumer, "getmany")
    compat.require(Collection, "send_changelog")
    compat.require(ProducerBuffer, "flush")
    compat.require(ProducerBuffer, "_send_pending")
    compat.require(ProducerBuffer, "size")

    async def consumer_attribute() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=1500)
        compat.require(consumer, "_fetch_max_wait_ms")
        assert consumer._fetch_max_wait_ms == 1500

    asyncio.run(consumer_attribute())


def test_a_missing_name_raises_naming_it() -> None:
    with pytest.raises(compat.CompatError, match=r"AIOKafkaConsumerThread\._gone_attribute"):
        compat.require(AIOKafkaConsumerThread, "_gone_attribute")


def test_the_patches_are_installed_once_and_set_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        AIOKafkaConsumerThread, "_create_worker_consumer", lambda self, transport: Consumer()
    )
    monkeypatch.setattr(AIOKafkaConsumerThread, "_highwaters", AIOKafkaConsumerThread._highwaters)

    class Consumer:
        _fetch_max_wait_ms = 1500

    compat.use_fetch_max_wait(25)
    compat.use_fetch_max_wait(25)  # idempotent: a second call does not wrap the wrapper
    patched = AIOKafkaConsumerThread._create_worker_consumer
    assert patched.footprint_patched  # type: ignore[attr-defined]
    assert patched(object(), None)._fetch_max_wait_ms == 25  # type: ignore[arg-type]

    compat.use_true_highwaters("127.0.0.1:1")
    assert AIOKafkaConsumerThread._highwaters.footprint_patched  # type: ignore[attr-defined]


def test_a_consumer_without_the_attribute_stops_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        AIOKafkaConsumerThread, "_create_worker_consumer", lambda self, transport: object()
    )
    compat.use_fetch_max_wait(25)
    with pytest.raises(compat.CompatError, match="_fetch_max_wait_ms"):
        AIOKafkaConsumerThread._create_worker_consumer(object(), None)  # type: ignore[arg-type]


def test_a_changelog_still_being_created_is_checked_again_not_fatal() -> None:
    compat.tolerate_new_changelogs()
    partitions = {"footprints": 4, "app-visits-changelog": 0}

    class Table:
        name = "visits"
        changelog_topic_name = "app-visits-changelog"
        _verified_source_topics_for_partitions: set[str] = set()
        app = type("App", (), {"consumer": type("C", (), {"topic_partitions": None})()})()

    table = Table()
    table.app.consumer.topic_partitions = partitions.get  # type: ignore[attr-defined]
    verify = Collection._verify_source_topic_partitions
    verify(table, "footprints")  # 0 partitions: the topic is being created; no crash
    assert "footprints" not in table._verified_source_topics_for_partitions
    partitions["app-visits-changelog"] = 4  # the metadata caught up: verified once
    verify(table, "footprints")
    assert "footprints" in table._verified_source_topics_for_partitions
    table._verified_source_topics_for_partitions.clear()
    partitions["app-visits-changelog"] = 2  # a real mismatch still stops the worker
    with pytest.raises(PartitionsMismatch):
        verify(table, "footprints")


class _Fetcher(Service):
    """What the patched ``Consumer.wait_first`` needs of a consumer: a service with a flow."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()


def test_the_fetcher_waits_briefly_for_records(monkeypatch: pytest.MonkeyPatch) -> None:
    # Faust's fetch loop asks for records with a 1 s wait, over the partitions whose stream
    # buffer is not full: caught-up partitions kept it waiting that long after a full one
    # had room again. The patch bounds the wait; a shorter one is kept.
    asked: list[float] = []

    def getmany(self: object, timeout: float) -> str:
        asked.append(timeout)
        return "records"

    monkeypatch.setattr(Consumer, "getmany", getmany)
    compat.poll_briefly(0.02)
    compat.poll_briefly(0.02)  # idempotent
    assert Consumer.getmany.footprint_patched  # type: ignore[attr-defined]
    assert Consumer.getmany(object(), timeout=1.0) == "records"  # type: ignore[arg-type]
    Consumer.getmany(object(), timeout=0.005)  # type: ignore[arg-type]
    assert asked == [0.02, 0.005]


def test_a_message_that_needs_no_wait_is_handed_over_inline() -> None:
    compat.hand_over_inline()
    assert Consumer.wait_first.footprint_patched  # type: ignore[attr-defined]

    async def scenario() -> None:
        fetcher = _Fetcher()
        tasks_before = len(asyncio.all_tasks())
        seen: list[str] = []

        async def callback(value: str) -> str:
            seen.append(value)
            return value.upper()

        result = await Consumer.wait_first(  # type: ignore[arg-type]
            fetcher, callback("a"), fetcher.suspend_flow.wait()
        )
        assert seen == ["a"] and result.results == ["A"] and not result.stopped
        assert len(asyncio.all_tasks()) == tasks_before  # no task was made for it

    asyncio.run(scenario())


def test_a_message_that_must_wait_is_still_interrupted_by_a_suspended_flow() -> None:
    compat.hand_over_inline()

    async def scenario() -> None:
        fetcher = _Fetcher()
        room = asyncio.Event()  # a full stream buffer: the callback waits for room
        finished: list[str] = []

        async def callback() -> None:
            await room.wait()
            finished.append("delivered")

        waiting = asyncio.ensure_future(
            Consumer.wait_first(  # type: ignore[arg-type]
                fetcher, callback(), fetcher.suspend_flow.wait()
            )
        )
        await asyncio.sleep(0.01)
        assert not waiting.done()
        fetcher.suspend_flow.set()  # a rebalance: the wait ends, the delivery is given up
        result = await asyncio.wait_for(waiting, 2)
        assert result.results == [True] and finished == []
        # And one that waits, then gets room, is delivered from where it stopped.
        fetcher.suspend_flow.clear()
        waiting = asyncio.ensure_future(
            Consumer.wait_first(  # type: ignore[arg-type]
                fetcher, callback(), fetcher.suspend_flow.wait()
            )
        )
        await asyncio.sleep(0.01)
        room.set()
        await asyncio.wait_for(waiting, 2)
        assert finished == ["delivered"]

    asyncio.run(scenario())


async def _flush_while_the_broker_is_away(records: int) -> tuple[float, int]:
    """Put records in a producer buffer whose hand-over takes 0.3 s each; flush; (s, sent)."""
    sent: list[object] = []
    buffer = ProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]

    async def publish(fut: object) -> None:  # aiokafka waiting for a broker
        await asyncio.sleep(0.3)
        sent.append(fut)

    buffer.footprint_publish = publish  # type: ignore[attr-defined]
    await buffer.start()
    for i in range(records):
        buffer.put(i)  # type: ignore[arg-type]
    began = time.monotonic()
    await buffer.flush()
    took, done = time.monotonic() - began, len(sent)
    await buffer.stop()
    return took, done


def test_a_flush_hands_over_every_buffered_record(monkeypatch: pytest.MonkeyPatch) -> None:
    async def send_pending(self: ProducerBuffer, fut: object) -> None:
        await self.footprint_publish(fut)  # type: ignore[attr-defined]

    monkeypatch.setattr(ProducerBuffer, "_send_pending", send_pending)
    monkeypatch.setattr(ProducerBuffer, "flush", _faust_flush())
    monkeypatch.setattr(ProducerBuffer, "on_stop", _no_stop_flush)

    # Faust's own flush gives up once 0.1 s pass without a record sent: records stay behind.
    took, done = asyncio.run(_flush_while_the_broker_is_away(3))
    assert done < 3, "the installed faust flushes fully: flush_whole_buffer can go"

    compat.flush_whole_buffer(5.0)
    compat.flush_whole_buffer(5.0)  # idempotent
    took, done = asyncio.run(_flush_while_the_broker_is_away(3))
    assert done == 3
    assert took >= 0.8


def test_a_flush_gives_up_after_the_request_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def send_pending(self: ProducerBuffer, fut: object) -> None:
        await self.footprint_publish(fut)  # type: ignore[attr-defined]

    monkeypatch.setattr(ProducerBuffer, "_send_pending", send_pending)
    monkeypatch.setattr(ProducerBuffer, "flush", _faust_flush())
    monkeypatch.setattr(ProducerBuffer, "on_stop", _no_stop_flush)
    compat.flush_whole_buffer(0.5)
    took, done = asyncio.run(_flush_while_the_broker_is_away(5))
    assert 0.5 <= took < 1.0
    assert done < 5


def _faust_flush() -> object:
    """Faust's own ``ProducerBuffer.flush``, also when the worker's patches were applied."""
    return getattr(ProducerBuffer.flush, "footprint_original", ProducerBuffer.flush)


async def _no_stop_flush(self: ProducerBuffer) -> None:
    """The test's buffer stops without draining what the fake broker never took."""


def test_a_changelog_record_the_broker_did_not_take_is_sent_again_with_the_current_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[object, object, object]] = []
    futures: list[asyncio.Future[str]] = []

    def send_changelog(self: object, partition: object, key: object, value: object) -> object:
        sent.append((partition, key, value))
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        futures.append(fut)
        return fut

    monkeypatch.setattr(Collection, "send_changelog", send_changelog)
    compat.resend_failed_changelog()
    compat.resend_failed_changelog()  # idempotent
    owned = {TP("app-visits-changelog", 3)}
    table = SimpleNamespace(
        data={"k": [7, 40], "j": [1, 1]},
        changelog_topic=SimpleNamespace(get_topic_name=lambda: "app-visits-changelog"),
        app=SimpleNamespace(
            should_stop=False, assignor=SimpleNamespace(assigned_actives=lambda: owned)
        ),
    )
    before = dict(compat.status.failures.get("changelog", {}))

    async def scenario() -> None:
        Collection.send_changelog(table, 3, "k", [5, 30])  # type: ignore[arg-type]
        table.data["k"] = [7, 40]  # a later write of the same key
        futures[0].set_exception(NotLeaderForPartitionError())
        await asyncio.sleep(0)
        # Sent again with the key's current value, to the same partition.
        assert sent == [(3, "k", [5, 30]), (3, "k", [7, 40])]
        futures[1].set_exception(RequestTimedOutError())  # again, until it is taken
        await asyncio.sleep(0)
        futures[2].set_result("ok")
        await asyncio.sleep(0)
        assert sent[2:] == [(3, "k", [7, 40])]
        # Given up, logged and counted: a partition another worker owns now, a key deleted
        # since, a record the broker can never take, a worker stopping.
        Collection.send_changelog(table, 1, "j", [1, 1])  # type: ignore[arg-type]
        futures[3].set_exception(NotLeaderForPartitionError())
        del table.data["k"]
        Collection.send_changelog(table, 3, "k", None)  # type: ignore[arg-type]
        futures[4].set_exception(NotLeaderForPartitionError())
        Collection.send_changelog(table, 3, "j", [2, 2])  # type: ignore[arg-type]
        futures[5].set_exception(MessageSizeTooLargeError())
        table.app.should_stop = True
        Collection.send_changelog(table, 3, "j", [3, 3])  # type: ignore[arg-type]
        futures[6].set_exception(NotLeaderForPartitionError())
        await asyncio.sleep(0)
        assert len(sent) == 7

    asyncio.run(scenario())
    after = compat.status.failures["changelog"]
    assert after["unavailable"] - before.get("unavailable", 0) == 2
    assert after["refused"] - before.get("refused", 0) == 4


def test_the_producer_buffer_size_reads_the_settings_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ProducerBuffer, "size", ProducerBuffer.__dict__["size"])  # restored after
    reads: list[str] = []

    class Conf:
        @property
        def producer_threaded(self) -> bool:
            reads.append("producer_threaded")
            return False

    async def sizes() -> tuple[list[int], int]:
        """The sizes seen as records are put, and how many times reading them read the setting."""
        buffer = ProducerBuffer()
        buffer.app = SimpleNamespace(conf=Conf())  # type: ignore[assignment]
        seen, by_size = [], 0
        for i in range(4):
            if i:
                buffer.put(i)  # type: ignore[arg-type]  # not started: the records stay pending
            before = len(reads)
            seen.append(buffer.size)
            by_size += len(reads) - before
        return seen, by_size

    # Faust's own size reads the setting every time the conductor hands a message over.
    seen, by_size = asyncio.run(sizes())
    assert seen == [0, 1, 2, 3]
    assert by_size == 4, "the installed faust no longer reads it per call: the patch can go"

    compat.size_without_settings()
    compat.size_without_settings()  # idempotent
    assert ProducerBuffer.size.fget.footprint_patched  # type: ignore[attr-defined]
    seen, by_size = asyncio.run(sizes())
    assert seen == [0, 1, 2, 3]
    assert by_size == 1
