"""Turn a request (or a reported page view) into a ``Footprint``.

Privacy as in Plausible: the visitor id is a keyed hash of IP and user agent with a salt that
rotates every UTC day, so a visitor cannot be followed across days and the raw IP is never kept.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from datetime import UTC, date, datetime
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

from ua_parser import parse as parse_ua

from schemas.footprint import MAX_TEXT, Footprint, FootprintIn

__all__ = ["Agent", "daily_salt", "enrich", "parse_agent", "referrer_host", "utm_from_query"]

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


def daily_salt(secret: str, day: date) -> bytes:
    """The salt for one UTC day, derived so that every API process agrees without sharing state."""
    return hmac.new(secret.encode(), day.isoformat().encode(), hashlib.sha256).digest()


@functools.lru_cache(maxsize=4)
def _salt_for(secret: str, day: date) -> bytes:
    return daily_salt(secret, day)


def visitor_id(ip: str, user_agent: str, *, secret: str, when: datetime) -> str:
    """A cookieless visitor id, stable within a UTC day only."""
    salt = _salt_for(secret, when.astimezone(UTC).date())
    digest = hashlib.blake2b(f"{ip}\x00{user_agent}".encode(), key=salt[:64], digest_size=8)
    return digest.hexdigest()


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


def enrich(item: FootprintIn, *, ip: str, user_agent: str, secret: str) -> Footprint:
    """The full footprint for a reported page view; body fields win over request headers."""
    agent_string = item.user_agent if item.user_agent is not None else user_agent
    agent = parse_agent(agent_string[:MAX_TEXT])
    referrer = item.referrer or ""
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
        visitor_id=visitor_id(ip, agent_string, secret=secret, when=item.footprint_time),
        user_id=item.user_id or "",
    )
