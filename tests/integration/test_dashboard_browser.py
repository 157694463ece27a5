"""The dashboard and the tracker in a real browser: Debian's headless Chromium on ``footprint run``.

One ``footprint run`` (API and worker) and one browser serve the module. The browser is driven
by Selenium through Debian's ``chromedriver`` (no browser download). The screenshot of the
dashboard is kept in ``tests/artifacts/dashboard.png``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from PIL import Image, ImageStat
from selenium import webdriver
from selenium.common.exceptions import ElementClickInterceptedException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from api.auth import mint_token
from footprint.settings import load_settings
from tests.integration.conftest import (
    JWT_SECRET,
    ROOT,
    Servers,
    footprint_run,
    free_port,
    make_env,
    wait_for_minute_room,
    wait_until,
)

pytestmark = pytest.mark.integration

# Debian's packages (make system-deps); elsewhere whatever Chromium and driver are on PATH.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = ROOT / "tests" / "artifacts"
SETTINGS = load_settings(jwt_secret=JWT_SECRET)
# The stats need a token: the dashboard gets it in its URL fragment, like `footprint run` prints.
ADMIN = mint_token(SETTINGS, "dashboard-admin", admin=True)
# A desktop Chrome, not "HeadlessChrome": headless agents are counted as bots, apart.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
DO_NOT_TRACK = "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'});"


@dataclass
class Running:
    base: str
    postgres_url: str
    log: Path

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)

    def live(self, window: str = "1h") -> dict[str, Any]:
        with self.api(ADMIN) as api:
            return api.get("/api/stats/live", params={"window": window, "top": 100}).json()


@pytest.fixture(scope="module")
def stack(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("dashboard")
    env = make_env(servers, tmp)
    with footprint_run(env, tmp / "run.log") as (base, _):
        yield Running(base, env["FOOTPRINT_POSTGRES_URL"], tmp / "run.log")


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium not installed (make system-deps installs it)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1360,1080",
        f"--user-agent={USER_AGENT}",
        # The events test's two shops, served from this machine under their own names: a page
        # posts its own site's events (another site's would be refused).
        "--host-resolver-rules=MAP plausible.shop 127.0.0.1, MAP footprint.shop 127.0.0.1",
    ):
        options.add_argument(flag)
    # Both paths given: Selenium Manager never tries to download a driver (there is no internet).
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_dom(driver: WebDriver, check: Callable[[WebDriver], Any], what: str, timeout: float = 60):
    """Wait on the page, failing with what was awaited and the page's visible text."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(check)
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what}; page:\n{body}"
        ) from None


def click(driver: WebDriver, by: str, selector: str, what: str) -> None:
    """Click once nothing covers the element: panels still loading move the layout (seen: a
    tab's click landing on a row of the panel above it, right after a reload)."""

    def clicked(d: WebDriver) -> bool:
        try:
            d.find_element(by, selector).click()
        except ElementClickInterceptedException:
            return False
        return True

    wait_dom(driver, clicked, f"a clear click on {what}")


