"""``footprint generate``: realistic traffic and community actions sent to a running Footprint API.

    footprint generate --rate 200 --duration 60
    footprint generate --count 300 --seed 1 --api http://127.0.0.1:8000

Page views go to ``POST /api/footprints`` in small lists (one visitor's clicks, as a tracker
sends them), paced by a token bucket at ``--rate`` page views per second. Community actions
(follow, post, comment, reply, a moderator's penalty) go to the community API with user tokens
and make the worker create notifications. What is sent comes from ``footprint.cli.traffic``: the
same ``--seed`` sends the same sequence; ``footprint.cli.senders`` sends it. Ctrl-C stops early
and still prints the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from footprint.cli.senders import Community, Sender, Summary
from footprint.cli.traffic import Action, Mix, Traffic

__all__ = ["GenerateError", "Options", "Summary", "TokenBucket", "generate", "main"]


class GenerateError(RuntimeError):
    """The API cannot be used (unreachable, or refusing every request)."""


class TokenBucket:
    """Paces work at ``rate`` per second, allowing bursts of ``burst``; pure given a clock."""

    def __init__(self, rate: float, burst: float | None = None, clock: Any = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        # A tenth of a second of tokens: smooth, yet a list of page views never waits long.
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()

    def reserve(self, n: float = 1) -> float:
        """Take ``n`` tokens now (the balance may go negative); the seconds to wait first."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= n
        return max(0.0, -self.tokens / self.rate)

    async def acquire(self, n: float = 1) -> None:
        """Wait until ``n`` tokens are available."""
        delay = self.reserve(n)
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class Options:
    """What to send, where and how fast."""

    api: str = "http://127.0.0.1:8000"
    rate: float = 200.0
    duration: float | None = None
    count: int | None = None
    seed: int | None = None
    mix: Mix = field(default_factory=Mix)
    # httpcore's pool costs grow with its size: a few connections keep the client cheap.
    concurrency: int = 8


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]generating[/]"),
        BarColumn(),
        TextColumn("{task.completed:.0f} sent"),
        TextColumn("[red]{task.fields[failed]} failed[/]"),
        TextColumn("{task.fields[rate]:.0f}/s"),
        TextColumn("{task.fields[actions]} actions"),
        TimeElapsedColumn(),
        console=console,
    )


def _show(progress: Progress | None, task: TaskID | None, s: Summary, elapsed: float) -> None:
    if progress is not None and task is not None:
        rate = s.sent / elapsed if elapsed else 0.0
        actions = sum(s.actions.values())
        progress.update(task, completed=s.sent, failed=s.failed, rate=rate, actions=actions)


async def generate(
    options: Options, *, stop: asyncio.Event | None = None, progress: Progress | None = None
) -> Summary:
    """Send traffic until ``count`` page views, ``duration`` seconds or ``stop``, then summarise."""
    summary = Summary()
    stop = stop or asyncio.Event()
    bucket = TokenBucket(options.rate)
    limits = httpx.Limits(max_connections=options.concurrency + 1)
    async with httpx.AsyncClient(base_url=options.api, timeout=10, limits=limits) as client:
        try:
            (await client.get("/health")).raise_for_status()
        except httpx.HTTPError as e:
            raise GenerateError(f"cannot reach the Footprint API at {options.api}: {e}") from e
        sender = Sender(client, summary, options.concurrency)
        community = Community(client, summary)
        actions = asyncio.create_task(community.run())
        total = options.count or (options.duration * options.rate if options.duration else None)
        task = None
        if progress is not None:
            task = progress.add_task("generate", total=total, failed=0, rate=0.0, actions=0)
        start = time.monotonic()
        deadline = start + options.duration if options.duration else None
        planned = 0
        for step in Traffic(options.seed, options.mix).steps():
            if stop.is_set():
                break
            if isinstance(step, Action):
                community.queue.put_nowait(step)  # one at a time, in plan order
                continue
            if options.count is not None and planned >= options.count:
                break  # after the actions the last list brought
            views = step[: options.count - planned] if options.count is not None else step
            await bucket.acquire(len(views))
            if deadline is not None and time.monotonic() >= deadline:
                break
            await sender.submit(views)
            planned += len(views)
            _show(progress, task, summary, time.monotonic() - start)
        await sender.drain()
        summary.elapsed = time.monotonic() - start  # the page views' rate, not the actions' tail
        if stop.is_set():  # Ctrl-C: what is sent is sent, the waiting actions are dropped
            while not community.queue.empty():
                community.queue.get_nowait()
        community.queue.put_nowait(None)
        await actions
        _show(progress, task, summary, summary.elapsed)
    return summary


def _report(console: Console, s: Summary) -> None:
    actions = ", ".join(f"{n} {kind}" for kind, n in sorted(s.actions.items())) or "none"
    console.print(
        f"page views: {s.sent} sent, {s.accepted} accepted, {s.failed} failed "
        f"in {s.requests} requests, {s.elapsed:.1f}s ({s.rate:.1f}/s)"
    )
    console.print(f"actions: {sum(s.actions.values())} ok ({actions}), {s.actions_failed} failed")
    for error, n in s.errors.most_common(5):
        console.print(f"  [red]{n} x {error}[/]")


async def _main(options: Options, console: Console) -> Summary:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    with _progress(console) as progress:
        return await generate(options, stop=stop, progress=progress)


def main(args: argparse.Namespace) -> int:
    """Run ``footprint generate`` from parsed arguments; 0 when everything was accepted."""
    err = Console(stderr=True, soft_wrap=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    try:
        mix = Mix(
            users=args.users,
            actions_ratio=args.actions_ratio,
            bot_share=args.bots,
            utm_share=args.utm,
        )
        if args.count is not None and args.count < 0:
            raise ValueError("--count must not be negative")
        options = Options(
            api=args.api.rstrip("/"),
            rate=args.rate,
            duration=args.duration,
            count=args.count,
            seed=args.seed,
            mix=mix,
        )
        TokenBucket(options.rate)  # validates the rate before anything is sent
    except ValueError as e:
        err.print(f"footprint generate: {e}")
        return 2
    try:
        summary = asyncio.run(_main(options, err))
    except GenerateError as e:
        err.print(f"footprint generate: {e}")
        return 1
    _report(Console(soft_wrap=True), summary)
    return 0 if summary.ok else 1
