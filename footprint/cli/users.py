"""``footprint users delete|export USER_ID``: a person's data, through a running API.

Calls the admin endpoints (``/api/v1/users/{user_id}``) with an admin token minted from
``FOOTPRINT_JWT_SECRET``, like ``footprint sites``. ``export`` prints the JSON document (to a
file with ``-o``); ``delete`` prints what was removed from each store.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from urllib.parse import quote

from footprint.cli.admin import admin_call
from footprint.settings import Settings

__all__ = ["main"]


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``users`` action; 0 when done, 1 when the API refused it, 2 when unreachable."""
    path = "/api/v1/users/" + quote(args.user_id, safe="")
    what = f"users {args.action}"
    if args.action == "delete":
        r = admin_call(settings, args.api, what, "DELETE", path, timeout=300)
    else:
        r = admin_call(settings, args.api, what, "GET", path + "/export", timeout=300)
    if isinstance(r, int):
        return r
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
