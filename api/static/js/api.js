/* POST /api/v2/query (Plausible's Stats API v2 shape) with the dashboard's credential, period,
 * site and filters. The answer's meta says which store answered and how long it took. */
import { access, needsToken, statsHeaders } from "./access.js";
import { state } from "./state.js";

const HOUR = 3600e3;
const SPANS = { "1h": HOUR, "6h": 6 * HOUR };
export const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function localInput(date) {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60e3);
  return shifted.toISOString().slice(0, 16);
}

export function defaultCustom() {
  const end = new Date();
  return [localInput(new Date(end.getTime() - 24 * HOUR)), localInput(end)];
}

/** The period as a date_range: Plausible's shortcut, or a pair of instants (both included). */
export function dateRange() {
  if (state.period in SPANS) {
    // Minute-aligned ends: every refresh within a minute asks the same question.
    const end = Math.ceil(Date.now() / 60e3) * 60e3;
    return [new Date(end - SPANS[state.period]).toISOString(), new Date(end - 1000).toISOString()];
  }
  if (state.period === "custom") {
    const start = document.getElementById("custom-start").value;
    const end = document.getElementById("custom-end").value;
    if (!start || !end || start >= end) return null;
    return [`${start}:00`, `${end}:00`]; // no offset: in the query's time zone, the browser's
  }
  return state.period;
}

/** How long the period is, roughly, in hours: which intervals make sense. */
export function spanHours() {
  if (state.period in SPANS) return SPANS[state.period] / HOUR;
  const fixed = { day: 24, "24h": 24, "7d": 168, "30d": 720, month: 744 }[state.period];
  if (fixed) return fixed;
  const range = dateRange();
  return range ? (Date.parse(range[1]) - Date.parse(range[0])) / HOUR : 24;
}

/** The dashboard's filters as the API's, with a panel's own added. */
export function apiFilters(extra = []) {
  return [...state.filters.map((f) => ["is", f.dimension, [f.value]]), ...extra];
}

/**
 * One query on one store: {ok, body} or {ok: false, error}. A refused credential shows the
 * sign-in notice; other errors are the caller's to show.
 */
export async function query(fields, source = state.source) {
  const range = dateRange();
  if (!range || access.refused || state.site === null) return { ok: false, error: "no period" };
  pending(+1);
  try {
    return await ask(fields, source, range);
  } finally {
    pending(-1);
  }
}

/** Questions in flight, on <body data-pending>: the page dims while it waits (and tests wait). */
let inFlight = 0;
function pending(change) {
  inFlight += change;
  document.body.dataset.pending = String(inFlight);
}

async function ask(fields, source, range) {
  const body = { site_id: state.site, date_range: range, timezone: tz, filters: apiFilters(), ...fields };
  try {
    const response = await fetch(`/api/v2/query?source=${source}`, {
      method: "POST",
      headers: { ...statsHeaders(), "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (response.status === 401 || response.status === 403) {
      needsToken(answer.detail || answer.error);
      return { ok: false, error: "needs a token" };
    }
    if (!response.ok) return { ok: false, status: response.status, error: answer.error || answer.detail || `HTTP ${response.status}` };
    return { ok: true, body: answer };
  } catch (e) {
    return { ok: false, error: String(e) };
  }
}

/** The site's configured goals (GET /api/v1/sites/goals): their display names, [] when none. */
export async function configuredGoals() {
  if (access.refused || state.site === null) return [];
  try {
    const response = await fetch(`/api/v1/sites/goals?site_id=${encodeURIComponent(state.site)}`, {
      headers: statsHeaders(),
    });
    if (!response.ok) return [];
    return (await response.json()).goals.map((g) => g.display_name);
  } catch {
    return [];
  }
}
