"""Suite-wide set-up."""

from __future__ import annotations

import signal
import sys
from typing import Any


def pytest_configure() -> None:
    # A terminated run (SIGTERM from a timeout or CI) still runs fixture finalizers and atexit
    # hooks, so the real servers the tests started are stopped, not orphaned.
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Repeat what the tests printed (the fault tests' sent / stored / duplicates figures)."""
    lines: list[str] = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "") == "call" and report.capstdout.strip():
                name = report.nodeid.split("::")[-1]
                lines += [f"{name}: {line}" for line in report.capstdout.strip().splitlines()]
    if lines:
        terminalreporter.section("figures printed by the tests")
        for line in lines:
            terminalreporter.line(line)
