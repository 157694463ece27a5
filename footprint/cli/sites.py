"""``footprint sites add|list|remove``: the sites registry of a running Footprint, from a shell.

Calls the admin endpoints (``/api/v1/sites``) with an admin token minted from
``FOOTPRINT_JWT_SECRET`` (the development secret unless one is set), like ``footprint token``.
``add`` prints the new site's API key alone on its last line, for scripts::

    KEY=$(footprint sites add example.com | tail -n1)
"""

from __future__ import annotations

import argparse
import sys

import httpx

from footprint.settings import Settings
from footprint.tokens import mint_token

__all__ = ["main"]


def detail(r: httpx.Response) -> str:
    """The reason of an error answer, for a person to read."""
    try:
        detail = r.json().get("detail", r.text)
    except ValueError:
        return r.text
    if isinstance(detail, list):  # a 422: the parts that are wrong
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    return str(detail)


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``sites`` action; 0 when done, 1 when the API refused it, 2 when unreachable."""
    token = mint_token(settings, "footprint-cli", admin=True, ttl=300)
    base = args.api.rstrip("/") + "/api/v1/sites"
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            if args.action == "add":
                r = client.post(base, json={"domain": args.domain})
            elif args.action == "remove":
                r = client.delete(f"{base}/{args.domain}")
            else:
                r = client.get(base)
    except httpx.HTTPError as e:
        print(f"footprint sites: cannot reach {args.api}: {e}", file=sys.stderr)
        return 2
    if r.status_code >= 400:
        print(f"footprint sites {args.action}: {r.status_code} {detail(r)}", file=sys.stderr)
        return 1
    if args.action == "add":
        site = r.json()
        print(f"Registered {site['domain']}. Its API key (shown once, key id {site['key_id']}):")
        print(site["api_key"])
    elif args.action == "remove":
        print(f"Removed {args.domain} with its keys and shared links (its footprints are kept).")
    else:
        for site in r.json()["sites"]:
            print(
                f"{site['domain']}\tcreated {site['created_at']}\t"
                f"{site['keys']} keys\t{site['shared_links']} shared links"
            )
    return 0
