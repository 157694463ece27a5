"""``footprint goals add|list|remove``: a site's goals on a running Footprint, from a shell.

Calls ``/api/v1/sites/goals`` with an admin token minted from ``FOOTPRINT_JWT_SECRET``, like
``footprint sites``::

    footprint goals add example.com --event Signup
    footprint goals add example.com --page '/blog/**' --name 'Reads the blog'
    footprint goals list example.com
    footprint goals remove example.com 2
"""

from __future__ import annotations

import argparse

from footprint.cli.admin import admin_call
from footprint.settings import Settings

__all__ = ["main"]


_BASE = "/api/v1/sites/goals"


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``goals`` action; 0 when done, 1 when the API refused it, 2 when unreachable."""
    what = f"goals {args.action}"
    if args.action == "add":
        body = {"site_id": args.domain, "display_name": args.name}
        if args.page is not None:
            body |= {"goal_type": "page", "page_path": args.page}
        else:
            body |= {"goal_type": "event", "event_name": args.event}
        r = admin_call(settings, args.api, what, "PUT", _BASE, json=body)
    elif args.action == "remove":
        path = f"{_BASE}/{args.goal_id}"
        r = admin_call(settings, args.api, what, "DELETE", path, params={"site_id": args.domain})
    else:
        r = admin_call(settings, args.api, what, "GET", _BASE, params={"site_id": args.domain})
    if isinstance(r, int):
        return r
    goals = [r.json()] if args.action == "add" else r.json().get("goals", [])
    for goal in goals:
        what = goal["event_name"] if goal["goal_type"] == "event" else goal["page_path"]
        print(f"{goal['id']}\t{goal['display_name']}\t{goal['goal_type']} {what}")
    if args.action == "remove":
        print(f"Removed goal {args.goal_id} of {args.domain}.")
    return 0
