"""The last resort of a stop: once it has taken too long, the process exits anyway.

A clean stop (Ctrl-C, SIGTERM) is bounded where it can be (a store write being retried gives up,
Faust's wait for in-flight batches is cut short), but a call that hangs somewhere else must not
keep the process alive. Nothing is lost by exiting: offsets of a batch not yet written are never
committed, so the batch is read again on the next start.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

__all__ = ["EXIT_CODE", "exit_after"]

log = logging.getLogger(__name__)

# Not 0: whoever supervises the process sees that the stop was forced.
EXIT_CODE = 70

_armed: threading.Timer | None = None
_lock = threading.Lock()


def exit_after(
    seconds: float, what: str, before_exit: Callable[[], object] | None = None
) -> threading.Timer:
    """Exit the process in ``seconds`` unless it is gone by then; armed once per process."""
    global _armed
    with _lock:
        if _armed is not None:
            return _armed

        def expire() -> None:
            log.error(
                "%s did not stop within %.0fs: exiting now (a batch not yet written is not "
                "committed and is read again on the next start)",
                what,
                seconds,
            )
            try:
                if before_exit is not None:
                    before_exit()
            finally:
                for handler in logging.getLogger().handlers:
                    handler.flush()
                os._exit(EXIT_CODE)

        # A daemon thread: it runs while the event loop is stuck, and never delays a normal exit.
        _armed = threading.Timer(seconds, expire)
        _armed.daemon = True
        _armed.start()
        return _armed
