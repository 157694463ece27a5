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
import sys

import httpx

from footprint.cli.sites import detail
from footprint.settings import Settings
from footprint.tokens import mint_token

__all__ = ["main"]


def _request(client: httpx.Client, base: str, args: argparse.Namespace) -> httpx.Response:
    if args.action == "add":
        body = {"site_id": args.domain, "display_name": args.name}
        if args.page is not None:
            body |= {"goal_type": "page", "page_path": args.page}
        else:
            body |= {"goal_type": "event", "event_name": args.event}
        return client.put(base, json=body)
    if args.action == "remove":
        return client.delete(f"{base}/{args.goal_id}", params={"site_id": args.domain})
    return client.get(base, params={"site_id": args.domain})


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``goals`` action; 0 when done, 1 when the API refused it, 2 when unreachable."""
    token = mint_token(settings, "footprint-cli", admin=True, ttl=300)
    base = args.api.rstrip("/") + "/api/v1/sites/goals"
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            r = _request(client, base, args)
    except httpx.HTTPError as e:
        print(f"footprint goals: cannot reach {args.api}: {e}", file=sys.stderr)
        return 2
    if r.status_code >= 400:
        print(f"footprint goals {args.action}: {r.status_code} {detail(r)}", file=sys.stderr)
        return 1
    goals = [r.json()] if args.action == "add" else r.json().get("goals", [])
    for goal in goals:
        what = goal["event_name"] if goal["goal_type"] == "event" else goal["page_path"]
        print(f"{goal['id']}\t{goal['display_name']}\t{goal['goal_type']} {what}")
    if args.action == "remove":
        print(f"Removed goal {args.goal_id} of {args.domain}.")
    return 0
