"""Turn a request (or a reported page view) into a ``Footprint``.

Privacy as in Plausible: the visitor id is a hash of the day's random salt
(``footprint.salts``), the site, the IP address and the user agent, so a visitor cannot be
followed across UTC days and the raw IP is never kept. A referrer keeps its scheme, host and
path only: its query string and fragment (``/reset?token=…``) and any user name and password
are dropped.
"""

from __future__ import annotations

import functools
import hashlib
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

from ua_parser import parse as parse_ua

from footprint.schema import Footprint, FootprintIn
from footprint.schema_types import MAX_LINK, MAX_TEXT

__all__ = [
    "Agent",
    "clean_referrer",
    "enrich",
    "parse_agent",
    "referrer_host",
    "site_of",
    "utm_from_query",
    "visitor_id",
]

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_BOT_MARKERS = ("bot", "crawler", "spider", "slurp", "headless", "lighthouse")


class Agent(NamedTuple):
    """Browser, OS and device family of a user agent, and whether it is a bot."""

    browser: str
    os: str
    device: str
    is_bot: bool


@functools.lru_cache(maxsize=4096)
def parse_agent(user_agent: str) -> Agent:
    """Families from ua-parser; ``Other`` when unknown. Cached: sites see few distinct agents."""
    if not user_agent:
        return Agent("Other", "Other", "Other", False)
    result = parse_ua(user_agent)
    browser = result.user_agent.family if result.user_agent else "Other"
    os_family = result.os.family if result.os else "Other"
    device = result.device.family if result.device else "Other"
    lowered = user_agent.lower()
    is_bot = device == "Spider" or any(marker in lowered for marker in _BOT_MARKERS)
    return Agent(browser, os_family, device, is_bot)


def visitor_id(salt: bytes, site: str, ip: str, user_agent: str) -> str:
    """A cookieless visitor id: the same for the same day's salt, site, IP and agent only."""
    digest = hashlib.blake2b(f"{site}\x00{ip}\x00{user_agent}".encode(), key=salt, digest_size=8)
    return digest.hexdigest()


def site_of(host: str) -> str:
    """The lower-case host name of a ``Host`` header (or an ``Origin``), without the port."""
    if not host:
        return ""
    try:
        return (urlsplit(host if "//" in host else "//" + host).hostname or "")[:MAX_TEXT]
    except ValueError:
        return ""


def clean_referrer(referrer: str) -> str:
    """``scheme://host[:port]/path`` of a referrer: no query, fragment or user info; empty when
    it cannot be parsed (what cannot be parsed cannot be stripped safely)."""
    if not referrer:
        return ""
    try:
        parts = urlsplit(referrer)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return ""
    host = parts.netloc.rpartition("@")[2].lower()
    if host:
        origin = f"{parts.scheme}://{host}" if parts.scheme else f"//{host}"
    else:  # mailto:…, a bare path
        origin = f"{parts.scheme}:" if parts.scheme else ""
    return (origin + parts.path)[:MAX_LINK]


def referrer_host(referrer: str) -> str:
    """The host part of a referrer URL, lower-cased; empty when there is none."""
    if not referrer:
        return ""
    try:
        return (urlsplit(referrer).hostname or "")[:MAX_TEXT]
    except ValueError:
        return ""


def utm_from_query(query: str) -> dict[str, str]:
    """The ``utm_*`` parameters of a query string."""
    if "utm_" not in query:
        return {}
    return {k: v[:MAX_TEXT] for k, v in parse_qsl(query) if k in UTM_FIELDS}


def enrich(item: FootprintIn, *, ip: str, user_agent: str, site: str, salt: bytes) -> Footprint:
    """The full footprint for a reported page view; body fields win over request headers."""
    site = item.site if item.site is not None else site
    agent_string = item.user_agent if item.user_agent is not None else user_agent
    agent = parse_agent(agent_string[:MAX_TEXT])
    referrer = clean_referrer(item.referrer or "")
    return Footprint(
        event_id=item.event_id,
        method=item.method,
        link=item.link,
        footprint_time=item.footprint_time,
        route=item.route or "",
        status_code=item.status_code or 0,
        duration_ms=item.duration_ms or 0.0,
        referrer=referrer,
        referrer_host=referrer_host(referrer),
        utm_source=item.utm_source or "",
        utm_medium=item.utm_medium or "",
        utm_campaign=item.utm_campaign or "",
        utm_term=item.utm_term or "",
        utm_content=item.utm_content or "",
        browser=agent.browser,
        os=agent.os,
        device=agent.device,
        is_bot=agent.is_bot,
        visitor_id=visitor_id(salt, site, ip, agent_string),
        user_id=item.user_id or "",
        site=site,
        name=item.name,
        props=item.props,
    )
