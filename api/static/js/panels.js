/* The breakdown panels, as Plausible's dashboard has them: sources, pages, devices, campaigns,
 * custom events and goals. Each tab is one query grouped by one dimension, with the dashboard's
 * filters; clicking a row filters the whole dashboard by its value. */
import { $, el, number } from "./dom.js";
import { NAMES } from "./filters.js";
import { configuredGoals, query } from "./api.js";
import { addFilter, state } from "./state.js";

const ROWS = 9;
const CUSTOM = [["is_not", "event:name", ["pageview"]]]; // custom events: all but page views
const tab = (dimension, label, metrics = ["visitors"], extra = {}) => ({ dimension, label, metrics, ...extra });

const PANELS = [
  { id: "sources", title: "Top sources", tabs: [tab("visit:source", "Sources"), tab("visit:referrer", "Referrers")] },
  {
    id: "pages",
    title: "Top pages",
    tabs: [
      tab("event:page", "Top pages", ["visitors", "pageviews"]),
      tab("visit:entry_page", "Entry pages", ["visitors", "visits"]),
      tab("visit:exit_page", "Exit pages", ["visitors", "visits"]),
    ],
  },
  { id: "devices", title: "Devices", tabs: [tab("visit:device", "Devices"), tab("visit:browser", "Browsers"), tab("visit:os", "OS")] },
  {
    id: "utm",
    title: "Campaigns",
    tabs: [tab("visit:utm_medium", "UTM medium"), tab("visit:utm_source", "UTM source"), tab("visit:utm_campaign", "UTM campaign")],
  },
  {
    id: "events",
    title: "Custom events",
    tabs: [
      tab("event:name", "Events", ["visitors", "events"], { filters: CUSTOM }),
      tab("event:goal", "Goals", ["visitors", "events", "conversion_rate"], { goals: true }),
    ],
  },
];
const HEADS = { visitors: "Visitors", pageviews: "Pageviews", visits: "Visits", events: "Events", conversion_rate: "CR" };
const chosen = {}; // panel id -> tab index
const asked = {}; // panel id -> number of its latest question: older answers are dropped

function build(panel) {
  const card = el("article", "card list-card panel");
  card.id = `panel-${panel.id}`;
  const head = el("div", "list-head");
  const tabs = el("div", "tabs");
  tabs.setAttribute("role", "tablist");
  panel.tabs.forEach((t, i) => {
    const button = el("button", i === 0 ? "active" : "", t.label);
    button.type = "button";
    button.dataset.tab = String(i);
    button.addEventListener("click", () => {
      chosen[panel.id] = i;
      for (const b of tabs.children) b.classList.toggle("active", b === button);
      loadPanel(panel);
    });
    tabs.append(button);
  });
  head.append(el("h2", null, panel.title), tabs);
  const list = el("ol", "bars rows");
  list.id = `rows-${panel.id}`;
  const empty = el("p", "empty", "Nothing in this period yet.");
  empty.id = `empty-${panel.id}`;
  const cols = el("div", "list-cols");
  cols.id = `cols-${panel.id}`;
  card.append(head, cols, list, empty);
  return card;
}

function row(t, r, max) {
  const value = r.dimensions[0];
  const item = el("li", "row");
  item.dataset.value = value;
  item.tabIndex = 0;
  item.setAttribute("role", "button");
  item.title = `Filter the dashboard: ${NAMES[t.dimension]} is ${value}`;
  const fill = el("span", "fill");
  fill.style.width = `${(100 * (r.metrics[0] || 0)) / max}%`;
  item.append(fill, el("span", "link", value));
  r.metrics.forEach((m, i) => {
    const text = t.metrics[i] === "conversion_rate" ? `${m}%` : number.format(m ?? 0);
    item.append(el("span", i === 0 ? "count" : "count extra", text));
  });
  const pick = () => addFilter(t.dimension, value);
  item.addEventListener("click", pick);
  item.addEventListener("keydown", (e) => { if (e.key === "Enter") pick(); });
  return item;
}

/**
 * The goals panel's goals: the site's configured goals (event:goal breaks down by them, as
 * Plausible's does), or else the period's custom event names, each taken as an inline goal.
 */
async function goalNames() {
  if ((await configuredGoals()).length) return null;
  const answer = await query({ metrics: ["events"], dimensions: ["event:name"], filters: [...currentFilters(), ...CUSTOM], pagination: { limit: 25 } });
  return answer.ok ? answer.body.results.map((r) => r.dimensions[0]) : [];
}

function currentFilters() {
  return state.filters.map((f) => ["is", f.dimension, [f.value]]);
}

async function loadPanel(panel) {
  const mine = (asked[panel.id] = (asked[panel.id] || 0) + 1);
  const current = () => mine === asked[panel.id];
  const t = panel.tabs[chosen[panel.id] || 0];
  const list = $(`rows-${panel.id}`);
  const empty = $(`empty-${panel.id}`);
  const cols = $(`cols-${panel.id}`);
  cols.replaceChildren(el("span", null, NAMES[t.dimension]), ...t.metrics.map((m) => el("span", "col", HEADS[m])));
  let filters = [...currentFilters(), ...(t.filters || [])];
  if (t.goals) {
    const goals = await goalNames();
    if (!current()) return;
    if (goals && !goals.length) {
      list.replaceChildren();
      empty.textContent = "No custom events in this period: no goals to convert.";
      empty.hidden = false;
      return;
    }
    if (goals) filters = [...filters.filter((f) => f[1] !== "event:goal"), ["is", "event:goal", goals]];
  }
  const answer = await query({ metrics: t.metrics, dimensions: [t.dimension], filters, pagination: { limit: ROWS } });
  if (!current()) return;
  if (!answer.ok) {
    list.replaceChildren();
    empty.textContent = answer.error === "needs a token" ? "" : `Unavailable: ${answer.error}`;
    empty.hidden = false;
    return;
  }
  const rows = answer.body.results;
  const max = Math.max(1, ...rows.map((r) => r.metrics[0] || 0));
  list.replaceChildren(...rows.map((r) => row(t, r, max)));
  empty.textContent = "Nothing in this period yet.";
  empty.hidden = rows.length > 0;
  list.dataset.loaded = String(Date.now());
}

export function initPanels() {
  $("panels").replaceChildren(...PANELS.map(build));
}

export async function loadPanels() {
  await Promise.all(PANELS.map(loadPanel));
}
