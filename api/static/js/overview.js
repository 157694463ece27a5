/* The top stats (visitors, visits, pageviews, bounce rate, visit duration) asked of PostgreSQL
 * and ClickHouse one after the other, with both query times side by side; the chart of the
 * chosen metric over time, in the chosen interval. */
import { $, duration, number, setNumber } from "./dom.js";
import { query, spanHours } from "./api.js";
import { state, update } from "./state.js";

export const SOURCES = ["postgres", "clickhouse"];
const TOP = ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"];
const FORMATS = { bounce_rate: (v) => `${v}%`, visit_duration: duration };
const INTERVALS = [
  ["minute", "Minutes", (h) => h <= 24],
  ["hour", "Hours", (h) => h <= 24 * 31],
  ["day", "Days", (h) => h >= 24],
  ["week", "Weeks", (h) => h >= 24 * 7],
  ["month", "Months", (h) => h >= 24 * 28],
];

let answers = {}; // source -> {ok, body} of the top stats
let chart = null;
let seq = 0;
let chartSeq = 0;

/** The interval picker's choices for the period; keeps the chosen one if it still fits. */
export function fillIntervals() {
  const hours = spanHours();
  const allowed = INTERVALS.filter(([, , fits]) => fits(hours));
  const fallback = hours <= 6 ? "minute" : hours <= 48 ? "hour" : "day";
  const chosen = allowed.some(([v]) => v === state.interval) ? state.interval : fallback;
  $("interval").replaceChildren(...allowed.map(([value, label]) => new Option(label, value, false, value === chosen)));
  state.interval = chosen;
}

function renderTimings() {
  const times = SOURCES.map((s) => answers[s]?.ok && answers[s].body.meta.query_ms).filter((t) => typeof t === "number");
  const max = Math.max(1e-9, ...times);
  for (const src of SOURCES) {
    const answer = answers[src];
    const ms = $(`ms-${src}`);
    document.querySelector(`.timing[data-source="${src}"]`).classList.toggle("active", src === state.source);
    if (!answer) continue;
    if (!answer.ok) {
      ms.textContent = "unavailable";
      ms.title = answer.error;
      ms.classList.add("error");
      $(`bar-${src}`).style.width = "0";
      continue;
    }
    const t = answer.body.meta.query_ms;
    ms.textContent = `${t < 10 ? t.toFixed(2) : t.toFixed(1)} ms`;
    ms.title = `answered by ${answer.body.meta.source}`;
    ms.classList.remove("error");
    $(`bar-${src}`).style.width = `${Math.max(2, (100 * t) / max)}%`;
  }
}

/** The stats of the store the switch picks; the error of the first store that failed. */
export function renderTop() {
  renderTimings();
  for (const b of document.querySelectorAll(".stat")) b.classList.toggle("active", b.dataset.metric === state.metric);
  const answer = answers[state.source];
  const values = answer?.ok ? answer.body.results[0]?.metrics || TOP.map(() => 0) : TOP.map(() => null);
  TOP.forEach((metric, i) => setNumber(`stat-${metric}`, values[i], FORMATS[metric]));
  const failed = SOURCES.map((s) => answers[s]).find((a) => a && !a.ok && a.error !== "needs a token");
  $("query-error").textContent = failed ? failed.error : "";
  $("query-error").hidden = !failed;
  if (answer?.ok) {
    const [first, last] = answer.body.query.date_range;
    const fmt = (iso) => new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    $("period-label").textContent = `${fmt(first)} – ${fmt(last)} · ${answer.body.query.timezone} · figures from ${state.source === "postgres" ? "PostgreSQL" : "ClickHouse"}`;
  }
}

export async function loadTop() {
  const mine = ++seq;
  const found = {};
  // One after the other, so that neither query's time includes competing with the other.
  for (const src of SOURCES) found[src] = await query({ metrics: TOP }, src);
  if (mine !== seq) return; // a newer question superseded this one
  answers = found;
  renderTop();
}

/** Bucket labels are local times ("2026-11-30 14:00:00", "2026-11-30"). */
const labelTime = (label) => new Date(label.length === 10 ? `${label}T00:00:00` : label.replace(" ", "T")).getTime();

export async function loadChart() {
  const metric = state.metric;
  const dimension = `time:${state.interval}`;
  const mine = ++chartSeq;
  const answer = await query({ metrics: [metric], dimensions: [dimension], include: { time_labels: true } });
  if (!answer.ok || mine !== chartSeq) return;
  const values = new Map(answer.body.results.map((r) => [r.dimensions[0], r.metrics[0]]));
  const [first, last] = answer.body.query.date_range.map((iso) => Date.parse(iso));
  // Labels cover whole days: keep the buckets that overlap the period.
  const labels = answer.body.meta.time_labels;
  const times = labels.map(labelTime);
  const kept = labels.map((_, i) => i).filter((i) => times[i] <= last && (i + 1 === times.length || times[i + 1] > first));
  drawChart(kept.map((i) => times[i] / 1000), kept.map((i) => values.get(labels[i]) ?? 0), metric);
}

function drawChart(xs, ys, metric) {
  $("chart-empty").hidden = ys.some((y) => y > 0);
  const container = $("chart");
  // What was drawn, for whoever checks the chart without reading the canvas (the tests).
  Object.assign(container.dataset, { metric, buckets: String(ys.length), sum: String(ys.reduce((a, b) => a + b, 0)) });
  if (typeof uPlot === "undefined") return;
  const label = document.querySelector(`.stat[data-metric="${metric}"] span`).textContent;
  if (chart && chart.series[1].label === label) {
    chart.setData([xs, ys]);
    return;
  }
  if (chart) chart.destroy();
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
          size: 52,
          values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? (FORMATS[metric] || number.format)(v) : "")),
        },
      ],
      series: [{}, { label, stroke: "#4f46e5", width: 2, fill: "rgba(79, 70, 229, 0.10)", points: { show: false } }],
    },
    [xs, ys],
    container,
  );
}

export function initOverview() {
  new ResizeObserver(() => chart && chart.setSize({ width: $("chart").clientWidth, height: 260 })).observe($("chart"));
  for (const b of document.querySelectorAll(".stat")) {
    b.addEventListener("click", () => update({ metric: b.dataset.metric }));
  }
  $("interval").addEventListener("change", () => update({ interval: $("interval").value }));
  for (const b of document.querySelectorAll(".segmented [data-source]")) {
    b.addEventListener("click", () => update({ source: b.dataset.source }));
  }
}

export function showSource() {
  for (const b of document.querySelectorAll(".segmented [data-source]")) {
    b.classList.toggle("active", b.dataset.source === state.source);
  }
}
