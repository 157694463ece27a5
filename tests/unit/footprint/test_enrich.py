"""footprint/enrich.py: agent families, the cookieless visitor id, UTM and referrer parsing."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest

from footprint.enrich import (
    clean_referrer,
    enrich,
    parse_agent,
    referrer_host,
    site_of,
    utm_from_query,
    visitor_id,
)
from footprint.schema import FootprintIn

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
IP = "203.0.113.42"
SALT = bytes(range(32))
SITE = "shop.example"
NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_desktop_chrome() -> None:
    agent = parse_agent(CHROME)
    assert agent.browser == "Chrome"
    assert agent.os == "Windows"
    assert agent.is_bot is False


def test_iphone_safari() -> None:
    agent = parse_agent(IPHONE)
    assert agent.browser == "Mobile Safari"
    assert agent.os == "iOS"
    assert agent.device == "iPhone"
    assert agent.is_bot is False


def test_googlebot_is_a_bot() -> None:
    agent = parse_agent(GOOGLEBOT)
    assert agent.browser == "Googlebot"
    assert agent.is_bot is True


@pytest.mark.parametrize("ua", ["HeadlessChrome/120.0", "some-crawler/1.0", "Chrome-Lighthouse"])
def test_bot_markers(ua: str) -> None:
    assert parse_agent(ua).is_bot is True


def test_empty_agent_is_other() -> None:
    assert tuple(parse_agent("")) == ("Other", "Other", "Other", False)


# --- visitor id ------------------------------------------------------------------------------


def _vid(ip: str = IP, ua: str = CHROME, salt: bytes = SALT, site: str = SITE) -> str:
    return visitor_id(salt, site, ip, ua)


def test_visitor_id_is_stable_for_the_same_salt() -> None:
    assert _vid() == _vid()


def test_visitor_id_differs_by_agent_ip_site_and_salt() -> None:
    base = _vid()
    assert _vid(ua=IPHONE) != base
    assert _vid(ip="198.51.100.7") != base
    assert _vid(site="blog.example") != base  # no linking one visitor across sites
    assert _vid(salt=secrets.token_bytes(32)) != base  # a new day's salt: a new visitor


def test_visitor_id_fields_cannot_be_shifted_into_each_other() -> None:
    # "a" + "b.c" must not hash like "a.b" + "c": the fields are separated.
    assert visitor_id(SALT, "a", "b.c", CHROME) != visitor_id(SALT, "a.b", "c", CHROME)


def test_visitor_id_never_contains_the_ip() -> None:
    vid = _vid()
    assert IP not in vid
    assert len(vid) == 16
    assert set(vid) <= set("0123456789abcdef")  # a short keyed hex digest, nothing readable


@pytest.mark.parametrize(
    ("host", "site"),
    [
        ("Shop.Example:8443", "shop.example"),
        ("https://Shop.Example", "shop.example"),  # an Origin header
        ("[2001:db8::1]:80", "2001:db8::1"),
        ("", ""),
        ("[::1", ""),
    ],
)
def test_site_of(host: str, site: str) -> None:
    assert site_of(host) == site


# --- utm and referrer ------------------------------------------------------------------------


def test_utm_from_query() -> None:
    query = "utm_source=newsletter&utm_medium=email&x=1&utm_campaign=black%20friday&utm_term=a+b"
    assert utm_from_query(query) == {
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "black friday",
        "utm_term": "a b",
    }


@pytest.mark.parametrize("query", ["", "page=2", "utm_sourcex=1&not_utm=2"])
def test_utm_from_query_without_utm(query: str) -> None:
    assert utm_from_query(query) == {}


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        ("https://WWW.Example.com:8443/post?id=1", "www.example.com"),
        ("http://news.ycombinator.com/", "news.ycombinator.com"),
        ("", ""),
        ("/relative/only", ""),
        ("http://[::1", ""),  # malformed IPv6: no exception, no host
    ],
)
def test_referrer_host(referrer: str, host: str) -> None:
    assert referrer_host(referrer) == host


@pytest.mark.parametrize(
    ("referrer", "stored"),
    [
        ("https://app.example/reset?token=s3cr3t#step2", "https://app.example/reset"),
        ("https://bob:hunter2@Mail.Example:8443/inbox?id=9", "https://mail.example:8443/inbox"),
        ("https://www.google.com/search?q=my+diagnosis", "https://www.google.com/search"),
        ("http://news.example/a/b;jsessionid=1/c", "http://news.example/a/b;jsessionid=1/c"),
        ("https://t.example#access_token=abc", "https://t.example"),
        ("//cdn.example/x?y", "//cdn.example/x"),
        ("/relative/only?session=1", "/relative/only"),
        ("android-app://com.google.android.gm/", "android-app://com.google.android.gm/"),
        ("mailto:a@b.example?subject=x", "mailto:a@b.example"),
        ("http://[::1", ""),  # malformed: dropped, it cannot be stripped safely
        ("http://example.com:port/?x", ""),
        ("", ""),
    ],
)
def test_clean_referrer_keeps_scheme_host_and_path_only(referrer: str, stored: str) -> None:
    assert clean_referrer(referrer) == stored


# --- enrich ----------------------------------------------------------------------------------


def test_enrich_prefers_body_user_agent_over_header() -> None:
    item = FootprintIn(method="GET", link="/a", footprint_time=NOON, user_agent=IPHONE)
    fp = enrich(item, ip=IP, user_agent=CHROME, site=SITE, salt=SALT)
    assert fp.browser == "Mobile Safari"
    assert fp.device == "iPhone"
    assert fp.visitor_id == _vid(ua=IPHONE)


def test_enrich_falls_back_to_header_user_agent() -> None:
    item = FootprintIn(method="GET", link="/a", footprint_time=NOON)
    fp = enrich(item, ip=IP, user_agent=GOOGLEBOT, site=SITE, salt=SALT)
    assert fp.browser == "Googlebot"
    assert fp.is_bot is True
    assert fp.visitor_id == _vid(ua=GOOGLEBOT)


def test_enrich_fills_every_derived_field_and_keeps_no_ip() -> None:
    item = FootprintIn(
        method="post",
        link="/checkout",
        footprint_time=NOON,
        route="/checkout",
        status_code=201,
        duration_ms=12.5,
        referrer="https://Search.Example.org/q?x=1#frag",
        utm_source="ads",
        utm_campaign="winter",
        user_id="u-1",
    )
    fp = enrich(item, ip=IP, user_agent=CHROME, site=SITE, salt=SALT)
    assert fp.event_id == item.event_id
    assert fp.method == "POST"
    assert (fp.route, fp.status_code, fp.duration_ms) == ("/checkout", 201, 12.5)
    assert fp.referrer_host == "search.example.org"
    assert fp.referrer == "https://search.example.org/q"
    assert (fp.utm_source, fp.utm_medium, fp.utm_campaign) == ("ads", "", "winter")
    assert fp.user_id == "u-1"
    assert fp.footprint_time == NOON
    assert IP.encode() not in fp.to_bytes()
    assert CHROME.encode() not in fp.to_bytes()  # the raw user agent does not travel either


def test_enrich_defaults_for_a_minimal_footprint() -> None:
    fp = enrich(FootprintIn(method="GET", link="/"), ip=IP, user_agent="", site=SITE, salt=SALT)
    assert (fp.route, fp.status_code, fp.duration_ms, fp.referrer_host) == ("", 0, 0.0, "")
    assert fp.browser == "Other"


def test_enrich_takes_the_site_from_the_body_before_the_origin() -> None:
    item = FootprintIn(method="GET", link="/a", footprint_time=NOON, site="Blog.Example")
    fp = enrich(item, ip=IP, user_agent=CHROME, site=SITE, salt=SALT)
    assert fp.site == "blog.example"
    assert fp.visitor_id == _vid(site="blog.example")  # one visitor id per site
    item = FootprintIn(method="GET", link="/a")
    fp = enrich(item, ip=IP, user_agent=CHROME, site=SITE, salt=SALT)
    assert fp.site == SITE


def test_enrich_keeps_the_event_name_and_props() -> None:
    item = FootprintIn(method="GET", link="/a", name="Signup", props={"plan": "pro"})
    fp = enrich(item, ip=IP, user_agent=CHROME, site=SITE, salt=SALT)
    assert (fp.name, fp.props) == ("Signup", {"plan": "pro"})