def text(driver: WebDriver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text.strip()


def assert_not_blank(png: Path) -> None:
    """A real rendering: large enough, many colours, and not one flat colour."""
    with Image.open(png) as image:
        rgb = image.convert("RGB")
        assert rgb.width >= 1000 and rgb.height >= 700, rgb.size
        colours = rgb.getcolors(maxcolors=1_000_000) or []
        assert len(colours) > 200, f"only {len(colours)} colours: a blank page?"
        assert max(ImageStat.Stat(rgb.convert("L")).stddev) > 10, "almost a single colour"
        # Dark pixels are text, numbers and the chart line: a painted dashboard has plenty.
        dark = sum(n for n, (r, g, b) in colours if r + g + b < 300)
        assert dark > 0.002 * rgb.width * rgb.height, f"{dark} dark pixels"


def test_dashboard_without_a_token_says_how_to_get_one(stack: Running, browser: WebDriver) -> None:
    browser.get(stack.base + "/")
    wait_dom(browser, lambda d: d.find_element(By.ID, "access-error").is_displayed(), "the notice")
    notice = text(browser, "access-error")
    assert "needs a token" in notice and "footprint token --admin" in notice, notice
    assert browser.find_element(By.ID, "live-pill").get_attribute("data-state") == "locked"
    assert text(browser, "live-1m-total") == "–", "no figures without a token"


def test_dashboard_shows_live_counts_and_notifications(stack: Running, browser: WebDriver) -> None:
    wait_for_minute_room(25)  # the 1m window must not roll over while the page is watched
    browser.get(f"{stack.base}/#token={ADMIN}")
    # The token leaves the address bar at once (and was never sent: it is a fragment).
    wait_dom(browser, lambda d: "token" not in d.current_url, "the token to leave the URL")
    assert browser.current_url == stack.base + "/"
    wait_dom(
        browser,
        lambda d: (
            d.find_element(By.ID, "live-pill").get_attribute("data-state") == "live"
            and text(d, "live-1m-total") == "0"
        ),
        "the live socket's first snapshot",
    )

    links = ["/pricing"] * 4 + ["/blog/kafka-in-practice"] * 2 + ["/about"]
    with stack.api() as api:
        body = [{"method": "GET", "link": link, "user_agent": USER_AGENT} for link in links]
        assert api.post("/api/footprints", json=body).status_code == 202
    # No reload: the counter moves because /ws/live pushed the worker's update.
    wait_dom(browser, lambda d: text(d, "live-1m-total") == "7", "the 1m counter to reach 7")
    assert text(browser, "live-1m-visitors") == "1"
    assert text(browser, "live-1h-total") == "7"
    rows = browser.find_elements(By.CSS_SELECTOR, "#live-top li")
    assert [r.text.split("\n") for r in rows][:1] == [["/pricing", "4"]]

    # The page, its assets and its sockets are not footprints: the figure stays exact. The
    # reloaded page keeps its token (sessionStorage), though the address bar no longer has it.
    browser.refresh()
    wait_dom(browser, lambda d: text(d, "live-1m-total") == "7", "the counter after a reload")
    time.sleep(2)  # a counted page view would reach the worker within a batch or two
    assert stack.live("1m")["total"] == 7

    # Both stores answered the summary; both query times are shown side by side.
    wait_dom(
        browser,
        lambda d: text(d, "ms-postgres").endswith("ms") and text(d, "ms-clickhouse").endswith("ms"),
        "both query times",
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#chart canvas"), "the buckets chart"
    wait_dom(
        browser,
        lambda d: d.find_element(By.ID, "stream").get_attribute("data-alive") == "true",
        "the stream status to show a live worker",
    )

    # Sign in with a dev token; a moderator's penalty arrives live with the unread badge.
    browser.find_element(By.ID, "token").send_keys(mint_token(SETTINGS, "alice"))
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    wait_dom(browser, lambda d: text(d, "user-name") == "alice", "the hello of /ws")
    assert browser.find_element(By.ID, "badge").get_attribute("data-count") == "0"

    with stack.api(mint_token(SETTINGS, "mod", admin=True)) as moderator:
        r = moderator.post(
            "/api/admin/penalties", json={"user_id": "alice", "reason": "spam in comments"}
        )
        assert r.status_code == 201, r.text
    wait_dom(
        browser,
        lambda d: d.find_element(By.ID, "badge").get_attribute("data-count") == "1",
        "the unread badge to show 1",
    )
    assert text(browser, "badge") == "1"
    item = browser.find_element(By.CSS_SELECTOR, "#notifications .notification.unread")
    assert "spam in comments" in item.text and "mod" in item.text

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    # The whole page in one picture: grow the window by what the viewport does not show.
    hidden = browser.execute_script(
        "return document.documentElement.scrollHeight - window.innerHeight"
    )
    if hidden > 0:
        size = browser.get_window_size()
        browser.set_window_size(size["width"], size["height"] + hidden)
    assert browser.save_screenshot(str(shot))
    assert_not_blank(shot)

    # Reading it (REST, with the token) clears the badge.
    item.click()
    wait_dom(
        browser,
        lambda d: d.find_element(By.ID, "badge").get_attribute("data-count") == "0",
        "the badge to clear after reading",
    )
    assert not browser.find_element(By.ID, "access-error").is_displayed()
    assert ADMIN not in stack.log.read_text(errors="replace"), "the token reached the server log"


class _HostSite(BaseHTTPRequestHandler):
    """Another site (another origin) that includes the tracker; every path is its page."""

    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def host_site(stack: Running) -> Iterator[str]:
    page = f"""<!doctype html><html><head><title>Shop</title>
<script src="{stack.base}/tracker.js" data-api="{stack.base}" defer></script></head>
<body><h1>Shop</h1><a id="cart" href="/shop/cart"
onclick="history.pushState({{}}, '', '/shop/cart'); return false">cart</a></body></html>"""
    handler = type("Handler", (_HostSite,), {"page": page.encode()})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _counts(stack: Running, prefix: str) -> dict[str, int]:
    return {
        p["link"]: p["count"] for p in stack.live()["top_pages"] if p["link"].startswith(prefix)
    }


def test_tracker_on_another_site_counts_page_views(
    stack: Running, browser: WebDriver, host_site: str
) -> None:
    # Landing from a campaign, then an SPA navigation and the back button.
    browser.get(f"{host_site}/shop/landing?utm_source=newsletter&utm_campaign=winter")
    browser.find_element(By.ID, "cart").click()
    wait_dom(browser, lambda d: d.current_url.endswith("/shop/cart"), "the pushState navigation")
    browser.back()
    expected = {"/shop/landing": 2, "/shop/cart": 1}
    wait_until(lambda: _counts(stack, "/shop/") == expected, what=f"tracked views {expected}")

    # Do-Not-Track: the tracker sends nothing at all.
    script = browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": DO_NOT_TRACK}
    )
    browser.get(f"{host_site}/shop/private")
    assert browser.execute_script("return navigator.doNotTrack") == "1"
    browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", script)
    browser.get(f"{host_site}/shop/after")
    wait_until(lambda: "/shop/after" in _counts(stack, "/shop/"), what="the view after DNT")
    assert "/shop/private" not in _counts(stack, "/shop/")

    # The beacon crossed origins as text/plain JSON and kept the campaign and the agent.
    with psycopg.connect(stack.postgres_url) as conn:
        rows = wait_until(
            lambda: conn.execute(
                "SELECT utm_source, utm_campaign, browser, is_bot FROM user_footprint "
                "WHERE link = '/shop/landing' ORDER BY footprint_time"
            ).fetchall(),
            what="the landing rows in PostgreSQL",
        )
    assert rows[0] == ("newsletter", "winter", "Chrome", False)


# --- custom events: Plausible's own tracker and tracker.js's track() --------------------------

JS = ROOT / "tests" / "js"
PLAUSIBLE_JS = JS / "node_modules" / "@plausible-analytics" / "tracker" / "plausible.js"


@pytest.fixture(scope="module")
def plausible_js() -> bytes:
    """Plausible's npm tracker, as `make js-deps` installs it (installed here when missing)."""
    if not PLAUSIBLE_JS.exists():
        npm = shutil.which("npm")
        if not npm:
            pytest.fail("npm not found: `make system-deps` installs it, `make js-deps` the tracker")
        subprocess.run(
            [npm, "ci", "--prefix", str(JS), "--no-audit", "--no-fund", "--loglevel=error"],
            check=True,
            timeout=300,
        )
    return PLAUSIBLE_JS.read_bytes()


class _EventsSite(BaseHTTPRequestHandler):
    """A site with Plausible's tracker under /p/, Footprint's under /f/."""

    pages: dict[str, bytes] = {}
    script = b""

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/plausible.js":
            # A module script must come with a JavaScript type, or the browser refuses it.
            body, kind = self.script, "text/javascript"
        else:
            body, kind = self.pages[path[:3]], "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("content-type", kind)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def events_site(stack: Running, plausible_js: bytes) -> Iterator[str]:
    # As Plausible's README configures it, pointed at Footprint. On 127.0.0.1 and under
    # WebDriver the tracker stays quiet unless told (captureOnLocalhost, window.__plausible).
    plausible = f"""<!doctype html><html><head><title>Plausible shop</title></head><body>
<button id="signup">Sign up</button><p id="sent"></p>
<script type="module">
import {{ init, track }} from "/plausible.js";
window.__plausible = true;
init({{ domain: "plausible.shop", endpoint: "{stack.base}/api/event", captureOnLocalhost: true }});
document.getElementById("signup").addEventListener("click", () =>
  track("Signup", {{
    props: {{ plan: "pro", seats: 3 }},
    callback: (result) => {{ document.getElementById("sent").textContent = result.status; }},
  }}));
</script></body></html>"""
    # The README's stub: a call made before the deferred script loads counts when it does.
    footprint = f"""<!doctype html><html><head><title>Footprint shop</title>
<script>window.footprint = window.footprint || {{track: function () {{
  (window.footprint.q = window.footprint.q || []).push(arguments); }}}};
footprint.track("Early", {{props: {{step: 1}}}});</script>
<script src="{stack.base}/tracker.js" data-domain="footprint.shop" defer></script></head><body>
<button id="download"
 onclick="footprint.track('Download', {{props: {{format: 'pdf', pages: 12}}}})">PDF</button>
</body></html>"""
    pages = {"/p/": plausible.encode(), "/f/": footprint.encode()}
    handler = type("Handler", (_EventsSite,), {"pages": pages, "script": plausible_js})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield str(server.server_address[1])  # the port; each shop is a host name on it
    finally:
        server.shutdown()
        server.server_close()


def _events(stack: Running, site: str, count: int) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.postgres_url) as conn:
        return wait_until(
            lambda: (
                rows
                if len(
                    rows := conn.execute(
                        "SELECT name, link, props, browser, is_bot FROM user_footprint "
                        "WHERE site = %s ORDER BY footprint_time",
                        [site],
                    ).fetchall()
                )
                >= count
                else None
            ),
            what=f"{count} events of {site} in PostgreSQL",
        )


