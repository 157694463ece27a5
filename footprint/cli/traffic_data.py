"""What ``footprint generate``'s traffic is made of: real user agents, referrers, campaigns, words.

Weighted lists (``(item, weight)``) that ``footprint/cli/traffic.py`` picks from; data only.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ACTIONS",
    "AGENTS",
    "CAMPAIGNS",
    "COMMENTS",
    "MODERATOR",
    "NAMES",
    "REASONS",
    "REFERRERS",
    "SEARCHES",
    "SITE",
    "TAGS",
    "TITLES",
    "ActionKind",
    "Kind",
]

Kind = Literal["desktop", "mobile", "bot"]
ActionKind = Literal["follow", "post", "comment", "reply", "penalty"]

SITE = "https://blog.example.com"
MODERATOR = "moderator"

# Real user agents; {chrome}, {ff}, {safari}, {ios} and {android} vary per visitor so that
# visitors (a hash of IP and user agent) are many even when every request comes from one host.
DESKTOP = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/{chrome}.0.0.0 Safari/537.36",
        40,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/{chrome}.0.0.0 Safari/537.36",
        18,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/{safari} Safari/605.1.15",
        12,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/{chrome}.0.0.0 Safari/537.36 Edg/{chrome}.0.2592.87",
        10,
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{ff}.0) Gecko/20100101 Firefox/{ff}.0", 8),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:{ff}.0) Gecko/20100101 Firefox/{ff}.0", 5),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/{chrome}.0.0.0 Safari/537.36",
        7,
    ),
]
MOBILE = [
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/{safari} Mobile/15E148 Safari/604.1",
        38,
    ),
    (
        "Mozilla/5.0 (Linux; Android {android}; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/{chrome}.0.0.0 Mobile Safari/537.36",
        35,
    ),
    (
        "Mozilla/5.0 (Linux; Android {android}; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/25.0 Chrome/{chrome}.0.0.0 Mobile Safari/537.36",
        10,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/{safari} Mobile/15E148 Safari/604.1",
        7,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/{chrome}.0.6478.54 Mobile/15E148 Safari/604.1",
        6,
    ),
    ("Mozilla/5.0 (Android {android}; Mobile; rv:{ff}.0) Gecko/{ff}.0 Firefox/{ff}.0", 4),
]
BOTS = [
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 30),
    (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/{chrome}.0.6478.126 Mobile Safari/537.36 "
        "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        15,
    ),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 15),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", 10),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", 8),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
        "+https://openai.com/gptbot)",
        8,
    ),
    ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", 5),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
        5,
    ),
    ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", 4),
]
AGENTS: dict[Kind, list[tuple[str, int]]] = {"desktop": DESKTOP, "mobile": MOBILE, "bot": BOTS}

# Where visits come from; "" is a direct visit (typed URL, bookmark, app).
REFERRERS = [
    ("", 38),
    ("https://www.google.com/", 30),
    ("https://news.ycombinator.com/", 6),
    ("https://www.reddit.com/r/programming/", 5),
    ("https://www.bing.com/", 4),
    ("https://duckduckgo.com/", 4),
    ("https://t.co/", 4),
    ("https://www.linkedin.com/", 3),
    ("https://www.facebook.com/", 2),
    ("https://lobste.rs/", 2),
    ("https://dev.to/", 2),
]
# (utm_source, utm_medium, utm_campaign, utm_term, referrer the click comes with)
CAMPAIGNS = [
    ("newsletter", "email", "weekly-digest", "", ""),
    ("twitter", "social", "launch-week", "", "https://t.co/"),
    ("google", "cpc", "brand-search", "footprint analytics", "https://www.google.com/"),
    ("hackernews", "referral", "show-hn", "", "https://news.ycombinator.com/"),
    ("partner-blog", "referral", "guest-post", "", "https://engineering.partner.example/"),
]
TAGS = ["python", "fastapi", "kafka", "faust", "postgres", "clickhouse", "redis", "devops"]
TAGS += ["analytics", "privacy", "asyncio", "docker", "streaming", "sql", "testing", "career"]
SEARCHES = ["kafka", "fastapi+middleware", "clickhouse", "redis", "faust+tables", "jwt", "docker"]
NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
NAMES += ["mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter"]
NAMES += ["yuna", "minjun", "seoyeon", "hana", "jisoo", "kenji", "aiko", "lucas", "sofia", "mateo"]
TITLES = ["Counting visits with Faust tables", "Why we moved analytics to ClickHouse"]
TITLES += ["A week of on-call notes", "Cookieless visitor counts", "Ten FastAPI tips"]
COMMENTS = ["Great write-up, thanks!", "How does this handle late events?", "+1, same here."]
COMMENTS += ["Could you share the benchmark?", "This saved me a day.", "I disagree, see below."]
REASONS = ["spam links in comments", "harassment", "repeated off-topic posts"]
# Per-kind action weights: conversations (comments, replies) and follows dominate.
ACTIONS: list[tuple[ActionKind, int]] = [
    ("follow", 35),
    ("post", 20),
    ("comment", 30),
    ("reply", 13),
    ("penalty", 2),
]
