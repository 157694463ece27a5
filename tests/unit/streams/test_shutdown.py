"""streams/shutdown.py and retry_forever's stop: a stopping worker gives a batch up, held."""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import SimpleNamespace
from typing import Any

import pytest

from streams.retry import retry_forever
from streams.shutdown import WorkerStopping, in_flight, settled


class App:
    """What retry_forever needs of the Faust app: should_stop and a sleep the stop ends."""

    def __init__(self) -> None:
        self.stopped = asyncio.Event()

    @property
    def should_stop(self) -> bool:
        return self.stopped.is_set()

    async def sleep(self, n: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopped.wait(), n)


def test_a_retry_gives_up_as_soon_as_the_worker_stops() -> None:
    async def go() -> float:
        app = App()
        attempts = 0

        async def attempt() -> None:
            nonlocal attempts
            attempts += 1
            if attempts == 3:
                asyncio.get_running_loop().call_later(0.3, app.stopped.set)
            raise ConnectionError("store down")

        began = time.monotonic()
        with pytest.raises(WorkerStopping, match="store: given up"):
            await retry_forever("store", attempt, stop=app)
        return time.monotonic() - began

    # Backoffs 0.2, 0.4, then 0.8 cut short by the stop at 0.3 s into it.
    assert asyncio.run(go()) < 1.2


def test_a_pass_the_stop_interrupts_holds_its_messages_and_a_finished_one_does_not() -> None:
    refs: list[int] = []

    def events(n: int) -> list[Any]:
        out = []
        for _ in range(n):
            message = SimpleNamespace(refs=1)
            message.incref = lambda m=message: setattr(m, "refs", m.refs + 1)
            out.append(SimpleNamespace(message=message))
        return out

    async def go() -> None:
        done, given_up = events(2), events(3)
        with in_flight(done):
            pass
        with pytest.raises(WorkerStopping), in_flight(given_up):
            raise WorkerStopping("store")
        refs.extend(e.message.refs for e in done + given_up)

    asyncio.run(go())
    # Faust acknowledges a message when its count drops to 0: the held ones never get there.
    assert refs == [1, 1, 2, 2, 2]


def test_settled_waits_for_the_pass_in_flight_and_no_longer_than_asked() -> None:
    async def go() -> tuple[bool, bool, bool]:
        idle = await settled(0.1)
        release = asyncio.Event()

        async def a_pass() -> None:
            with in_flight([]):
                await release.wait()

        task = asyncio.create_task(a_pass())
        await asyncio.sleep(0)
        timed_out = await settled(0.1)
        asyncio.get_running_loop().call_later(0.1, release.set)
        ended = await settled(5)
        await task
        return idle, timed_out, ended

    assert asyncio.run(go()) == (True, False, True)
