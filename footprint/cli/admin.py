"""One admin call to a running API, for the commands that manage it (``sites``, ``users``).

The token is minted from ``FOOTPRINT_JWT_SECRET`` (the development secret unless one is set),
like ``footprint token --admin``, and lives five minutes.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx

from footprint.settings import Settings
from footprint.tokens import mint_token

__all__ = ["admin_call"]


def _detail(r: httpx.Response) -> str:
    try:
        detail = r.json().get("detail", r.text)
    except ValueError:
        return r.text
    if isinstance(detail, list):  # a 422: the parts that are wrong
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    return str(detail)


def admin_call(
    settings: Settings,
    api: str,
    what: str,
    method: str,
    path: str,
    *,
    timeout: float = 30,
    **kwargs: Any,
) -> httpx.Response | int:
    """The API's answer, or the exit code once the reason is printed: 2 unreachable, 1 refused."""
    token = mint_token(settings, "footprint-cli", admin=True, ttl=300)
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=timeout) as c:
            r = c.request(method, api.rstrip("/") + path, **kwargs)
    except httpx.HTTPError as e:
        print(f"footprint {what.split()[0]}: cannot reach {api}: {e}", file=sys.stderr)
        return 2
    if r.status_code >= 400:
        print(f"footprint {what}: {r.status_code} {_detail(r)}", file=sys.stderr)
        return 1
    return r
