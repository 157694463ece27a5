"""Site domains, site API keys and shared-link tokens: how they are written, made and stored.

A key is ``fp_`` + 43 URL-safe characters (32 random bytes), a shared link's token ``fpl_`` +
the same: the prefix tells them apart from JWTs (which start ``eyJ``) at a glance and in code.
Only the sha256 of a token is stored (``sql/postgres/005_sites.sql``); 32 random bytes need no
slow password hash, as nobody can guess them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets

import idna

__all__ = [
    "KEY_PREFIX",
    "LINK_PREFIX",
    "hash_secret",
    "is_site_secret",
    "new_key",
    "new_link_token",
    "normalise_domain",
    "RESERVED_NAMES",
]

KEY_PREFIX = "fp_"
LINK_PREFIX = "fpl_"
MAX_DOMAIN = 253  # DNS
# Paths of the sites API beside /api/v1/sites/{domain}: no site takes these names.
RESERVED_NAMES = ("goals", "funnels")


def new_key() -> str:
    """A fresh site API key (shown once; store ``hash_secret`` of it)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_link_token() -> str:
    """A fresh shared-link token."""
    return LINK_PREFIX + secrets.token_urlsafe(32)


def hash_secret(token: str) -> bytes:
    """What is stored of a key or link token: its sha256."""
    return hashlib.sha256(token.encode()).digest()


def is_site_secret(token: str | None) -> bool:
    """Whether a credential is a site key or link token rather than a user's JWT."""
    return bool(token) and token.startswith((KEY_PREFIX, LINK_PREFIX))  # type: ignore[union-attr]


def normalise_domain(value: str) -> str:
    """A site's domain as footprints carry it: lower-case host name, nothing else.

    Raises ValueError saying what is wrong: a scheme, path, port, user, query or a name that is
    not a host (``example.com``, ``blog.example.com``, ``localhost``, an IP address).
    """
    text = value.strip().rstrip(".").lower()
    if not text:
        raise ValueError("a domain is required, e.g. example.com")
    if "://" in text:
        raise ValueError("give the domain alone, without a scheme (example.com, not https://…)")
    for char, what in (("/", "path"), ("?", "query"), ("#", "fragment"), ("@", "user")):
        if char in text:
            raise ValueError(f"give the domain alone, without a {what}")
    if text.startswith("[") or _is_ip(text):
        return str(ipaddress.ip_address(text.strip("[]")))
    if ":" in text:
        raise ValueError("give the domain alone, without a port")
    try:
        # IDNA 2008 (the idna package): "bücher.example" is stored as the browsers' Host is.
        ascii_name = idna.encode(text, uts46=True).decode()
    except idna.IDNAError as e:
        raise ValueError(f"not a valid domain name: {e}") from None
    if len(ascii_name) > MAX_DOMAIN:
        raise ValueError(f"a domain has at most {MAX_DOMAIN} characters")
    if ascii_name in RESERVED_NAMES:
        raise ValueError(f"{ascii_name!r} is a path of the sites API, not a site's name")
    return ascii_name


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True
