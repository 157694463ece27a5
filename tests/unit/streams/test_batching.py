"""``ReadyStream.take_ready``: a batch starts with its first event, grows with the load, and
its events are acknowledged only once the agent has handed it back."""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from streams.batching import ReadyStream
from streams.shutdown import WorkerStopping, in_flight

# No broker is reached: an agent's test context feeds its stream from a channel.
app = faust.App("test-batching", broker="kafka://127.0.0.1:1", Stream=ReadyStream)

taken: list[list[Any]] = []
acked_when_taken: list[list[bool]] = []
release = asyncio.Event()


@app.agent()
async def hold_the_first_batch(stream: Any) -> None:
    async for batch in stream.take_ready(3, linger=0.05):
        taken.append([event.value for event in batch])
        acked_when_taken.append([event.message.acked for event in batch])
        if len(taken) == 1:
            await release.wait()  # a long pass: the next events arrive during it


async def scenario() -> list[bool]:
    taken.clear()
    acked_when_taken.clear()
    release.clear()
    async with hold_the_first_batch.test_context() as agent:
        await agent.put(1, wait=False)
        # An idle agent takes a lone event after the linger, without waiting for more.
        for _ in range(100):
            if taken:
                break
            await asyncio.sleep(0.01)
        assert taken == [[1]]
        sent = [await agent.put(value, wait=False) for value in range(2, 9)]
        await asyncio.sleep(0.01)
        assert taken == [[1]], "a batch was handed over while the agent held the last one"
        release.set()
        for _ in range(100):
            if sum(map(len, taken)) == 8:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)  # the agent asks for the next batch: the last is acknowledged
        return [event.message.acked for event in sent]


def test_a_batch_starts_with_its_first_event_and_takes_what_arrived_during_the_last_pass() -> None:
    acked = asyncio.run(scenario())
    # What arrived while the first batch was held comes as soon as it is handed back, in
    # order, at most max_ (3) a batch.
    assert taken == [[1], [2, 3, 4], [5, 6, 7], [8]]
    # No event is acknowledged while its batch is with the agent; every one is afterwards.
    assert acked_when_taken == [[False], [False] * 3, [False] * 3, [False]]
    assert acked == [True] * 7


stopped_batch: list[Any] = []


@app.agent()
async def stop_mid_pass(stream: Any) -> None:
    try:
        async for batch in stream.take_ready(10, linger=0.01):
            stopped_batch.extend(batch)
            with in_flight(batch):
                raise WorkerStopping  # the store write was being retried when the worker stopped
    except WorkerStopping:
        pass  # as the notifications agent does: it leaves its loop


async def stop_scenario() -> list[bool]:
    stopped_batch.clear()
    async with stop_mid_pass.test_context() as agent:
        for value in range(3):
            event = await agent.put(value, wait=False)
            # What the consumer does on delivering a fetched message to a stream (the test
            # context's channel skips it): one reference, dropped by the stream's ack.
            event.message.incref()
        for _ in range(100):
            if stopped_batch:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the generator's finally has run: the agent left its loop
        return [event.message.acked for event in stopped_batch]


def test_a_batch_the_stop_interrupted_is_not_acknowledged_when_the_agent_leaves() -> None:
    # take_ready's finally acknowledges the batch in hand; the held messages stay unacked, so
    # their offsets are never committed and the next start reads them again.
    acked = asyncio.run(stop_scenario())
    assert len(acked) == 3 and not any(acked)


by_bytes: list[tuple[list[Any], float]] = []
LINGER = 1.0


@app.agent()
async def bound_by_bytes(stream: Any) -> None:
    async for batch in stream.take_ready(100, linger=LINGER, max_bytes=10):
        by_bytes.append(([event.value for event in batch], asyncio.get_running_loop().time()))


async def bytes_scenario() -> float:
    by_bytes.clear()
    async with bound_by_bytes.test_context() as agent:
        # 10 bytes fill a batch at once; the byte after them waits for the next batch.
        for value in (b"defghijk", b"lm", b"n"):
            await agent.put(value, wait=False)
        sent_at = asyncio.get_running_loop().time()
        for _ in range(300):
            if len(by_bytes) == 2:
                break
            await asyncio.sleep(0.01)
        return by_bytes[0][1] - sent_at


def test_a_batch_whose_values_reach_max_bytes_is_taken_at_once() -> None:
    waited = asyncio.run(bytes_scenario())
    assert [values for values, _ in by_bytes] == [[b"defghijk", b"lm"], [b"n"]]
    # Taken when full, not a linger after its first event.
    assert waited < LINGER / 2
