"""The visitor's address behind ``FOOTPRINT_TRUSTED_PROXIES`` reverse proxies.

Each proxy appends the address it was connected from to ``X-Forwarded-For``, so only the
rightmost hops were written by proxies we run; everything to their left came from the client and
may be made up. With ``n`` trusted proxies the visitor is the ``n``-th hop from the right, as
werkzeug's ``ProxyFix(x_for=n)`` counts. (Werkzeug's is WSGI middleware and uvicorn's
``ProxyHeadersMiddleware`` trusts proxies by address, not by count; the rule fits in here.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["client_ip", "forwarded_for"]


def forwarded_for(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """Every ``X-Forwarded-For`` line joined in order: a proxy may add a line of its own."""
    return ",".join(v.decode("latin-1") for k, v in headers if k.lower() == b"x-forwarded-for")


def _address(hop: str) -> str | None:
    hop = hop.strip()
    if hop.startswith("["):  # [2001:db8::1]:443
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:  # 203.0.113.7:443
        hop = hop.partition(":")[0]
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None


def client_ip(peer: str, forwarded: str, trusted_proxies: int) -> str:
    """The ``trusted_proxies``-th ``X-Forwarded-For`` hop from the right; the socket peer when
    no proxy is trusted, or the header is missing, too short or not an address there."""
    if trusted_proxies <= 0 or not forwarded:
        return peer
    hops = forwarded.split(",")
    if len(hops) < trusted_proxies:
        return peer
    return _address(hops[-trusted_proxies]) or peer
