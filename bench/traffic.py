"""Synthetic footprints as the middleware would produce them: ~200 links, Zipf-like popularity."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

from footprint.schema import Footprint

__all__ = ["LINKS", "USER_AGENTS", "footprints"]

LINKS: list[str] = ["/", "/about", "/archive", "/tags", "/search", "/feed.xml"] + [
    f"/posts/{i}" for i in range(1, 195)
]

# (browser, os, device, is_bot): the families ua-parser reports for a typical mix of agents.
_AGENTS = [
    ("Chrome", "Windows", "Other", False),
    ("Chrome Mobile", "Android", "Samsung SM-S911B", False),
    ("Mobile Safari", "iOS", "iPhone", False),
    ("Firefox", "Linux", "Other", False),
    ("Safari", "Mac OS X", "Mac", False),
    ("Edge", "Windows", "Other", False),
    ("Googlebot", "Other", "Spider", True),
]
_REFERRERS = [
    "",
    "",
    "",
    "https://www.google.com/",
    "https://news.ycombinator.com/",
    "https://t.co/x",
]

# Real user agents for the HTTP load (the middleware parses them with ua-parser).
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]


def footprints(
    n: int, *, end: float, span: float = 600.0, seed: int = 1, visitors: int = 5000
) -> list[Footprint]:
    """``n`` validated footprints with times spread evenly over ``[end - span, end)``."""
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) for rank in range(len(LINKS))]
    links = rng.choices(LINKS, weights, k=n)
    out: list[Footprint] = []
    for i, link in enumerate(links):
        browser, os_family, device, is_bot = rng.choice(_AGENTS)
        referrer = rng.choice(_REFERRERS)
        out.append(
            Footprint(
                event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                method="POST" if rng.random() < 0.05 else "GET",
                link=link,
                footprint_time=datetime.fromtimestamp(end - span + span * i / n, UTC),
                route="/posts/{post_id}" if link.startswith("/posts/") else link,
                status_code=200,
                duration_ms=round(rng.uniform(0.5, 40.0), 3),
                referrer=referrer,
                referrer_host=referrer.split("/")[2] if referrer else "",
                utm_source="newsletter" if rng.random() < 0.1 else "",
                browser=browser,
                os=os_family,
                device=device,
                is_bot=is_bot,
                visitor_id=f"{rng.randrange(visitors):016x}",
            )
        )
    return out
