"""``python -m bench.ab --base REV``: the worker of two commits on one topic, alternately.

How each change to the worker was measured. N footprints, one per message (the reference site's
shape, the worker's hardest case), are produced once to a 4-partition topic; then the worker of
``--base`` and the worker of ``--head`` (the working tree by default) each read the whole topic
with fresh stores (``bench.worker.run_worker``: from ready to N rows in PostgreSQL, every store
checked), in turns, ``--rounds`` times, so a drift of the shared machine weighs on both sides.
Each side runs from its own checkout (a ``git worktree``) put first on ``PYTHONPATH``; the
module path the worker would import is checked before the first round.

Nothing is written to the report: the figures are printed, and saved as JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ROOT, Progress, Stack, child_env, loadavg
from bench.peers import produce_single
from bench.worker import prepare, run_worker

__all__ = ["main"]


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def _imports_from(tree: Path, cwd: Path) -> Path:
    """Where the worker's ``streams`` package comes from with ``tree`` first on the path, run
    from ``cwd`` (as the worker is, from its work directory)."""
    env = child_env(PYTHONPATH=str(tree))
    code = "import streams; print(streams.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip()).resolve()


def run(
    base_rev: str, head_rev: str | None, events: int, rounds: int, broker: str, keep: bool
) -> dict[str, Any]:
    """Measure both sides; the rates of each round, per side."""
    progress = Progress("ab")
    work = Path(tempfile.mkdtemp(prefix="footprint-ab-"))
    trees: dict[str, Path] = {}
    sides = [("base", base_rev), ("head", head_rev)]
    try:
        for name, rev in sides:
            if rev is None:
                trees[name] = ROOT
                continue
            tree = work / name
            _git("worktree", "add", "--detach", str(tree), rev)
            trees[name] = tree
        for name, tree in trees.items():
            found = _imports_from(tree, work)
            if not found.is_relative_to(tree.resolve()):
                raise RuntimeError(f"{name}: the worker would import {found}, not from {tree}")
        labels = {
            name: (rev or "the working tree")
            + (f" ({_git('rev-parse', '--short', rev)})" if rev else "")
            for name, rev in sides
        }
        stack = Stack(work / "servers", progress=lambda m: None, broker=broker)
        try:
            topic, items = prepare(stack, "bench-ab", events, progress)
            produced, _ = asyncio.run(produce_single(stack.kafka.bootstrap, topic, items))
            progress(f"produced {events:,} footprints, one per message, to {topic}")
            rates: dict[str, list[int]] = {name: [] for name in trees}
            cpu: dict[str, list[float | None]] = {name: [] for name in trees}
            for r in range(rounds):
                # Alternate which side goes first, so neither always follows the other.
                order = list(trees) if r % 2 == 0 else list(reversed(trees))
                for name in order:
                    result = run_worker(
                        stack, topic, events, work / f"{name}-{r}", progress,
                        extra_env={"PYTHONPATH": str(trees[name])},
                    )  # fmt: skip
                    if result["stored"] < events:
                        raise RuntimeError(f"{name}: {result['stored']:,} of {events:,} rows")
                    rates[name].append(result["events_per_s"])
                    cpu[name].append(result.get("cpu_percent"))
                    progress(
                        f"round {r + 1} {name}: {result['events_per_s']:,} footprints/s, "
                        f"CPU {result.get('cpu_percent')} % of a core, load {loadavg()}"
                    )
        finally:
            stack.stop()
    finally:
        for name, rev in sides:
            if rev is not None and name in trees:
                _git("worktree", "remove", "--force", str(trees[name]))
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return {
        "command": "python -m bench.ab " + " ".join(sys.argv[1:]),
        "broker": broker,
        "events": events,
        "produced_per_s": produced["events_per_s"],
        "sides": labels,
        "rates": rates,
        "cpu_percent": cpu,
        "median": {name: statistics.median(v) for name, v in rates.items()},
        "head_over_base": [
            round(h / b, 3) for h, b in zip(rates["head"], rates["base"], strict=True)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--head", help="the other commit (default: the working tree)")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--broker", choices=("tansu", "kafka"), default="tansu")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the servers and worker logs")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.events < 1:
        parser.error("--rounds and --events must be positive")
    result = run(args.base, args.head, args.events, args.rounds, args.broker, args.keep)
    for name, label in result["sides"].items():
        rates = " / ".join(f"{r:,}" for r in result["rates"][name])
        print(f"{name} {label}: {rates} footprints/s (median {result['median'][name]:,})")
    print("head / base, round by round:", ", ".join(map(str, result["head_over_base"])))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
