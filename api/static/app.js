/* Footprint dashboard: live windows over /ws/live, the period summary from PostgreSQL and
 * ClickHouse side by side, stream status, and the signed-in user's notifications over /ws.
 * Plain browser JavaScript, no build step; the only library is the vendored uPlot.
 *
 * Reading the stats needs a token (today an admin token). It arrives in the URL fragment,
 * /#token=…, which browsers never send to a server; it is kept in sessionStorage (this tab only)
 * and removed from the address bar at once, then sent as a bearer token on every stats call. */
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat();
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const wsBase = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
  const WINDOWS = ["1m", "5m", "1h"];
  const SOURCES = ["postgres", "clickhouse"];
  const HOUR = 3600e3;
  const PERIODS = { "1h": HOUR, "6h": 6 * HOUR, "24h": 24 * HOUR, "7d": 168 * HOUR, "30d": 720 * HOUR };

  // --- the stats credential ----------------------------------------------------------------
  const ACCESS_KEY = "footprint.access-token";

  /** The token of a /#token=… fragment, moved to sessionStorage and out of the address bar. */
  function takeFragmentToken() {
    const token = new URLSearchParams(location.hash.slice(1)).get("token");
    if (token) {
      sessionStorage.setItem(ACCESS_KEY, token);
      // Out of the address bar, so out of the history, bookmarks and screenshots too.
      history.replaceState(null, "", location.pathname + location.search);
    }
    return Boolean(token);
  }

  takeFragmentToken();
  const accessToken = sessionStorage.getItem(ACCESS_KEY);
  let accessRefused = false;
  // A new token pasted into the address bar of an open page: start over with it.
  window.addEventListener("hashchange", () => { if (takeFragmentToken()) location.reload(); });

  function statsHeaders() {
    return accessToken ? { Authorization: `Bearer ${accessToken}` } : {};
  }

  /** The page cannot read the stats: say how to get in, once, and stop asking the server. */
  function needsToken(reason) {
    accessRefused = true;
    sessionStorage.removeItem(ACCESS_KEY);
    const box = $("access-error");
    box.replaceChildren(
      el("strong", null, accessToken ? "This token cannot read the stats" : "This dashboard needs a token"),
      document.createTextNode(reason ? ` (${reason}). ` : ". "),
      document.createTextNode("Run "),
      el("code", null, "footprint token --admin <name>"),
      document.createTextNode(" and open "),
      el("code", null, `${location.origin}/#token=<token>`),
      document.createTextNode(" (footprint run prints such a link)."),
    );
    box.hidden = false;
    setPill("locked", "Needs a token");
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setNumber(id, value) {
    const node = $(id);
    const text = value === null || value === undefined ? "–" : number.format(value);
    if (node.textContent === text) return;
    node.textContent = text;
    node.dataset.value = value === null || value === undefined ? "" : String(value);
    // A brief accent tells the eye which figure just moved.
    node.classList.add("bump");
    setTimeout(() => node.classList.remove("bump"), 600);
  }

  /** Plausible-style rows: the bar behind each row is its share of the largest count. */
  function renderBars(list, empty, rows) {
    list.replaceChildren();
    const max = Math.max(1, ...rows.map((r) => r.count));
    for (const row of rows) {
      const item = el("li");
      const fill = el("span", "fill");
      fill.style.width = `${(100 * row.count) / max}%`;
      const link = el("span", "link", row.method && row.method !== "GET" ? `${row.method} ${row.link}` : row.link);
      link.title = row.link;
      item.append(fill, link, el("span", "count", number.format(row.count)));
      list.append(item);
    }
    empty.hidden = rows.length > 0;
  }

  // --- live windows (/ws/live) -------------------------------------------------------------
  let live = null;
  let topWindow = "1m";
  let liveDelay = 500;

  function setPill(state, text) {
    $("live-pill").dataset.state = state;
    $("live-state").textContent = text;
  }

  function renderLive() {
    if (!live) return;
    for (const w of WINDOWS) {
      const s = live.windows[w];
      setNumber(`live-${w}-total`, s.total);
      setNumber(`live-${w}-visitors`, s.visitors);
      $(`live-${w}-visitors-unit`).textContent = s.visitors === 1 ? "visitor" : "visitors";
      setNumber(`live-${w}-bots`, s.bots || 0);
    }
    const now = live.windows["5m"].visitors;
    setPill("live", `Live · ${number.format(now)} current visitor${now === 1 ? "" : "s"}`);
    renderBars($("live-top"), $("live-top-empty"), live.windows[topWindow].top_pages);
  }

  function connectLive() {
    if (!accessToken) {
      needsToken();
      return;
    }
    // The token travels as a subprotocol ("bearer", token), never in a URL that could be logged.
    const sock = new WebSocket(`${wsBase}/ws/live`, ["bearer", accessToken]);
    sock.onopen = () => { liveDelay = 500; setPill("live", "Live"); };
    sock.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "live") {
        live = message;
        renderLive();
      }
    };
    sock.onclose = (event) => {
      if (event.code === 1008) {
        needsToken(event.reason || "refused");
        return;
      }
      if (accessRefused) return;
      setPill("reconnecting", "Reconnecting…");
      setTimeout(connectLive, liveDelay);
      liveDelay = Math.min(liveDelay * 2, 10000);
    };
  }

  for (const tab of document.querySelectorAll("[data-top]")) {
    tab.addEventListener("click", () => {
      topWindow = tab.dataset.top;
      for (const t of document.querySelectorAll("[data-top]")) t.classList.toggle("active", t === tab);
      renderLive();
    });
  }

  // --- period summary, both sources ----------------------------------------------------------
  let source = localStorage.getItem("footprint.source") || "postgres";
  let summaries = {};
  let chart = null;
  let summarySeq = 0;

  function toLocalInput(date) {
    const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60e3);
    return shifted.toISOString().slice(0, 16);
  }

  function period() {
    const choice = $("period").value;
    if (choice === "custom") {
      const start = new Date($("custom-start").value);
      const end = new Date($("custom-end").value);
      if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || start >= end) return null;
      return { start, end, label: "custom" };
    }
    // Minute-aligned ends let ClickHouse answer from its per-minute rollup.
    const end = new Date(Math.ceil(Date.now() / 60e3) * 60e3);
    return { start: new Date(end.getTime() - PERIODS[choice]), end, label: choice };
  }

  async function fetchSummary(src, p) {
    const query = new URLSearchParams({ start: p.start.toISOString(), end: p.end.toISOString(), source: src, tz });
    try {
      const response = await fetch(`/api/stats/summary?${query}`, { headers: statsHeaders() });
      const body = await response.json();
      if (response.status === 401 || response.status === 403) {
        needsToken(body.detail);
        return { error: "needs a token" };
      }
      if (!response.ok) {
        const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
        return { error: detail || `HTTP ${response.status}` };
      }
      return body;
    } catch (e) {
      return { error: String(e) };
    }
  }

  async function loadSummary() {
    const p = period();
    if (!p || accessRefused) return;
    const seq = ++summarySeq;
    // One after the other, so neither query's time includes competing with the other.
    const results = {};
    for (const src of SOURCES) results[src] = await fetchSummary(src, p);
    if (seq !== summarySeq) return; // a newer request superseded this one
    summaries = results;
    $("period-tag").textContent = p.label;
    renderSummary();
  }

  function renderTimings() {
    const times = SOURCES.map((s) => summaries[s] && summaries[s].query_ms).filter((t) => typeof t === "number");
    const max = Math.max(1e-9, ...times);
    for (const src of SOURCES) {
      const s = summaries[src] || {};
      const ms = $(`ms-${src}`);
      const row = document.querySelector(`.timing[data-source="${src}"]`);
      row.classList.toggle("active", src === source);
      if (s.error) {
        ms.textContent = "unavailable";
        ms.title = s.error;
        ms.classList.add("error");
        $(`bar-${src}`).style.width = "0";
      } else if (typeof s.query_ms === "number") {
        ms.textContent = `${s.query_ms < 10 ? s.query_ms.toFixed(2) : s.query_ms.toFixed(1)} ms`;
        ms.title = "";
        ms.classList.remove("error");
        $(`bar-${src}`).style.width = `${Math.max(2, (100 * s.query_ms) / max)}%`;
      }
    }
  }

  function renderSummary() {
    renderTimings();
    const s = summaries[source];
    if (!s || s.error) {
      $("period-total").textContent = "–";
      $("period-change").textContent = s ? `${source} unavailable` : "";
      $("period-change").className = "change down";
      return;
    }
    setNumber("period-total", s.total);
    const change = $("period-change");
    if (s.percent_change === null || s.percent_change === undefined) {
      change.textContent = s.previous_total === 0 && s.total > 0 ? "new" : "";
      change.className = "change flat";
    } else {
      const up = s.percent_change >= 0;
      change.textContent = `${up ? "↑" : "↓"} ${Math.abs(s.percent_change).toFixed(1)}%`;
      change.className = `change ${s.percent_change === 0 ? "flat" : up ? "up" : "down"}`;
    }
    const fmt = (iso) => new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    $("period-label").textContent =
      `${fmt(s.start)} – ${fmt(s.end)} · ${s.tz} · vs ${number.format(s.previous_total)} the period before`;
    renderBars($("period-top"), $("period-top-empty"), s.top_pages);
    drawChart(s.buckets);
  }

  function drawChart(buckets) {
    const xs = buckets.map((b) => Date.parse(b.start) / 1000);
    const ys = buckets.map((b) => b.count);
    $("chart-empty").hidden = ys.some((y) => y > 0);
    const container = $("chart");
    if (typeof uPlot === "undefined") return;
    if (chart) {
      chart.setData([xs, ys]);
      return;
    }
    chart = new uPlot(
      {
        width: container.clientWidth,
        height: 260,
        legend: { show: false },
        cursor: { points: { size: 7, fill: "#4f46e5" }, drag: { x: false, y: false } },
        scales: { y: { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] } },
        axes: [
          { stroke: "#6b7280", grid: { show: false }, ticks: { stroke: "#e5e7eb" } },
          {
            stroke: "#6b7280",
            grid: { stroke: "#f0f1f4" },
            ticks: { show: false },
            size: 48,
            values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? number.format(v) : "")),
          },
        ],
        series: [
          {},
          {
            label: "Pageviews",
            stroke: "#4f46e5",
            width: 2,
            fill: "rgba(79, 70, 229, 0.10)",
            points: { show: false },
          },
        ],
      },
      [xs, ys],
      container,
    );
    new ResizeObserver(() => chart.setSize({ width: container.clientWidth, height: 260 })).observe(container);
  }

  function setSource(src) {
    source = src;
    localStorage.setItem("footprint.source", src);
    for (const b of document.querySelectorAll(".segmented [data-source]")) {
      b.classList.toggle("active", b.dataset.source === src);
    }
    renderSummary();
  }

  for (const b of document.querySelectorAll(".segmented [data-source]")) {
    b.addEventListener("click", () => setSource(b.dataset.source));
  }
  $("period").addEventListener("change", () => {
    const custom = $("period").value === "custom";
    $("custom-range").hidden = !custom;
    if (custom && !$("custom-start").value) {
      const end = new Date();
      $("custom-start").value = toLocalInput(new Date(end.getTime() - 24 * HOUR));
      $("custom-end").value = toLocalInput(end);
    }
    loadSummary();
  });
  $("custom-start").addEventListener("change", loadSummary);
  $("custom-end").addEventListener("change", loadSummary);

  // --- stream status ------------------------------------------------------------------------
  async function loadStream() {
    const card = $("stream");
    if (accessRefused) return;
    try {
      const response = await fetch("/api/stream/status", { headers: statsHeaders() });
      const s = await response.json();
      if (response.status === 401 || response.status === 403) {
        needsToken(s.detail);
        $("stream-state").textContent = "needs a token";
        return;
      }
      card.dataset.alive = String(Boolean(s.worker_alive));
      $("stream-state").textContent = s.worker_alive ? "worker alive" : "no worker";
      setNumber("stream-lag", s.lag);
      setNumber("stream-processed", s.processed);
      setNumber("stream-dead", s.dead_lettered);
      const problems = Object.entries(s.errors || {}).map(([k, v]) => `${k}: ${v}`);
      const error = s.last_error || problems.join("; ");
      $("stream-error").textContent = error ? `Last error: ${error}` : "No errors";
      $("stream-error").title = error || "";
      $("stream-error").classList.toggle("has-error", Boolean(error));
    } catch (e) {
      card.dataset.alive = "false";
      $("stream-state").textContent = "API unreachable";
    }
  }

  // --- notifications (/ws with the user's token) ------------------------------------------
  const inbox = { token: null, sock: null, lastId: 0, items: new Map(), unread: 0, delay: 500 };

  function describe(n) {
    const p = n.payload || {};
    const actor = p.actor_id || "Someone";
    switch (n.noti_type) {
      case "create_post": return `${actor} published “${p.title || `post #${p.post_id}`}”`;
      case "create_parent_comment": return `${actor} commented on your post #${p.post_id}`;
      case "create_child_comment": return `${actor} replied to your comment on post #${p.post_id}`;
      case "follow_user": return `${actor} started following you`;
      case "penalty_user": return `You received a penalty from ${actor}: ${p.reason || ""}`;
      default: return n.noti_type;
    }
  }

  function ago(iso) {
    const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 45) return "just now";
    if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
    return new Date(iso).toLocaleDateString();
  }

  function setBadge(count) {
    inbox.unread = count;
    const badge = $("badge");
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.dataset.count = String(count);
    $("unread-tag").textContent = `${count} unread`;
    $("unread-tag").hidden = count === 0;
    $("read-all").hidden = count === 0;
    if (count === 0) for (const n of inbox.items.values()) n.is_read = true;
  }

  function renderInbox(freshId) {
    const list = $("notifications");
    list.replaceChildren();
    const items = [...inbox.items.values()].sort((a, b) => b.id - a.id).slice(0, 100);
    for (const n of items) {
      const item = el("li", `notification${n.is_read ? "" : " unread"}${n.id === freshId ? " fresh" : ""}`);
      item.dataset.id = String(n.id);
      const body = el("span", "text", describe(n));
      body.append(el("span", "when", ago(n.created_time)));
      item.append(el("span", "dot"), body);
      item.addEventListener("click", () => markRead(n));
      list.append(item);
    }
    $("inbox-empty").textContent = inbox.token
      ? "No unread notifications. New ones appear here live."
      : "Sign in with a dev token to see your notifications live.";
    $("inbox-empty").hidden = items.length > 0;
  }

  async function authed(path) {
    const response = await fetch(path, { method: "POST", headers: { Authorization: `Bearer ${inbox.token}` } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  async function markRead(n) {
    if (n.is_read) return;
    const body = await authed(`/api/notifications/${n.id}/read`);
    n.is_read = true;
    setBadge(body.unread_count);
    renderInbox();
  }

  function signedIn(user) {
    $("login").hidden = true;
    $("login-error").hidden = true;
    $("account").hidden = false;
    $("user-name").textContent = user;
    $("avatar").textContent = user.slice(0, 1);
  }

  function signOut(error) {
    const sock = inbox.sock;
    inbox.sock = null;
    inbox.token = null;
    if (sock) sock.close();
    sessionStorage.removeItem("footprint.token");
    inbox.items.clear();
    inbox.lastId = 0;
    setBadge(0);
    $("account").hidden = true;
    $("login").hidden = false;
    $("login-error").hidden = !error;
    $("login-error").textContent = error || "";
    renderInbox();
  }

  function openInbox() {
    const query = inbox.lastId ? `?last_id=${inbox.lastId}` : "";
    // The token travels as a subprotocol ("bearer", token), never in a URL that could be logged.
    const sock = new WebSocket(`${wsBase}/ws${query}`, ["bearer", inbox.token]);
    inbox.sock = sock;
    sock.onmessage = (event) => {
      const m = JSON.parse(event.data);
      if (m.type === "hello") {
        inbox.delay = 500;
        signedIn(m.user);
        setBadge(m.unread_count);
        renderInbox();
      } else if (m.type === "notification") {
        inbox.items.set(m.id, m.notification);
        inbox.lastId = Math.max(inbox.lastId, m.id);
        setBadge(m.unread_count);
        renderInbox(m.id);
      } else if (m.type === "unread_count") {
        setBadge(m.unread_count);
        renderInbox();
      }
    };
    sock.onclose = (event) => {
      if (sock !== inbox.sock) return; // signed out or replaced
      if (event.code === 1008) {
        signOut(`Sign-in failed: ${event.reason || "invalid token"}`);
        return;
      }
      setTimeout(() => { if (sock === inbox.sock) openInbox(); }, inbox.delay);
      inbox.delay = Math.min(inbox.delay * 2, 10000);
    };
  }

  function signIn(token) {
    if (inbox.sock) signOut();
    inbox.token = token;
    sessionStorage.setItem("footprint.token", token);
    openInbox();
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (token) signIn(token);
    $("token").value = "";
  });
  $("logout").addEventListener("click", () => signOut());
  $("bell").addEventListener("click", () => $("inbox").scrollIntoView({ behavior: "smooth", block: "center" }));
  $("read-all").addEventListener("click", async () => {
    const body = await authed("/api/notifications/read-all");
    for (const n of inbox.items.values()) n.is_read = true;
    setBadge(body.unread_count);
    renderInbox();
  });

  // --- start --------------------------------------------------------------------------------
  function start() {
    for (const b of document.querySelectorAll(".segmented [data-source]")) {
      b.classList.toggle("active", b.dataset.source === source);
    }
    connectLive();
    loadSummary();
    loadStream();
    // A hidden tab stops polling; the live socket alone keeps it current.
    setInterval(() => document.hidden || loadSummary(), 15000);
    setInterval(() => document.hidden || loadStream(), 5000);
    setInterval(() => renderInbox(), 30000); // keeps "3 min ago" honest
    const saved = sessionStorage.getItem("footprint.token");
    if (saved) signIn(saved);
    else renderInbox();
  }

  start();
})();
