"""footprint/client_ip.py: X-Forwarded-For read from the right through the trusted proxies only."""

from __future__ import annotations

import pytest

from footprint.client_ip import client_ip, forwarded_for

PEER = "10.0.0.9"  # the proxy (or the visitor, when nothing is trusted)


@pytest.mark.parametrize(
    ("forwarded", "trusted", "expected"),
    [
        # No proxy trusted: the header is anyone's to write, it is ignored.
        ("203.0.113.7", 0, PEER),
        # One proxy: it appended the address it saw; what the client wrote sits to its left.
        ("203.0.113.7", 1, "203.0.113.7"),
        ("6.6.6.6, 203.0.113.7", 1, "203.0.113.7"),
        ("1.1.1.1, 6.6.6.6, 203.0.113.7", 1, "203.0.113.7"),
        # Two proxies (CDN, then load balancer): the second hop from the right.
        ("6.6.6.6, 203.0.113.7, 198.51.100.2", 2, "203.0.113.7"),
        ("203.0.113.7, 198.51.100.2", 2, "203.0.113.7"),
        # Too short: the request did not come through every proxy, use the peer.
        ("203.0.113.7", 2, PEER),
        ("", 1, PEER),
        # Not an address where the proxy writes one: the peer, never the junk.
        ("6.6.6.6, not-an-ip", 1, PEER),
        ("6.6.6.6, ", 1, PEER),
        ("6.6.6.6, 203.0.113.7; DROP TABLE", 1, PEER),
        ("unknown", 1, PEER),
        # Normal forms proxies do write.
        (" 203.0.113.7 ", 1, "203.0.113.7"),
        ("203.0.113.7:51234", 1, "203.0.113.7"),
        ("2001:DB8::1", 1, "2001:db8::1"),
        ("[2001:db8::1]:443", 1, "2001:db8::1"),
    ],
)
def test_client_ip(forwarded: str, trusted: int, expected: str) -> None:
    assert client_ip(PEER, forwarded, trusted) == expected


def test_spoofed_leftmost_hops_never_win() -> None:
    spoofed = ", ".join(f"6.6.6.{i}" for i in range(50))
    assert client_ip(PEER, f"{spoofed}, 203.0.113.7", 1) == "203.0.113.7"


def test_every_header_line_counts_in_order() -> None:
    # A proxy may add its own X-Forwarded-For line instead of appending to the client's.
    headers = [
        (b"x-forwarded-for", b"6.6.6.6"),
        (b"user-agent", b"x"),
        (b"x-forwarded-for", b"203.0.113.7"),
    ]
    assert forwarded_for(headers) == "6.6.6.6,203.0.113.7"
    assert client_ip(PEER, forwarded_for(headers), 1) == "203.0.113.7"
