"""``footprint users delete|export USER_ID``: a person's data, through a running API.

Calls the admin endpoints (``/api/v1/users/{user_id}``) with an admin token minted from
``FOOTPRINT_JWT_SECRET``, like ``footprint sites``. ``export`` prints the JSON document (to a
file with ``-o``); ``delete`` prints what was removed from each store.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import quote

import httpx

from footprint.cli.sites import _detail
from footprint.settings import Settings
from footprint.tokens import mint_token

__all__ = ["main"]


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``users`` action; 0 when done, 1 when the API refused it, 2 when unreachable."""
    token = mint_token(settings, "footprint-cli", admin=True, ttl=300)
    url = args.api.rstrip("/") + "/api/v1/users/" + quote(args.user_id, safe="")
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=300) as client:
            r = client.delete(url) if args.action == "delete" else client.get(url + "/export")
    except httpx.HTTPError as e:
        print(f"footprint users: cannot reach {args.api}: {e}", file=sys.stderr)
        return 2
    if r.status_code >= 400:
        print(f"footprint users {args.action}: {r.status_code} {_detail(r)}", file=sys.stderr)
        return 1
    if args.action == "export":
        text = json.dumps(r.json(), indent=2, ensure_ascii=False)
        if args.output:
            Path(args.output).write_text(text + "\n", encoding="utf-8")
        else:
            print(text)
        return 0
    for store, tables in r.json()["deleted"].items():
        for table, n in tables.items():
            print(f"{store}\t{table}\t{n}")
    return 0