def _query(stack: Running, site: str, dimension: str, source: str) -> list[list[Any]]:
    now = datetime.now(UTC)
    body = {
        "site_id": site,
        "metrics": ["events"],
        "date_range": [
            (now - timedelta(hours=1)).isoformat(),
            (now + timedelta(hours=1)).isoformat(),
        ],
        "dimensions": [dimension],
        "order_by": [[dimension, "asc"]],
    }
    with stack.api(ADMIN) as api:
        r = api.post(f"/api/v2/query?source={source}", json=body)
        assert r.status_code == 200, r.text
        return [row["dimensions"] + row["metrics"] for row in r.json()["results"]]


def test_plausibles_own_tracker_sends_pageviews_and_events(
    stack: Running, browser: WebDriver, events_site: str
) -> None:
    browser.get(f"http://plausible.shop:{events_site}/p/pricing?utm_source=ads")
    wait_dom(browser, lambda d: d.execute_script("return !!window.plausible"), "the tracker's init")
    browser.find_element(By.ID, "signup").click()
    # The tracker's callback shows the answer it read across origins (CORS): 202, as Plausible.
    wait_dom(browser, lambda d: text(d, "sent") == "202", "the tracker's callback")

    rows = _events(stack, "plausible.shop", 2)
    assert rows == [
        ("pageview", "/p/pricing", {}, "Chrome", False),
        ("Signup", "/p/pricing", {"plan": "pro", "seats": "3"}, "Chrome", False),
    ]
    # Both stores answer Plausible's Stats API with them (ClickHouse may be a batch behind).
    for source in ("postgres", "clickhouse"):

        def both(source: str = source) -> list[list[Any]] | None:
            found = _query(stack, "plausible.shop", "event:name", source)
            return found if sum(row[-1] for row in found) == 2 else None

        assert wait_until(both, what=f"both events in {source}") == [
            ["Signup", 1],
            ["pageview", 1],
        ], source
        assert _query(stack, "plausible.shop", "event:props:plan", source) == [
            ["(none)", 1],
            ["pro", 1],
        ], source


