"""footprint generate: the seeded traffic plan and the token bucket, without any server."""

from __future__ import annotations

import statistics
from collections import Counter
from itertools import islice

import pytest

from footprint.cli.generate import TokenBucket
from footprint.cli.traffic import Action, Mix, PageView, Traffic
from footprint.enrich import parse_agent
from footprint.schema import FootprintIn


def plan(seed: int | None, steps: int = 4000, **mix: float) -> list[PageView | Action]:
    traffic = Traffic(seed, Mix(**mix))  # type: ignore[arg-type]
    out: list[PageView | Action] = []
    for step in islice(traffic.steps(), steps):
        out.extend([step] if isinstance(step, Action) else step)
    return out


def views_of(items: list[PageView | Action]) -> list[PageView]:
    return [i for i in items if isinstance(i, PageView)]


def test_same_seed_same_sequence_and_another_seed_another() -> None:
    assert plan(1, 500) == plan(1, 500)
    assert plan(1, 500) != plan(2, 500)
    # The order of paths and actions is what a replay reproduces.
    first = [v.page.link for v in views_of(plan(42, 300))]
    assert first == [v.page.link for v in views_of(plan(42, 300))]


def test_popular_pages_dominate() -> None:
    counts = Counter(v.page.link for v in views_of(plan(3)))
    ranked = [n for _, n in counts.most_common()]
    top, median = ranked[0], statistics.median(ranked)
    assert top > 20 * median, (top, median)
    assert len(counts) > 100, "the long tail is visited too"


@pytest.mark.parametrize("share", [0.0, 0.1, 0.3])
def test_bot_share_is_what_was_asked_and_the_api_sees_them_as_bots(share: float) -> None:
    views = views_of(plan(4, bot_share=share))
    bots = sum(v.visitor.kind == "bot" for v in views)
    assert bots / len(views) == pytest.approx(share, abs=0.02)
    # The real user agents are classified by the API's own parser exactly as intended.
    agents = {(v.visitor.user_agent, v.visitor.kind == "bot") for v in views}
    assert all(parse_agent(agent).is_bot == is_bot for agent, is_bot in agents)


def test_device_mix_has_desktop_and_mobile() -> None:
    kinds = Counter(parse_agent(v.visitor.user_agent).device for v in views_of(plan(5)))
    assert kinds["iPhone"] and kinds["Mac"] and kinds["Spider"]


@pytest.mark.parametrize("share", [0.0, 0.15, 0.5])
def test_utm_share_of_visits(share: float) -> None:
    traffic = Traffic(6, Mix(utm_share=share, bot_share=0.0))
    visits = [traffic.visit() for _ in range(5000)]
    tagged = [v for v in visits if v[0].utm]
    assert len(tagged) / len(visits) == pytest.approx(share, abs=0.02)
    # Only the landing page carries the campaign; later clicks come from the site itself.
    assert all(not view.utm for visit in visits for view in visit[1:])
    assert all(view.referrer.startswith("https://blog.example.com/") for view in visits[0][1:])


def test_page_views_are_valid_api_input_with_referrers_and_users() -> None:
    views = views_of(plan(7, 1000))
    for view in views[:500]:
        FootprintIn.model_validate(view.to_json("2026-11-22T09:30:00Z"))
    referrers = Counter(v.referrer.split("/")[2] if v.referrer else "" for v in views)
    assert referrers["www.google.com"] and referrers[""] and referrers["blog.example.com"]
    assert any(v.visitor.user_id for v in views), "some visitors are signed in"
    assert not any(v.visitor.user_id for v in views if v.visitor.kind == "bot")


def test_actions_follow_the_ratio_and_refer_to_earlier_ones() -> None:
    items = plan(8, 6000, actions_ratio=0.05)
    views, actions = views_of(items), [i for i in items if isinstance(i, Action)]
    assert len(actions) / len(views) == pytest.approx(0.05, abs=0.01)
    assert {a.kind for a in actions} == {"follow", "post", "comment", "reply", "penalty"}
    posts = comments = 0
    for a in actions:
        assert a.actor != a.target
        if a.kind == "post":
            posts += 1
        if a.kind in ("comment", "reply"):
            assert a.post is not None and a.post < posts
            if a.kind == "reply":
                assert a.comment is not None and a.comment < comments
            comments += 1
    assert not [i for i in plan(9, 500, actions_ratio=0.0) if isinstance(i, Action)]


def test_bad_mix_is_refused() -> None:
    with pytest.raises(ValueError, match="bot_share"):
        Mix(bot_share=1.5)
    with pytest.raises(ValueError, match="users"):
        Mix(users=1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_paces_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(100, burst=10, clock=clock)
    assert bucket.reserve(10) == 0  # the burst
    assert bucket.reserve(1) == pytest.approx(0.01)
    assert bucket.reserve(5) == pytest.approx(0.06)  # queued behind the first reservation
    clock.now += 0.06
    assert bucket.reserve(0) == 0
    clock.now += 10  # idle: refills up to the burst, not beyond
    assert bucket.tokens == pytest.approx(0, abs=1e-9)
    assert bucket.reserve(0) == 0 and bucket.tokens == 10


def test_token_bucket_long_run_average_is_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(200, clock=clock)  # burst: a tenth of a second
    sent = 0
    start = clock.now
    while sent < 10_000:
        clock.now += bucket.reserve(3)  # a sender that sleeps exactly as told
        sent += 3
    assert sent / (clock.now - start) == pytest.approx(200, rel=0.01)


def test_token_bucket_refuses_a_rate_of_zero() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0)
