/* What counts every site at once, for an admin token only: the live 1m / 5m / 1h windows pushed
 * over /ws/live, and the stream status. A site key or shared link gets the current visitors of
 * its own site from the query API instead (the live windows are not kept per site). */
import { access, needsToken, setPill, statsHeaders } from "./access.js";
import { $, number, renderBars, setNumber } from "./dom.js";
import { query } from "./api.js";

const WINDOWS = ["1m", "5m", "1h"];
const wsBase = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
let live = null;
let topWindow = "1m";
let delay = 500;

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
  // The token travels as a subprotocol ("bearer", token), never in a URL that could be logged.
  const sock = new WebSocket(`${wsBase}/ws/live`, ["bearer", access.token]);
  sock.onopen = () => { delay = 500; setPill("live", "Live"); };
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
    if (access.refused) return;
    setPill("reconnecting", "Reconnecting…");
    setTimeout(connectLive, delay);
    delay = Math.min(delay * 2, 10000);
  };
}

async function loadStream() {
  const card = $("stream");
  if (access.refused) return;
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

/** The site's visitors of the last 5 minutes, as Plausible's "current visitors". */
export async function loadCurrentVisitors() {
  if (access.kind === "admin") return;
  const end = Date.now();
  const range = [new Date(end - 5 * 60e3).toISOString(), new Date(end).toISOString()];
  const answer = await query({ metrics: ["visitors"], date_range: range, filters: [] });
  if (!answer.ok) return;
  const n = answer.body.results[0]?.metrics[0] ?? 0;
  setPill("live", `${number.format(n)} current visitor${n === 1 ? "" : "s"}`);
}

export function initLive() {
  const admin = access.kind === "admin";
  $("live-section").hidden = !admin;
  $("live-top-card").hidden = !admin;
  if (!admin) return;
  for (const tab of document.querySelectorAll("[data-top]")) {
    tab.addEventListener("click", () => {
      topWindow = tab.dataset.top;
      for (const t of document.querySelectorAll("[data-top]")) t.classList.toggle("active", t === tab);
      renderLive();
    });
  }
  connectLive();
  loadStream();
  setInterval(() => document.hidden || loadStream(), 5000);
}
