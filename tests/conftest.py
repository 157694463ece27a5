"""Suite-wide set-up."""

from __future__ import annotations

import signal
import sys


def pytest_configure() -> None:
    # A terminated run (SIGTERM from a timeout or CI) still runs fixture finalizers and atexit
    # hooks, so the real servers the tests started are stopped, not orphaned.
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
