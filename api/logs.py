"""Keep client addresses and tokens out of the server's logs.

uvicorn's access and WebSocket lines start with the client's ``ip:port``; a visitor's IP address
is personal data Footprint never stores, so it is replaced before the line is written. Tokens
never reach a log line: ``/ws`` removes ``?token=`` from the request before accepting it.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactClientAddress", "install"]

_ADDRESS = re.compile(r"^(\d{1,3}(\.\d{1,3}){3}|\[?[0-9a-fA-F:]+\]?)(:\d+)?$")


class RedactClientAddress(logging.Filter):
    """Replace a leading client address argument with ``-``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple)
            and args
            and isinstance(args[0], str)
            and _ADDRESS.match(args[0])
        ):
            record.args = ("-", *args[1:])
        return True


_FILTER = RedactClientAddress()


def install() -> None:
    """Add the filter to uvicorn's loggers (idempotent)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