def test_tracker_js_tracks_custom_events(
    stack: Running, browser: WebDriver, events_site: str
) -> None:
    browser.get(f"http://footprint.shop:{events_site}/f/docs")
    wait_dom(browser, lambda d: d.execute_script("return !!window.footprint"), "tracker.js")
    browser.find_element(By.ID, "download").click()
    rows = _events(stack, "footprint.shop", 3)
    # The page view and the queued event leave in the same millisecond or two: any order.
    assert sorted(rows[:2]) == [
        ("Early", "/f/docs", {"step": "1"}, "Chrome", False),
        ("pageview", "/f/docs", {}, "Chrome", False),
    ]
    assert rows[2:] == [("Download", "/f/docs", {"format": "pdf", "pages": "12"}, "Chrome", False)]

    # The live windows count the events under their names, and the page view under its page.
    def live() -> dict[str, Any] | None:
        now = stack.live("1h")
        events = {e["name"]: e["count"] for e in now["top_events"]}
        return now if (events.get("Early"), events.get("Download")) == (1, 1) else None

    now = wait_until(live, what="Early and Download in the live 1h window")
    assert {p["link"]: p["count"] for p in now["top_pages"]}.get("/f/docs") == 1
    assert not [p for p in now["top_pages"] if not p["link"].startswith("/")]


