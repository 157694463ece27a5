"""Client addresses never reach a log line."""

from __future__ import annotations

import logging

import pytest

from api.logs import RedactClientAddress


@pytest.mark.parametrize(
    "address", ["127.0.0.1:51234", "203.0.113.9:80", "::1", "[2001:db8::1]:443"]
)
def test_the_client_address_is_replaced(address: str) -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        (address, "GET", "/", "1.1", 200),
        None,
    )
    RedactClientAddress().filter(record)
    assert address not in record.getMessage()
    assert record.getMessage() == '- - "GET / HTTP/1.1" 200'


def test_other_messages_are_untouched() -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, "", 0, "Started %s", ("server",), None
    )
    RedactClientAddress().filter(record)
    assert record.getMessage() == "Started server"
