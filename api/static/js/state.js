/* What the dashboard shows: the site, the period and its interval, the store whose figures are
 * drawn, the chart's metric and the filters. The site and the filters live in the address bar
 * too (?site=…&f=dimension,value), so that a reload, or a shared link passed on, keeps them. */

const listeners = [];

export const state = {
  site: null,
  period: "24h",
  interval: null, // null: the period's default
  source: localStorage.getItem("footprint.source") || "postgres",
  metric: "visitors",
  filters: [], // [{dimension, value}], each shown as a chip, all applied (and)
};

/** Read ?site= and ?f= from the address bar. */
export function readUrl() {
  const params = new URLSearchParams(location.search);
  if (params.has("site")) state.site = params.get("site");
  state.filters = params.getAll("f").flatMap((f) => {
    const comma = f.indexOf(",");
    // The dimension has no comma; the value may have any.
    return comma > 0 ? [{ dimension: f.slice(0, comma), value: f.slice(comma + 1) }] : [];
  });
}

function writeUrl() {
  const params = new URLSearchParams(location.search);
  params.delete("f");
  if (state.site !== null) params.set("site", state.site);
  for (const f of state.filters) params.append("f", `${f.dimension},${f.value}`);
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? `?${query}` : "") + location.hash);
}

export function onChange(listener) {
  listeners.push(listener);
}

/** Change the state and tell every listener (which reload what they show). */
export function update(changes) {
  Object.assign(state, changes);
  if ("source" in changes) localStorage.setItem("footprint.source", state.source);
  if ("site" in changes || "filters" in changes) writeUrl();
  for (const listener of listeners) listener(changes);
}

/** Filter by one value of a dimension; it replaces a filter on the same dimension. */
export function addFilter(dimension, value) {
  const kept = state.filters.filter((f) => f.dimension !== dimension);
  update({ filters: [...kept, { dimension, value }] });
}

export function removeFilter(dimension) {
  update({ filters: state.filters.filter((f) => f.dimension !== dimension) });
}
