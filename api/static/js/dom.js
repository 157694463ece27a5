/* Small DOM helpers shared by the dashboard's modules. */

export const $ = (id) => document.getElementById(id);
export const number = new Intl.NumberFormat();

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A figure that briefly takes the accent colour when it changes, so the eye sees it move. */
export function setNumber(id, value, format = (v) => number.format(v)) {
  const node = $(id);
  const empty = value === null || value === undefined;
  const text = empty ? "–" : format(value);
  if (node.textContent === text) return;
  node.textContent = text;
  node.dataset.value = empty ? "" : String(value);
  node.classList.add("bump");
  setTimeout(() => node.classList.remove("bump"), 600);
}

/** 95 → "1m 35s", as Plausible shows visit durations. */
export function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
}

/** Plausible-style rows: the bar behind each row is its share of the largest count. */
export function renderBars(list, empty, rows) {
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