def test_events_api_as_documented_by_plausible(stack: Running) -> None:
    # Plausible's documented curl example, with a campaign URL and a referrer with a secret.
    event = {
        "name": "pageview",
        "url": "http://dummy.site/welcome?utm_source=mail&utm_medium=email&token=s3cret",
        "domain": "dummy.site",
        "referrer": "https://mail.example/inbox?session=s3cret",
    }
    refused = {
        "no domain": {"name": "x", "url": "http://dummy.site/"},
        "relative url": {**event, "url": "/welcome"},
        "31 props": {**event, "props": {f"k{i}": "v" for i in range(31)}},
        "revenue": {**event, "revenue": {"amount": 9, "currency": "EUR"}},
    }
    with stack.api() as api:
        headers = {"user-agent": USER_AGENT, "x-forwarded-for": "127.0.0.1"}
        r = api.post("/api/event", json=event, headers=headers)
        assert (r.status_code, r.text) == (202, "ok")
        for why, body in refused.items():
            r = api.post("/api/event", json=body, headers=headers)
            assert r.status_code == 400, why
            assert r.json()["detail"][0]["loc"][1] in {"domain", "url", "props", "revenue"}, why
        r = api.post("/api/event", content=b"{" + b" " * (1 << 21) + b"}", headers=headers)
        assert r.status_code == 413
    with psycopg.connect(stack.postgres_url) as conn:
        rows = wait_until(
            lambda: conn.execute(
                "SELECT name, link, utm_source, utm_medium, referrer, referrer_host, browser "
                "FROM user_footprint WHERE site = 'dummy.site'"
            ).fetchall(),
            what="the documented event in PostgreSQL",
        )
    assert rows == [
        (
            "pageview",
            "/welcome",
            "mail",
            "email",
            "https://mail.example/inbox",
            "mail.example",
            "Chrome",
        )
    ]


# --- one site's dashboard: a key, a click to filter, a shared link, another site's key ---------

SITE_A, SITE_B = "shop-a.test", "shop-b.test"
HOSTILE = "<img src=x onerror=\"document.title='pwned'\">"  # a campaign name, shown as text
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@dataclass
class Shop:
    key_a: str
    key_b: str
    link_a: str
    link_id: int


def _shop_a(base: datetime) -> list[dict[str, Any]]:
    """Three visitors (one per agent): a Hacker News reader who signs up, a newsletter reader
    and a direct visit on an iPhone. Explicit times: both stores order a visit alike."""

    def at(seconds: int, **fields: Any) -> dict[str, Any]:
        when = (base + timedelta(seconds=seconds)).isoformat()
        return {"method": "GET", "site": SITE_A, "footprint_time": when, **fields}

    return [
        at(
            0,
            link="/pricing",
            user_agent=USER_AGENT,
            referrer="https://news.ycombinator.com/item?id=1",
        ),
        at(30, link="/pricing", user_agent=USER_AGENT, name="Signup", props={"plan": "pro"}),
        at(60, link="/docs", user_agent=USER_AGENT),
        at(
            5,
            link="/pricing",
            user_agent=FIREFOX,
            utm_source="newsletter",
            utm_medium="email",
            utm_campaign="winter",
        ),  # fmt: skip
        at(9, link="/about", user_agent=IPHONE),
    ]


