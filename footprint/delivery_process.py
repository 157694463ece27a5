"""Footprints built and sent by a second process, so the API process only captures.

With ``FOOTPRINT_DELIVERY_PROCESS=true`` the middleware's producer is a ``DeliveryProcess``: a
child process (``python -m footprint.delivery_process``) runs the ``FootprintProducer`` (its
buffer, packs, retries and spool), and the API process hands it each batch of captures through
a pipe. What crosses the pipe is ``footprint.capture.Anonymous``: the raw IP and user agent are
turned into the visitor id and the user agent's fields first, in the API process (a cached
look-up per visitor), so they never leave it. The JSON of each footprint, the event ids, the
Kafka client and the spool cost the API process nothing.

The child stops when the pipe closes: at the app's shutdown, or when the API process dies in
any way, it delivers what it can within the stop timeout and spools the rest, as the in-process
producer does. It ignores Ctrl-C (the terminal sends it to the whole process group; the API
process's shutdown is what ends it) and leaves 10 s for the pipe to close after a SIGTERM.

A child is handed batches once it reports ready, and each batch stays with the API process
until the child confirms it has it. A child that dies is started again, and what it had not
confirmed is built in the API process and handed to the next one (the same event ids: the
event-id bytes travel with the batch); what it had confirmed and not yet delivered is lost
with it, as an API process's own buffer is when that process dies. Where no child can start
(three failures in a row), the API process builds and sends the footprints itself.

Frames are length-prefixed pickles, between a process and the child it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import pickle
import signal
import struct
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Protocol

from footprint.capture import Anonymous, build_anonymous
from footprint.producer import FootprintProducer, ProducerStats
from footprint.records import Record
from footprint.spool import Spool

__all__ = ["AnonymousSource", "DeliveryProcess", "main"]

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
STATS_EVERY = 0.25  # seconds between the child's reports of its producer's stats
TERM_GRACE = 10.0  # seconds a child given SIGTERM waits for its pipe to close
QUICK_DEATHS = 3  # children that failed to start, in a row, before this process does the work
START_TIMEOUT = 60.0  # seconds a child has to report ready


def _make_producer(config: dict[str, Any]) -> FootprintProducer:
    """The producer a child runs (or this process, when no child can run): ``config`` holds
    ``FootprintProducer``'s arguments, the spool's directory as text."""
    spool_dir = config.get("spool_dir")
    return FootprintProducer(**{**config, "spool_dir": Path(spool_dir) if spool_dir else None})


class AnonymousSource(Protocol):
    """Captures the delivery process builds (``footprint.capture.Captures``)."""

    wake: Callable[[], None]
    limit: int

    def __len__(self) -> int: ...

    async def take_anonymous(self) -> list[Anonymous]: ...

    async def take(self) -> list[Record]: ...


def _frame(kind: str, payload: Any) -> bytes:
    body = pickle.dumps((kind, payload), protocol=5)
    return _LENGTH.pack(len(body)) + body


async def _read_frame(reader: asyncio.StreamReader) -> tuple[str, Any]:
    """The next frame; ``asyncio.IncompleteReadError`` at the end of the pipe."""
    (size,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    kind, payload = pickle.loads(await reader.readexactly(size))
    return kind, payload


class _Child:
    """One running delivery process and the task reading its reports."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.reader: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()  # its producer runs: it may be handed captures
        self.unconfirmed: dict[int, tuple[str, Any]] = {}  # batches handed, not yet confirmed

    @property
    def alive(self) -> bool:
        reader = self.reader
        return (
            self.ready.is_set()
            and self.process.returncode is None
            and reader is not None
            and not reader.done()
        )

    async def started(self, timeout: float) -> bool:
        """Whether it reports ready within ``timeout`` (False: it died, or hangs, first)."""
        assert self.reader is not None
        waiting = asyncio.ensure_future(self.ready.wait())
        try:
            await asyncio.wait(
                {waiting, self.reader}, timeout=timeout, return_when="FIRST_COMPLETED"
            )
        finally:
            waiting.cancel()
        return self.alive


