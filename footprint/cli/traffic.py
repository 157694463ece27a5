"""What ``footprint generate`` sends: a seeded, endless plan of page views and community actions.

Pure and deterministic: the same seed and mix give the same sequence of steps, so a run can be
replayed. A step is either one visitor's small list of page views (what a browser tracker posts)
or one community action. Times and event ids are left to the sender and the API. The user
agents, referrers, campaigns and words it picks from are in ``footprint/cli/traffic_data.py``.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from footprint.cli.traffic_data import (
    ACTIONS,
    AGENTS,
    CAMPAIGNS,
    COMMENTS,
    MODERATOR,
    NAMES,
    REASONS,
    REFERRERS,
    SEARCHES,
    SITE,
    TAGS,
    TITLES,
    ActionKind,
    Kind,
)

__all__ = ["Action", "Mix", "Page", "PageView", "Step", "Traffic", "Visitor", "zipf_weights"]


@dataclass(frozen=True)
class Mix:
    """The shape of the traffic: shares are fractions in [0, 1]."""

    users: int = 50
    visitors: int = 400
    bot_share: float = 0.10
    mobile_share: float = 0.40
    utm_share: float = 0.15
    signed_in_share: float = 0.30
    actions_ratio: float = 0.05
    zipf_s: float = 1.1
    max_list: int = 5
    posts: int = 120

    def __post_init__(self) -> None:
        for name in ("bot_share", "mobile_share", "utm_share", "signed_in_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.users < 2 or self.visitors < 1 or self.max_list < 1 or self.posts < 1:
            raise ValueError("users must be at least 2; visitors, max_list and posts at least 1")
        if self.actions_ratio < 0:
            raise ValueError("actions_ratio must not be negative")


@dataclass(frozen=True)
class Page:
    """A page of the site: what is visited and its route template."""

    link: str
    route: str


@dataclass(frozen=True)
class Visitor:
    """A browser (or crawler) and, when signed in, its user."""

    kind: Kind
    user_agent: str
    user_id: str | None = None


@dataclass(frozen=True)
class PageView:
    """One page view as the tracker reports it."""

    page: Page
    visitor: Visitor
    referrer: str = ""
    utm: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    status_code: int = 200
    duration_ms: float = 0.0

    def to_json(self, footprint_time: str) -> dict[str, Any]:
        """The body item for ``POST /api/footprints``."""
        item: dict[str, Any] = {
            "method": self.method,
            "link": self.page.link,
            "route": self.page.route,
            "footprint_time": footprint_time,
            "status_code": self.status_code,
            "duration_ms": self.duration_ms,
            "user_agent": self.visitor.user_agent,
        }
        if self.referrer:
            item["referrer"] = self.referrer
        if self.visitor.user_id:
            item["user_id"] = self.visitor.user_id
        item.update(self.utm)
        return item


@dataclass(frozen=True)
class Action:
    """A community action; ``post`` and ``comment`` index the posts and comments planned so far."""

    kind: ActionKind
    actor: str
    target: str | None = None
    post: int | None = None
    comment: int | None = None
    text: str = ""


Step = tuple[PageView, ...] | Action


def zipf_weights(n: int, s: float) -> list[float]:
    """Cumulative Zipf weights for ranks 1..n (rank k has weight 1/k^s)."""
    return list(itertools.accumulate(1 / (k**s) for k in range(1, n + 1)))


def _pick(rng: random.Random, items: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([i for i, _ in items], weights=[w for _, w in items])[0]


@dataclass
class Traffic:
    """An endless seeded plan of page-view lists and community actions."""

    seed: int | None = None
    mix: Mix = field(default_factory=Mix)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        rng, mix = self.rng, self.mix
        self.users = [
            NAMES[i % len(NAMES)] + (str(i // len(NAMES)) if i >= len(NAMES) else "")
            for i in range(mix.users)
        ]
        self.pages = self._catalog()
        self._page_cum = zipf_weights(len(self.pages), mix.zipf_s)
        self._user_cum = zipf_weights(len(self.users), mix.zipf_s)
        humans = [self._visitor(rng.random() < mix.mobile_share) for _ in range(mix.visitors)]
        self.humans = humans
        self.bots = [Visitor("bot", self._agent("bot")) for _ in range(max(4, mix.visitors // 20))]
        self._posts: list[str] = []  # author of each planned post
        self._comments: list[tuple[int, str]] = []  # (post index, author) of each comment
        self._follows: set[tuple[str, str]] = set()

    # --- the catalog ---
    def _catalog(self) -> list[Page]:
        others = [Page(f"/posts/{i}", "/posts/{post_id}") for i in range(1, self.mix.posts + 1)]
        others += [Page(f"/tags/{t}", "/tags/{tag}") for t in TAGS]
        others += [Page(f"/users/{u}", "/users/{name}") for u in self.users[:30]]
        others += [Page(f"/search?q={q}", "/search") for q in SEARCHES]
        others += [Page(p, p) for p in ("/about", "/archive", "/login", "/signup", "/feed")]
        self.rng.shuffle(others)  # which posts are the hits depends on the seed
        return [Page("/", "/"), *others]

    def _agent(self, kind: Kind) -> str:
        rng = self.rng
        template = _pick(rng, AGENTS[kind])
        return str(template).format(
            chrome=rng.randint(118, 127),
            ff=rng.randint(120, 128),
            safari=f"{rng.randint(16, 17)}.{rng.randint(0, 6)}",
            ios=f"{rng.randint(16, 17)}_{rng.randint(0, 6)}",
            android=rng.randint(10, 14),
        )

    def _visitor(self, mobile: bool) -> Visitor:
        agent = self._agent("mobile" if mobile else "desktop")
        signed_in = self.rng.random() < self.mix.signed_in_share
        user = self.rng.choice(self.users) if signed_in else None
        return Visitor("mobile" if mobile else "desktop", agent, user)

    # --- sampling ---
    def page(self) -> Page:
        """A page, popular ones far more often (Zipf over the catalog's ranking)."""
        return self.pages[bisect.bisect(self._page_cum, self.rng.random() * self._page_cum[-1])]

    def _popular_user(self) -> str:
        index = bisect.bisect(self._user_cum, self.rng.random() * self._user_cum[-1])
        return self.users[index]

    def visit(self) -> tuple[PageView, ...]:
        """One visitor's next few page views: a landing page, then internal clicks."""
        rng, mix = self.rng, self.mix
        bot = rng.random() < mix.bot_share
        visitor = rng.choice(self.bots if bot else self.humans)
        referrer, utm = "", cast(tuple[tuple[str, str], ...], ())
        if not bot:
            if rng.random() < mix.utm_share:
                source, medium, campaign, term, referrer = rng.choice(CAMPAIGNS)
                tags = zip(
                    ("utm_source", "utm_medium", "utm_campaign", "utm_term"),
                    (source, medium, campaign, term),
                    strict=True,
                )
                utm = tuple((k, v) for k, v in tags if v)
            else:
                referrer = _pick(rng, REFERRERS)
        views: list[PageView] = []
        for i in range(rng.randint(1, mix.max_list)):
            page = self.page()
            status = 404 if rng.random() < 0.02 else 304 if rng.random() < 0.03 else 200
            views.append(
                PageView(
                    page,
                    visitor,
                    referrer if i == 0 else f"{SITE}{views[-1].page.link}",
                    utm if i == 0 else (),
                    "HEAD" if bot and rng.random() < 0.05 else "GET",
                    status,
                    round(math.exp(rng.gauss(math.log(40), 0.6)), 1),
                )
            )
        return tuple(views)

    def action(self) -> Action:
        """A community action consistent with the ones planned before it."""
        rng = self.rng
        kind: ActionKind = _pick(rng, ACTIONS)
        actor = rng.choice(self.users)
        if kind == "reply" and not self._comments:
            kind = "comment"
        if kind == "comment" and not self._posts:
            kind = "post"
        if kind == "follow":
            target = self._popular_user()
            if target == actor or (actor, target) in self._follows:
                target = rng.choice([u for u in self.users if u != actor])
            self._follows.add((actor, target))
            return Action("follow", actor, target=target)
        if kind == "post":
            author = self._popular_user()  # popular users write most of the posts
            self._posts.append(author)
            return Action("post", author, post=len(self._posts) - 1, text=rng.choice(TITLES))
        if kind == "comment":
            post = rng.randrange(len(self._posts))
            self._comments.append((post, actor))
            return Action("comment", actor, post=post, text=rng.choice(COMMENTS))
        if kind == "reply":
            comment = rng.randrange(len(self._comments))
            post = self._comments[comment][0]
            self._comments.append((post, actor))
            return Action("reply", actor, post=post, comment=comment, text=rng.choice(COMMENTS))
        return Action("penalty", MODERATOR, target=actor, text=rng.choice(REASONS))

    def steps(self) -> Iterator[Step]:
        """The plan: page-view lists, each followed by the actions its views brought."""
        while True:
            views = self.visit()
            yield views
            for _ in views:
                if self.rng.random() < self.mix.actions_ratio:
                    yield self.action()
