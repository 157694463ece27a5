"""``python -m bench [name ...] [--size tiny|small|full]``: run benchmarks, write the report.

Benchmarks run in the order given (by default: worker, api, live, notify, stores, peers,
query; ``scale``, several workers side by side, only when named) on servers started once for
the whole run. Each prints progress and one closing
``RESULT`` line.
Small and full runs write ``BENCHMARKS.md``, ``bench/results/*.json`` and ``bench/charts/*.png``;
tiny runs write them to a temporary directory (or ``--report-dir``) so a smoke test leaves the
repository alone.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.common import SIZES, Output, Stack
from bench.machine import machine

BENCHMARKS = ("worker", "api", "live", "notify", "stores", "peers", "query", "scale")
# scale starts up to four worker processes per step for minutes: `make bench` names it, on
# Apache Kafka, rather than every plain `python -m bench` running it on Tansu too.
DEFAULT = tuple(name for name in BENCHMARKS if name != "scale")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the benchmarks, write the report; 1 if any benchmark failed."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="name",
        help=f"any of {', '.join(BENCHMARKS)} (default: all but scale)",
    )
    parser.add_argument("--size", choices=SIZES, default="full")
    parser.add_argument(
        "--report-dir", type=Path, help="write BENCHMARKS.md, results/ and charts/ here instead"
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' data directory")
    parser.add_argument(
        "--broker",
        choices=("tansu", "kafka"),
        default="tansu",
        help="the broker: Tansu, or Apache Kafka (results saved as NAME.kafka.json)",
    )
    parser.add_argument(
        "--rows",
        type=_rows,
        help="the query benchmark's sizes in footprints, e.g. 1000000,10000000 (default: the "
        "size's)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only rebuild BENCHMARKS.md and the charts from the saved results and bench/notes",
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    names = args.names or list(DEFAULT)
    if args.rows and names != ["query"]:
        parser.error("--rows applies to the query benchmark alone: python -m bench query --rows …")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    out = Output.for_size(args.size, args.report_dir)
    out.broker = args.broker
    if args.report_only:
        from bench.report import write_report

        print(f"report: {write_report(out)}")
        return 0
    base = Path(tempfile.mkdtemp(prefix="footprint-bench-"))
    stack = Stack(
        base / "servers",
        progress=lambda m: print(f"[stack  ] {m}", flush=True),
        broker=args.broker,
    )
    began = time.monotonic()
    failed: list[str] = []
    print(f"benchmarks: {', '.join(names)} at size {args.size}; servers under {base}", flush=True)
    try:
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            try:
                extra = {"rows": args.rows} if args.rows else {}
                module.run(stack, args.size, out, base / name, **extra)
            except Exception:
                traceback.print_exc()
                print(f"RESULT {name}_failed=1", flush=True)
                failed.append(name)
        info = machine(stack)
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    from bench.report import write_report

    out.save("machine", info)
    write_report(out)
    print(f"report: {out.report} ({time.monotonic() - began:.0f}s in all)", flush=True)
    return 1 if failed else 0


def _rows(text: str) -> list[int]:
    try:
        rows = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: numbers of rows, e.g. 1000000,10000000"
        ) from None
    if not rows or min(rows) < 10:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 10 rows per step")
    return rows


if __name__ == "__main__":
    sys.exit(main())
