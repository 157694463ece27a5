"""``footprint sites add|list|remove``: the sites registry of a running Footprint, from a shell.

Calls the admin endpoints (``/api/v1/sites``) with an admin token minted from
``FOOTPRINT_JWT_SECRET`` (the development secret unless one is set), like ``footprint token``.
``add`` prints the new site's API key alone on its last line, for scripts::

    KEY=$(footprint sites add example.com | tail -n1)
"""

from __future__ import annotations

import argparse

from footprint.cli.admin import admin_call
from footprint.settings import Settings

__all__ = ["main"]

_BASE = "/api/v1/sites"


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``sites`` action; 0 when done, 1 when the API refused it, 2 when unreachable."""
    what = f"sites {args.action}"
    if args.action == "add":
        r = admin_call(settings, args.api, what, "POST", _BASE, json={"domain": args.domain})
    elif args.action == "remove":
        r = admin_call(settings, args.api, what, "DELETE", f"{_BASE}/{args.domain}")
    else:
        r = admin_call(settings, args.api, what, "GET", _BASE)
    if isinstance(r, int):
        return r
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
