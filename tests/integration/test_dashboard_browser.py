"""The dashboard and the tracker in a real browser: Debian's headless Chromium on ``footprint run``.

One ``footprint run`` (API and worker) and one browser serve the module. The browser is driven
by Selenium through Debian's ``chromedriver`` (no browser download). The screenshot of the
dashboard is kept in ``tests/artifacts/dashboard.png``.
"""

from __future__ import annotations

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
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

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