class DeliveryProcess:
    """The middleware's producer, run in a child process it starts and feeds."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        partitions: int = 4,
        replication_factor: int = 1,
        max_buffer: int = 100_000,
        spool_dir: Path | None = None,
        linger_ms: int = 20,
        request_timeout_ms: int = 5000,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.max_buffer = max_buffer
        self.linger_ms = linger_ms
        self.spool_dir = spool_dir
        self.config = {
            "bootstrap": bootstrap,
            "topic": topic,
            "partitions": partitions,
            "replication_factor": replication_factor,
            "max_buffer": max_buffer,
            "spool_dir": str(spool_dir) if spool_dir is not None else None,
            "linger_ms": linger_ms,
            "request_timeout_ms": request_timeout_ms,
        }
        self.stats = ProducerStats()  # the child's, as it last reported them
        self.started = 0  # child processes started
        self._offered = 0
        self._child_pending = 0
        self._sources: list[AnonymousSource] = []
        self._records: deque[Record] = deque()  # built here, waiting for a child
        self._child: _Child | None = None
        self._task: asyncio.Task[None] | None = None
        self._captured = asyncio.Event()
        self._flushes: dict[int, asyncio.Future[bool]] = {}
        self._tokens = itertools.count()
        self._sequence = itertools.count()
        # The producer of this process, once children could not be started (``_fall_back``).
        self.fallback: FootprintProducer | None = None

    # --- what the middleware calls ---
    def add_source(self, source: AnonymousSource) -> None:
        """Hand what ``source`` holds to the child, from a background task."""
        source.wake = self.wake
        source.limit = min(source.limit, self.max_buffer)
        self._sources.append(source)

    def wake(self) -> None:
        """Something waits in a source."""
        self._captured.set()

    def offer_records(self, records: list[Record]) -> None:
        """Records built in this process (a full queue, a producer not started yet): handed to
        the child with the next batch; at most ``max_buffer`` wait for one."""
        if self.fallback is not None:
            self.fallback.offer_records(records)
            return
        room = max(0, self.max_buffer - len(self._records))
        self._records.extend(records[:room])
        self._offered += len(records)
        if len(records) > room:
            log.error("no delivery process to take footprints: dropping %d", len(records) - room)
        self._captured.set()

    @property
    def running(self) -> bool:
        """Whether the task feeding the child runs (and so drains the sources)."""
        return self._task is not None

    @property
    def pending(self) -> int:
        """Footprints not yet acknowledged by the broker, here and in the child."""
        if self.fallback is not None:
            return self.fallback.pending
        waiting = sum(len(source) for source in self._sources) + len(self._records)
        child = self._child
        handed = sum(
            len(payload[0]) if kind == "captures" else len(payload)
            for kind, payload in (child.unconfirmed.values() if child is not None else ())
        )
        return waiting + handed + self._child_pending

    @property
    def pid(self) -> int | None:
        """The running child's process id."""
        child = self._child
        return child.process.pid if child is not None and child.alive else None

    # --- lifecycle ---
    async def start(self) -> None:
        """Start the child and the task that feeds it."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="footprint-delivery-process")

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything offered so far is delivered; False on timeout."""
        if self.fallback is not None:
            return await self.fallback.flush(timeout)
        deadline = time.monotonic() + timeout
        while True:
            child = self._child
            if child is not None and child.alive:
                with contextlib.suppress(ConnectionError):  # gone: wait for the next one
                    await self._ship(child)
                    if not self._records and not any(len(s) for s in self._sources):
                        break
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(0.05, left))
        token = next(self._tokens)
        done = self._flushes[token] = asyncio.get_running_loop().create_future()
        try:
            left = max(0.0, deadline - time.monotonic())
            await self._write(child, _frame("flush", (token, left)))
            async with asyncio.timeout(left + 1.0):
                return await done
        except (TimeoutError, ConnectionError):
            return False
        finally:
            self._flushes.pop(token, None)

    async def stop(self, timeout: float = 5.0) -> None:
        """The child delivers what it can within ``timeout`` and spools the rest; it is then
        gone, and what never reached it is spooled here."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.fallback is not None:
            await self.fallback.stop(timeout)
            return
        child, self._child = self._child, None
        if child is not None:
            with contextlib.suppress(ConnectionError):
                await self._ship(child)
                await self._write(child, _frame("stop", timeout))
            if child.process.stdin is not None:
                child.process.stdin.close()
            try:
                async with asyncio.timeout(timeout + 10.0):
                    await child.process.wait()
            except TimeoutError:
                log.error("the delivery process did not stop in %.0f s: killed", timeout + 10.0)
                child.process.kill()
                await child.process.wait()
            if child.reader is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await child.reader
        self._child_pending = 0
        await self._spool_leftovers()

    # --- the background task ---
    async def _run(self) -> None:
        backoff, failed = 0.1, 0
        while True:
            child = self._child
            if child is None or not child.alive:
                if failed >= QUICK_DEATHS:
                    await self._fall_back(failed)
                    return
                try:
                    child = self._child = await self._spawn()
                except Exception as e:  # e.g. no more processes
                    self.stats.last_error = f"delivery process: {type(e).__name__}: {e}"
                    log.exception("could not start the delivery process")
                    child = self._child = None
                if child is None or not await child.started(START_TIMEOUT):
                    # One that dies as it starts (a broken environment) is not restarted in a
                    # loop; past a few, this process does the work.
                    if child is not None and child.process.returncode is None:
                        child.process.kill()
                    failed += 1
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff, failed = 0.1, 0
            await self._captured.wait()
            # Linger as the Kafka producer does: one hand-over for the requests of 20 ms.
            await asyncio.sleep(self.linger_ms / 1000)
            self._captured.clear()
            if child.alive:
                # A child gone meanwhile: its reader sees it end, the next round starts another.
                with contextlib.suppress(ConnectionError):
                    await self._ship(child)
            else:
                self._captured.set()  # start another child, then hand it what waits

    async def _fall_back(self, failures: int) -> None:
        """No child can run here (no Python to start, an import that fails): build and send in
        this process instead, as without FOOTPRINT_DELIVERY_PROCESS, rather than lose them."""
        log.error(
            "the delivery process failed %d times as it started: footprints are built and sent "
            "in this process from now on",
            failures,
        )
        if self._child is not None:
            self._take_back(self._child)
        self._child = None
        fallback = _make_producer(self.config)
        for source in self._sources:
            fallback.add_source(source)
        fallback.wake()  # for what the sources hold already
        fallback.offer_records(list(self._records))
        self._records.clear()
        fallback.stats.last_error = self.stats.last_error
        self.stats = fallback.stats
        self.fallback = fallback
        await fallback.start()

    def _argv(self) -> list[str]:
        return [sys.executable, "-m", "footprint.delivery_process", json.dumps(self.config)]

    async def _spawn(self) -> _Child:
        process = await asyncio.create_subprocess_exec(
            *self._argv(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # The same Footprint as this process, wherever its own came from.
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
        self.started += 1
        child = _Child(process)
        child.reader = asyncio.create_task(self._read(child), name="footprint-delivery-reports")
        log.info("delivery process %d started", process.pid)
        return child

    async def _ship(self, child: _Child) -> None:
        """Hand the child what the sources and ``offer_records`` hold.

        A batch stays in the child's ``unconfirmed`` until the child says it has it: a child
        that dies first (or was dead already, its pipe still open) has its batches built here
        and handed to the next one. Built from the same bytes, they keep their event ids.
        """
        for source in self._sources:
            if len(source):
                items = await source.take_anonymous()
                if items:
                    randomness = os.urandom(10 * len(items))
                    await self._hand(child, "captures", (items, randomness))
                    self._offered += len(items)
        if self._records:
            records = list(self._records)
            self._records.clear()
            await self._hand(child, "records", records)

    async def _hand(self, child: _Child, kind: str, payload: Any) -> None:
        seq = next(self._sequence)
        child.unconfirmed[seq] = (kind, payload)
        try:
            await self._write(child, _frame(kind, (seq, payload)))
        except ConnectionError:
            self._take_back(child)
            raise

    def _take_back(self, child: _Child) -> None:
        """The batches ``child`` did not confirm, built here, first in line for the next one."""
        records: list[Record] = []
        for kind, payload in child.unconfirmed.values():
            records.extend(build_anonymous(*payload) if kind == "captures" else payload)
        child.unconfirmed.clear()
        self._records.extendleft(reversed(records))

    async def _write(self, child: _Child, frame: bytes) -> None:
        stdin = child.process.stdin
        if stdin is None or stdin.is_closing() or not child.alive:
            raise ConnectionResetError("the delivery process has exited")
        stdin.write(frame)
        await stdin.drain()

    async def _read(self, child: _Child) -> None:
        assert child.process.stdout is not None
        try:
            while True:
                kind, payload = await _read_frame(child.process.stdout)
                if kind == "stats":
                    self._note_stats(payload)
                elif kind == "ready":
                    child.ready.set()
                elif kind == "got":
                    child.unconfirmed.pop(payload, None)
                elif kind == "flushed":
                    token, ok = payload
                    if (done := self._flushes.get(token)) is not None and not done.done():
                        done.set_result(ok)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the child closed its end: it is exiting
        except Exception:  # reports this process cannot read: no way to follow that child
            log.exception("unreadable report from delivery process %d", child.process.pid)
            child.process.kill()
        code = await child.process.wait()
        if code != 0 or self._task is not None:
            log.error("delivery process %d exited with %s", child.process.pid, code)
        if self._child in (child, None):
            self._child_pending = 0
        self._take_back(child)
        for done in self._flushes.values():
            if not done.done():
                done.set_result(False)
        self._captured.set()  # the feeding task starts another

    def _note_stats(self, reported: dict[str, Any]) -> None:
        self._child_pending = int(reported.pop("pending", 0))
        for field in fields(ProducerStats):
            if field.name in reported:
                setattr(self.stats, field.name, reported[field.name])
        self.stats.offered = self._offered

    async def _spool_leftovers(self) -> None:
        """What never reached a child, once none runs: built here, then on disk."""
        records = list(self._records)
        self._records.clear()
        for source in self._sources:
            if len(source):
                records.extend(build_anonymous(await source.take_anonymous()))
        if not records:
            return
        if self.spool_dir is None:
            log.error("footprint delivery stopped without a spool: dropping %d", len(records))
            return
        try:
            Spool(self.spool_dir).append([value for _, value, _, _ in records])
            self.stats.spooled += len(records)
        except OSError as e:
            log.error("could not spool %d footprints: %s", len(records), e)


# --- the child ---
async def _serve(config: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    reports = os.dup(1)
    os.dup2(2, 1)  # a stray print goes to stderr, not into the reports
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(reports, "wb")
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    reader = asyncio.StreamReader(limit=2**31)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)

    producer = _make_producer(config)
    ended = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.call_later(TERM_GRACE, ended.set))
    loop.add_signal_handler(signal.SIGINT, lambda: None)  # Ctrl-C: the API process stops us

    def report(kind: str, payload: Any) -> None:
        if not transport.is_closing():
            writer.write(_frame(kind, payload))

    def stats() -> dict[str, Any]:
        return {**asdict(producer.stats), "pending": producer.pending}

    async def reports_task() -> None:
        last: dict[str, Any] = {}
        while True:
            now = stats()
            if now != last:
                report("stats", now)
                last = now
            await asyncio.sleep(STATS_EVERY)

    async def flush(token: int, timeout: float) -> None:
        ok = await producer.flush(timeout)
        report("stats", stats())
        report("flushed", (token, ok))

    async def read() -> None:
        try:
            while True:
                kind, payload = await _read_frame(reader)
                if kind == "captures":
                    seq, (items, randomness) = payload
                    producer.offer_records(build_anonymous(items, randomness))
                    report("got", seq)
                elif kind == "records":
                    seq, records = payload
                    producer.offer_records(records)
                    report("got", seq)
                elif kind == "stop":
                    stop_timeout[0] = float(payload)
                elif kind == "flush":
                    flushes.add(task := asyncio.create_task(flush(*payload)))
                    task.add_done_callback(flushes.discard)
        except asyncio.IncompleteReadError:
            pass
        finally:
            ended.set()

    flushes: set[asyncio.Task[None]] = set()
    stop_timeout = [5.0]
    await producer.start()
    report("ready", os.getpid())
    tasks = [asyncio.create_task(read()), asyncio.create_task(reports_task())]
    await ended.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await producer.stop(stop_timeout[0])
    report("stats", stats())
    with contextlib.suppress(Exception):
        await writer.drain()
        writer.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m footprint.delivery_process CONFIG``: run until stdin closes."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s delivery-process %(levelname)s %(message)s"
    )
    asyncio.run(_serve(json.loads(args[0])))


if __name__ == "__main__":
    main()
