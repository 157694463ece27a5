"""``footprint retention run [--dry-run]``: apply the data retention now, from a shell.

Works on the stores of the current settings directly (like ``footprint migrate``), not through
the API: it is what the worker's leader does on its timer. With the embedded ClickHouse (chdb),
only the process that holds it can: stop ``footprint run`` first, or let its worker do it.
"""

from __future__ import annotations

import argparse

from footprint import retention
from footprint.settings import Settings

__all__ = ["main"]


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Print each step (what goes, how many rows); with --dry-run change nothing."""
    steps = retention.run(settings, dry_run=args.dry_run)
    verb = "would" if args.dry_run else "did"
    shown = [s for s in steps if not (args.dry_run and s.action == "make partitions")]
    for step in shown:
        print(f"{verb}: {step}")
    gone = sum(s.rows for s in steps if s.action != "make partitions")
    print(f"{'would remove' if args.dry_run else 'removed'} {gone} rows in all")
    return 0
