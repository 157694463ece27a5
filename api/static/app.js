/* Footprint dashboard: one site's visits as Plausible shows them (top stats, a chart, sources,
 * pages, devices, campaigns, custom events and goals, click a row to filter), answered by the
 * query API (POST /api/v2/query) from PostgreSQL and ClickHouse with both query times shown;
 * for an admin also the live windows of every site and the stream status; the signed-in
 * user's notifications. Plain ES modules, no build step; the only library is the vendored uPlot.
 *
 * Modules (js/): access (the credential), state (site, period, filters, in the address bar),
 * api (queries), overview (top stats, timings, chart), panels, filters (chips), live, inbox. */
import { access, initAccess, loadSites, showWho } from "./js/access.js";
import { defaultCustom } from "./js/api.js";
import { $ } from "./js/dom.js";
import { renderFilters } from "./js/filters.js";
import { initInbox } from "./js/inbox.js";
import { initLive, loadCurrentVisitors } from "./js/live.js";
import { fillIntervals, initOverview, loadChart, loadTop, renderTop, showSource } from "./js/overview.js";
import { initPanels, loadPanels } from "./js/panels.js";
import { onChange, readUrl, state, update } from "./js/state.js";

const REFRESH_MS = 30000;
const siteName = (site) => (site === "" ? "(default site)" : site);

async function reload() {
  // The top stats first, one store after the other (their times are compared), then the rest.
  await loadTop();
  await Promise.all([loadChart(), loadPanels(), loadCurrentVisitors()]);
}

/** The switcher: every site for an admin, its own for a key or link. */
function fillSites() {
  const sites = [...access.sites];
  if (state.site === null) state.site = sites[0] ?? (access.kind === "admin" ? "" : null);
  // A site asked in the address bar stays asked: the API says whether this credential reads it.
  if (state.site !== null && !sites.includes(state.site)) sites.push(state.site);
  const select = $("site");
  select.replaceChildren(...sites.map((s) => new Option(siteName(s), s, false, s === state.site)));
  select.disabled = sites.length < 2;
  select.hidden = false;
  $("site-title").textContent = state.site === null ? "No site" : siteName(state.site);
}

function wireControls() {
  $("site").addEventListener("change", () => update({ site: $("site").value, filters: [] }));
  $("period").value = state.period;
  $("period").addEventListener("change", () => {
    const custom = $("period").value === "custom";
    $("custom-range").hidden = !custom;
    if (custom && !$("custom-start").value) [$("custom-start").value, $("custom-end").value] = defaultCustom();
    update({ period: $("period").value });
  });
  for (const id of ["custom-start", "custom-end"]) $(id).addEventListener("change", () => update({ period: "custom" }));
  onChange((changes) => {
    if ("period" in changes) fillIntervals();
    if ("site" in changes) fillSites();
    if ("source" in changes) showSource();
    if ("metric" in changes && Object.keys(changes).length === 1) {
      renderTop();
      loadChart();
      return;
    }
    renderFilters();
    reload();
  });
}

async function start() {
  initAccess();
  readUrl();
  initPanels();
  initOverview();
  showSource();
  if (access.shared) {
    // A shared link is read-only and needs no sign-in: no account, no notifications.
    for (const id of ["login", "account", "inbox"]) $(id).hidden = true;
  } else {
    initInbox();
  }
  if (!(await loadSites())) return;
  showWho();
  fillSites();
  initLive();
  $("live-top-card").parentElement.hidden = access.shared && access.kind !== "admin";
  wireControls();
  fillIntervals();
  renderFilters();
  await reload();
  setInterval(async () => {
    if (document.hidden || access.refused) return;
    if (await loadSites()) fillSites(); // sites registered since, revoked keys
    reload();
  }, REFRESH_MS);
}

start();