def _totals(stack: Running, key: str, site: str, source: str) -> list[Any] | None:
    body = {"site_id": site, "metrics": ["visitors", "events"], "date_range": "24h"}
    with stack.api(key) as api:
        r = api.post(f"/api/v2/query?source={source}", json=body)
    return r.json()["results"][0]["metrics"] if r.status_code == 200 else None


@pytest.fixture(scope="module")
def shop(stack: Running) -> Shop:
    """Sites A and B with a key each, a shared link of A, and known visits in both stores."""
    with stack.api(ADMIN) as admin:
        keys = {}
        for site in (SITE_A, SITE_B):
            r = admin.post("/api/v1/sites", json={"domain": site})
            assert r.status_code == 201, r.text
            keys[site] = r.json()["api_key"]
        r = admin.post(f"/api/v1/sites/{SITE_A}/shared-links")
        assert r.status_code == 201, r.text
        link, link_id = r.json()["token"], r.json()["link_id"]
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    b_only = {
        "method": "GET",
        "link": "/b-only",
        "site": SITE_B,
        "user_agent": USER_AGENT,
        "utm_source": HOSTILE,
    }
    with stack.api() as api:
        r = api.post("/api/footprints", json=[*_shop_a(base), b_only])
        assert r.status_code == 202, r.text
    for source in ("postgres", "clickhouse"):
        wait_until(
            lambda s=source: (
                _totals(stack, keys[SITE_A], SITE_A, s) == [3, 5]
                and _totals(stack, keys[SITE_B], SITE_B, s) == [1, 1]
            ),
            what=f"both sites' footprints in {source}",
        )
    return Shop(keys[SITE_A], keys[SITE_B], link, link_id)


def rows(driver: WebDriver, panel: str) -> list[list[str]]:
    """A panel's rows as [label, figures…], read at once (a refresh may replace them)."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((li) =>"
        " [...li.querySelectorAll('.link, .count')].map((s) => s.textContent))",
        f"#rows-{panel} li",
    )


def stats(driver: WebDriver) -> dict[str, str]:
    names = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration")
    return {name: text(driver, f"stat-{name}") for name in names}


def fresh_tab(driver: WebDriver, url: str) -> None:
    """Open ``url`` with this tab's sessionStorage emptied (no credential kept from before)."""
    driver.get(url.split("?")[0])
    driver.execute_script("sessionStorage.clear(); localStorage.clear();")
    driver.get(url)


def save_screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page, kept in tests/artifacts and, with FOOTPRINT_SCREENSHOT set, there too."""
    hidden = driver.execute_script(
        "return document.documentElement.scrollHeight - window.innerHeight"
    )
    if hidden > 0:
        size = driver.get_window_size()
        driver.set_window_size(size["width"], size["height"] + hidden)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / name
    assert driver.save_screenshot(str(shot))
    assert_not_blank(shot)
    if target := os.environ.get("FOOTPRINT_SCREENSHOT"):
        shutil.copyfile(shot, ROOT / target)
    driver.set_window_size(1360, 1080)
    return shot


A_STATS = {
    "visitors": "3",
    "visits": "3",
    "pageviews": "4",
    "bounce_rate": "67%",  # two visits of a single page view out of three
    "visit_duration": "20s",  # 60 s, 0 s and 0 s
}


def test_a_site_key_signs_in_and_sees_its_site_as_plausible_shows_it(
    stack: Running, browser: WebDriver, shop: Shop
) -> None:
    fresh_tab(browser, stack.base + "/")
    wait_dom(browser, lambda d: d.find_element(By.ID, "access-form").is_displayed(), "sign-in")
    browser.find_element(By.ID, "access-token").send_keys(shop.key_a)
    browser.find_element(By.CSS_SELECTOR, "#access-form button[type=submit]").click()
    wait_dom(browser, lambda d: stats(d) == A_STATS, f"the top stats {A_STATS}")
    assert text(browser, "access-who") == "Site API key"
    options = browser.find_elements(By.CSS_SELECTOR, "#site option")
    assert [o.text for o in options] == [SITE_A], "a key's switcher holds its own site"
    # What counts every site at once is an admin's: not shown to a key.
    assert not browser.find_element(By.ID, "live-section").is_displayed()
    wait_dom(
        browser,
        lambda d: (
            rows(d, "pages") == [["/pricing", "2", "2"], ["/about", "1", "1"], ["/docs", "1", "1"]]
            and rows(d, "sources")
            == [["Direct / None", "1"], ["news.ycombinator.com", "1"], ["newsletter", "1"]]
            and rows(d, "events") == [["Signup", "1", "1"]]
        ),
        "the pages, sources and events panels",
    )
    wait_dom(
        browser,
        lambda d: text(d, "ms-postgres").endswith("ms") and text(d, "ms-clickhouse").endswith("ms"),
        "both stores' query times",
    )
    # The chart draws the metric clicked, in the interval picked.
    chart = browser.find_element(By.ID, "chart")
    browser.find_element(By.CSS_SELECTOR, ".stat[data-metric='pageviews']").click()
    wait_dom(browser, lambda d: chart.get_attribute("data-sum") == "4", "4 pageviews drawn")
    hours = int(chart.get_attribute("data-buckets"))
    assert 24 <= hours <= 25, hours
    Select(browser.find_element(By.ID, "interval")).select_by_value("minute")
    wait_dom(
        browser,
        lambda d: (
            int(chart.get_attribute("data-buckets")) > 1400
            and chart.get_attribute("data-sum") == "4"
        ),
        "the same pageviews in minutes",
    )
    Select(browser.find_element(By.ID, "interval")).select_by_value("hour")
    browser.find_element(By.CSS_SELECTOR, ".stat[data-metric='visitors']").click()
    # Tabs: exit pages, UTM campaigns, browsers, goals with their conversion rate.
    for panel, tab, expected in (
        (
            "pages",
            "Exit pages",
            [["/about", "1", "1"], ["/docs", "1", "1"], ["/pricing", "1", "1"]],
        ),
        ("utm", "UTM campaign", [["(not set)", "2"], ["winter", "1"]]),
        ("devices", "Browsers", [["Chrome", "1"], ["Firefox", "1"], ["Mobile Safari", "1"]]),
        ("events", "Goals", [["Signup", "1", "1", "33.3%"]]),
    ):
        click(browser, By.XPATH, f"//*[@id='panel-{panel}']//button[.='{tab}']", tab)
        wait_dom(browser, lambda d, p=panel, e=expected: rows(d, p) == e, f"{panel}: {tab}")

    # A click on a row filters the whole dashboard: the chip, the figures, the other panels.
    browser.find_element(By.CSS_SELECTOR, "#panel-pages button[data-tab='0']").click()
    wait_dom(browser, lambda d: rows(d, "pages")[:1] == [["/pricing", "2", "2"]], "top pages")
    browser.find_element(By.CSS_SELECTOR, "#rows-pages li[data-value='/pricing']").click()
    filtered = {"visitors": "2", "visits": "2", "pageviews": "2", "bounce_rate": "50%",
                "visit_duration": "30s"}  # fmt: skip
    wait_dom(browser, lambda d: stats(d) == filtered, f"the filtered stats {filtered}")
    chips = browser.find_elements(By.CSS_SELECTOR, "#filters .chip-text")
    assert [c.text for c in chips] == ["Page is /pricing"]
    wait_dom(
        browser,
        lambda d: rows(d, "sources") == [["news.ycombinator.com", "1"], ["newsletter", "1"]],
        "the sources of /pricing only",
    )
    wait_dom(
        browser,
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-pending") == "0",
        "every panel's answer",
    )
    assert rows(browser, "events") == [["Signup", "1", "1", "50%"]], "1 of /pricing's 2 visitors"
    save_screenshot(browser, "dashboard-site.png")
    # The filter is in the address: a reload keeps it.
    assert "f=event%3Apage%2C%2Fpricing" in browser.current_url
    browser.refresh()
    wait_dom(browser, lambda d: stats(d) == filtered, "the filter after a reload")
    browser.find_element(By.CSS_SELECTOR, ".chip-remove").click()
    wait_dom(browser, lambda d: stats(d) == A_STATS, "the whole site again")
    assert not browser.find_elements(By.CSS_SELECTOR, ".chip")
    assert shop.key_a not in browser.current_url

    # A site with configured goals: the goals tab shows them (event:goal by the site's goals),
    # not its custom events. 2 of the 3 visitors reached /pricing.
    goal = {"site_id": SITE_A, "goal_type": "page", "page_path": "/pricing"}
    with stack.api(shop.key_a) as api:
        made = api.put("/api/v1/sites/goals", json=goal)
        assert made.status_code == 200, made.text
        try:
            browser.refresh()
            click(browser, By.XPATH, "//*[@id='panel-events']//button[.='Goals']", "Goals")
            expected = [["Visit /pricing", "2", "2", "66.7%"]]
            wait_dom(browser, lambda d: rows(d, "events") == expected, "the configured goal")
        finally:
            api.delete(f"/api/v1/sites/goals/{made.json()['id']}", params={"site_id": SITE_A})


def test_a_shared_link_opens_a_read_only_view_without_sign_in(
    stack: Running, browser: WebDriver, shop: Shop
) -> None:
    fresh_tab(browser, f"{stack.base}/?link={shop.link_a}")
    wait_dom(browser, lambda d: stats(d) == A_STATS, "the shared site's stats")
    assert text(browser, "access-who") == "Shared link · read-only"
    for hidden in ("login", "access-gate", "access-out", "inbox", "live-section"):
        assert not browser.find_element(By.ID, hidden).is_displayed(), hidden
    assert [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#site option")] == [SITE_A]
    wait_dom(browser, lambda d: rows(d, "pages")[:1] == [["/pricing", "2", "2"]], "its pages")
    # Revoked, the same link opens nothing and says so.
    with stack.api(ADMIN) as admin:
        r = admin.delete(f"/api/v1/sites/{SITE_A}/shared-links/{shop.link_id}")
        assert r.status_code == 204, r.text
    browser.refresh()
    wait_dom(browser, lambda d: "no longer opens" in text(d, "access-error"), "the revoked link")
    assert stats(browser)["visitors"] == "–"
    assert not browser.find_element(By.ID, "access-form").is_displayed()


def test_another_sites_key_sees_nothing_of_site_a(
    stack: Running, browser: WebDriver, shop: Shop
) -> None:
    fresh_tab(browser, f"{stack.base}/#token={shop.key_b}")
    wait_dom(browser, lambda d: text(d, "stat-visitors") == "1", "site B's one visitor")
    assert [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#site option")] == [SITE_B]
    wait_dom(browser, lambda d: rows(d, "pages") == [["/b-only", "1", "1"]], "site B's page")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "/pricing" not in body and SITE_A not in body and "Signup" not in body
    # Asking for site A by address: the API answers as if it did not exist; no figure shows.
    browser.get(f"{stack.base}/?site={SITE_A}")
    wait_dom(
        browser,
        lambda d: f"no site '{SITE_A}'" in text(d, "query-error"),
        "the query API's 404 for site A",
    )
    assert text(browser, "stat-visitors") == "–"
    assert rows(browser, "pages") == [] and rows(browser, "sources") == []


def test_hostile_values_are_shown_as_text(stack: Running, browser: WebDriver, shop: Shop) -> None:
    fresh_tab(browser, f"{stack.base}/#token={shop.key_b}")
    wait_dom(browser, lambda d: rows(d, "sources") == [[HOSTILE, "1"]], "the campaign as text")
    browser.find_element(By.CSS_SELECTOR, "#rows-sources li").click()
    wait_dom(
        browser,
        lambda d: (
            [c.text for c in d.find_elements(By.CSS_SELECTOR, ".chip-text")]
            == [f"Source is {HOSTILE}"]
            and d.find_element(By.TAG_NAME, "body").get_attribute("data-pending") == "0"
        ),
        "the filter on it",
    )
    assert text(browser, "stat-visitors") == "1", "the filter matched its own value"
    assert not browser.find_elements(By.CSS_SELECTOR, "main img") and "pwned" not in browser.title
    # A filter made up in the address: the API's 400 is shown, nothing else breaks.
    browser.get(f"{stack.base}/?f=visit:nowhere,x")
    wait_dom(
        browser,
        lambda d: "unknown dimension 'visit:nowhere'" in text(d, "query-error"),
        "the API's refusal",
    )
