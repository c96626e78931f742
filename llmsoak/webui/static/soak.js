// llmsoak Soak page: polls ./api/state every 2 s and draws inline SVG charts.
// Self-contained on purpose: no build step, no CDN, works offline behind Locust's --web-login.
"use strict";
// The number formatting (fmtSig, fmtBytes, fmtNum, fmtPct, fmtHours) is static/format.js, loaded first.
if (typeof module !== "undefined") Object.assign(globalThis, require("./format.js"));  // node (tests)

const POLL_MS = 2000;
const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = { raw: "#90caf9", envelope: "#1565c0", trend: "#ef6c00", projection: "#c62828",
                 warn: "#ef6c00", limit: "#c62828", cpu: "#2e7d32", p50: "#1565c0", p95: "#ef6c00",
                 p99: "#c62828", slo: "#c62828", muted: "#9aa6b2" };
let lastState = null;

// The trend cards. Only a leak's 7-day projection and hours to the limit are findings: for
// "inconclusive" they read "(not a trend yet)", for "ok" the projection is the flat level (muted)
// and hours to limit are shown only while the slope interval excludes zero upward.
// Returns [label, value, cssClass, note] rows. The server sends them ready (memory_trend's
// "cards", worded by llmsoak/analysis/wording.py: no per-hour headline from minutes of data, no
// projection from too short a regime); the rules below are the fallback for an older server.
function trendCards(v, cards) {
  if (Array.isArray(cards) && cards.length) return cards;
  v = v || {};
  const verdict = v.verdict;
  const slope = v.slope_per_hour;
  const ci = v.slope_interval_per_hour || [null, null];
  const rising = ci[0] !== null && ci[0] !== undefined && ci[0] > 0;
  const slopeText = slope === null || slope === undefined ? "–"
    : (slope > 0 && fmtBytes(slope) !== "0 B" ? "+" : "") + fmtBytes(slope) + "/h";
  let proj, projCls = "", projNote = "";
  if (v.projected_7d === null || v.projected_7d === undefined) proj = "–";
  else if (verdict === "leak") proj = fmtBytes(v.projected_7d);
  else if (verdict === "ok") { proj = fmtBytes(v.projected_7d); projCls = "muted"; projNote = "(no leak: flat)"; }
  else { proj = "—"; projCls = "muted"; projNote = "(not a trend yet)"; }
  let htl = "–", htlCls = "", htlNote = "";
  if (v.hours_to_limit !== null && v.hours_to_limit !== undefined && (verdict === "leak" || rising)) {
    htl = fmtHours(v.hours_to_limit);
    if (verdict !== "leak") { htlCls = "muted"; htlNote = "(not a trend yet)"; }
  } else if (verdict === "inconclusive") { htl = "—"; htlCls = "muted"; htlNote = "(not a trend yet)"; }
  return [
    ["Memory slope", slopeText, "", ""],
    ["Growth", fmtPct(v.growth_pct_per_hour), "", ""],
    ["Projected at 7 d", proj, projCls, projNote],
    ["Hours to limit", htl, htlCls, htlNote],
    ["Verdict so far", verdict || "–", verdict === "leak" ? "leak" : verdict === "ok" ? "ok" : "", ""],
  ];
}
function fmtTime(ts, spanS) {
  const d = new Date(ts * 1000);
  return d.toTimeString().slice(0, spanS !== undefined && spanS < 900 ? 8 : 5);
}
function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

// ------------------------------------------------------------------ charts
// spec: {series: [{points: [[t, y]], color, width, dash, label}], hlines: [{y, color, label}],
//        xMin?, xMax?, yFormat, xFormat}
function drawChart(svg, spec) {
  const vb = svg.viewBox.baseVal;
  const W = vb.width, H = vb.height, L = 64, R = 12, T = 22, B = 24;
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const all = spec.series.flatMap(s => s.points);
  if (!all.length) {
    const t = svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" });
    t.textContent = spec.empty || "waiting for data…";
    svg.appendChild(t);
    svg.dataset.points = "0";
    return;
  }
  let xMin = spec.xMin !== undefined ? spec.xMin : Math.min(...all.map(p => p[0]));
  let xMax = spec.xMax !== undefined ? spec.xMax : Math.max(...all.map(p => p[0]));
  if (xMax <= xMin) xMax = xMin + 1;
  const ys = all.map(p => p[1]).concat((spec.hlines || []).filter(h => h.inRange).map(h => h.y));
  let yMin = Math.min(...ys), yMax = Math.max(...ys);
  if (spec.zeroBased) yMin = Math.min(0, yMin);
  if (yMax <= yMin) { yMax = yMin + (Math.abs(yMin) || 1) * 0.1; yMin -= (Math.abs(yMin) || 1) * 0.1; }
  const pad = (yMax - yMin) * 0.08;
  const allNonNegative = yMin >= 0;
  yMax += pad; if (!spec.zeroBased || yMin > 0) yMin -= pad;
  if (allNonNegative && yMin < 0) yMin = 0;  // memory and CPU never go below zero: keep the axis honest
  const sx = t => L + (t - xMin) / (xMax - xMin) * (W - L - R);
  const sy = v => T + (1 - (v - yMin) / (yMax - yMin)) * (H - T - B);
  // grid and axis labels
  for (let i = 0; i <= 4; i++) {
    const v = yMin + (yMax - yMin) * i / 4, y = sy(v);
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y, y2: y, class: "axis" }));
    const label = svgEl("text", { x: L - 6, y: y + 4, "text-anchor": "end" });
    label.textContent = spec.yFormat(v);
    svg.appendChild(label);
  }
  for (let i = 0; i <= 4; i++) {
    const t = xMin + (xMax - xMin) * i / 4;
    const label = svgEl("text", { x: sx(t), y: H - 6, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" });
    label.textContent = (spec.xFormat || fmtTime)(t, xMax - xMin);
    svg.appendChild(label);
  }
  for (const h of spec.hlines || []) {
    if (!h.inRange) continue;
    const y = sy(h.y);
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y, y2: y, stroke: h.color, "stroke-width": 1.2,
                                    "stroke-dasharray": "6 4", class: "hline" }));
    const left = h.align === "left";
    const label = svgEl("text", { x: left ? L + 4 : W - R - 4, y: y - 4, "text-anchor": left ? "start" : "end" });
    label.textContent = h.label;
    label.setAttribute("style", `fill:${h.color}`);
    svg.appendChild(label);
  }
  let drawn = 0;
  for (const s of spec.series) {
    if (!s.points.length) continue;
    const d = s.points.map((p, i) => (i ? "L" : "M") + sx(p[0]).toFixed(1) + " " + sy(p[1]).toFixed(1)).join(" ");
    const path = svgEl("path", { d, fill: "none", stroke: s.color, "stroke-width": s.width || 1.5,
                                 "stroke-linejoin": "round", class: "series", "data-label": s.label,
                                 "data-n": String(s.points.length) });
    if (s.dash) path.setAttribute("stroke-dasharray", s.dash);
    svg.appendChild(path);
    drawn += s.points.length;
  }
  // legend
  const legend = svgEl("g", { class: "legend" });
  let x = L;
  for (const item of spec.series.filter(s => s.label).concat(spec.legendExtra || [])) {
    legend.appendChild(svgEl("line", { x1: x, x2: x + 16, y1: 10, y2: 10, stroke: item.color, "stroke-width": 2.5,
                                       "stroke-dasharray": item.dash || "" }));
    const t = svgEl("text", { x: x + 20, y: 14 });
    t.textContent = item.label;
    legend.appendChild(t);
    x += 28 + item.label.length * 6.2;
  }
  svg.appendChild(legend);
  svg.dataset.points = String(drawn);
}

function memoryChart(state) {
  const svg = document.getElementById("chart-memory");
  const raw = state.sampler.rss_bytes || [];
  const trend = state.trend || {};
  const verdict = trend.verdict || {};
  const slo = state.profile.slo || {};
  const showProjection = document.getElementById("show-projection").checked;
  const series = [{ points: raw, color: COLORS.raw, width: 1, label: "RSS" }];
  if (trend.envelope && trend.envelope.length) {
    series.push({ points: trend.envelope, color: COLORS.envelope, width: 2, label: "lower envelope" });
  }
  if (trend.trend && trend.trend.length) {
    series.push({ points: trend.trend, color: COLORS.trend, width: 2, dash: "7 4", label: "trend (current regime)" });
  }
  let xMax;
  const created = (state.sampler.latest || {}).create_time;
  if (showProjection && verdict.projected_7d !== null && verdict.projected_7d !== undefined
      && trend.trend && trend.trend.length && created) {
    const end = trend.trend[trend.trend.length - 1];
    const t7 = created + 168 * 3600;
    if (t7 > end[0]) {
      const leak = verdict.verdict === "leak";  // otherwise the line is no finding: muted, and says so
      series.push({ points: [end, [t7, verdict.projected_7d]], color: leak ? COLORS.projection : COLORS.muted,
                    width: leak ? 2 : 1.5, dash: "2 4",
                    label: leak ? "projection to 7 days uptime"
                      : `projection to 7 days uptime (${verdict.verdict === "ok" ? "flat, no leak" : "not a trend yet"})` });
      xMax = t7;
    }
  }
  const dataMax = Math.max(...series.flatMap(s => s.points.map(p => p[1])), 0);
  const hlines = [];
  for (const [key, color, name] of [["memory_warn_bytes", COLORS.warn, "warn"], ["memory_limit_bytes", COLORS.limit, "limit"]]) {
    const v = slo[key];
    if (v === null || v === undefined) continue;
    // A limit far above the curve would flatten it: draw it only when it is within reach.
    hlines.push({ y: v, color, label: `${name} ${fmtBytes(v)}`, inRange: showProjection || v <= dataMax * 2,
                  align: name === "warn" ? "left" : "right" });
  }
  const legendExtra = hlines.filter(h => !h.inRange).map(h => ({ color: h.color, dash: "6 4", label: h.label + " (off scale)" }));
  drawChart(svg, { series, hlines, xMax, yFormat: fmtBytes, legendExtra,
                   xFormat: xMax ? (t => "+" + ((t - raw[0][0]) / 3600).toFixed(0) + " h") : fmtTime,
                   empty: state.sampler.error || (state.sampler.url ? "waiting for samples…" : "no sampler: start Locust with --sampler-url") });
  const note = document.getElementById("trend-note");
  note.textContent = trend.status === "ok" ? `${verdict.verdict}: ${verdict.reason}` : (trend.reason || "");
}

function cpuChart(state) {
  drawChart(document.getElementById("chart-cpu"), {
    series: [{ points: state.sampler.cpu_percent || [], color: COLORS.cpu, width: 1.5, label: "CPU %" }],
    yFormat: v => v.toFixed(0) + " %", zeroBased: true,
    empty: state.sampler.url ? "waiting for samples…" : "no sampler configured" });
}

function ttftChart(state) {
  const s = state.llm.series || { columns: [], rows: [] };
  const col = name => s.columns.indexOf(name);
  const pick = name => s.rows.filter(r => r[col(name)] !== null && r[col(name)] !== undefined).map(r => [r[0], r[col(name)]]);
  const series = [
    { points: pick("current_ttft_p50_ms"), color: COLORS.p50, label: "p50" },
    { points: pick("current_ttft_p95_ms"), color: COLORS.p95, label: "p95" },
    { points: pick("current_ttft_p99_ms"), color: COLORS.p99, label: "p99", width: 1 },
  ];
  const slo = state.profile.slo.ttft_p95_ms;
  const hlines = slo ? [{ y: slo, color: COLORS.slo, label: `SLO p95 ${slo} ms`, inRange: true }] : [];
  drawChart(document.getElementById("chart-ttft"), { series, hlines, yFormat: v => fmtNum(v, 0) + " ms", zeroBased: true,
    empty: state.llm.error || "waiting for requests…" });
}

// The target's own gauges, drawn beside TTFT when the sampler scrapes its /metrics
// (state.server is null otherwise: the two panels then say how to turn it on).
function serverCharts(state) {
  const server = state.server;
  const none = state.sampler.url ? "not exposed: run the sampler with --metrics-url URL --metrics-format server"
                                 : "no sampler configured";
  drawChart(document.getElementById("chart-kv"), {
    series: [{ points: (server && server.kv_cache_usage_percent) || [], color: "#6a1b9a", label: "KV cache %" }],
    hlines: [{ y: 95, color: COLORS.limit, label: "saturation 95 %", inRange: true }],
    yFormat: v => v.toFixed(0) + " %", zeroBased: true,
    empty: server ? "waiting for the server's metrics…" : none });
  drawChart(document.getElementById("chart-queue"), {
    series: [{ points: (server && server.requests_running) || [], color: COLORS.p50, label: "running" },
             { points: (server && server.requests_waiting) || [], color: COLORS.limit, label: "waiting" }],
    yFormat: v => fmtNum(v, 0), zeroBased: true,
    empty: server ? "waiting for the server's metrics…" : none });
  const latest = (server && server.latest) || {};
  document.getElementById("server-preemptions").textContent =
    latest.preemptions_total !== undefined && latest.preemptions_total !== null
      ? `· ${fmtNum(latest.preemptions_total, 0)} preemptions since the server started` : "";
}

// ------------------------------------------------------------------ text parts
function renderCards(state) {
  const latest = state.sampler.latest || {};
  const v = (state.trend || {}).verdict || {};
  const all = (state.llm.patterns || []).find(r => r.pattern === "all") || {};
  const cards = [
    ["Target RSS", fmtBytes(latest.rss_bytes)],
    ["Target CPU", latest.cpu_percent === undefined || latest.cpu_percent === null ? "–" : fmtSig(latest.cpu_percent, 2) + " %"],
    ...trendCards(v, (state.trend || {}).cards),
    ["Users", state.locust.user_count === null ? "–" : String(state.locust.user_count)],
    ["Requests", all.requests === undefined ? "–" : String(all.requests)],
    ["TTFT p95", all.ttft_p95_ms === undefined || all.ttft_p95_ms === null ? "–" : fmtSig(all.ttft_p95_ms) + " ms"],
    ["Tokens/s now", fmtSig(all.current_tokens_per_s)],
  ];
  const box = document.getElementById("cards");
  box.replaceChildren(...cards.map(([label, value, cls, note]) => {
    const card = el("div", { class: "card " + (cls || ""), "data-card": label });
    card.append(el("div", { class: "label" }, label), el("div", { class: "value" }, value));
    if (note) card.append(el("div", { class: "note" }, note));
    return card;
  }));
}

function renderAlerts(state) {
  const box = document.getElementById("alerts");
  const active = state.alerts.active || [];
  if (!active.length) {
    box.replaceChildren(el("div", { class: "alert ok" }, "No thresholds crossed."));
    return;
  }
  box.replaceChildren(...active.map(a => el("div", { class: "alert " + a.severity, "data-alert": a.key },
    (a.severity === "critical" ? "✖ " : "⚠ ") + a.message)));
}

function renderTable(state) {
  const rows = state.llm.patterns || [];
  const heads = ["Pattern", "Users", "Requests", "Failures", "By class", "TTFT p50/p95/p99 ms",
                 "ITL p50/p95 ms", "E2E p50/p95/p99 ms", "Tokens/s now"];
  const table = document.getElementById("llm-table");
  table.tHead.replaceChildren(el("tr", {}));
  heads.forEach(h => table.tHead.rows[0].appendChild(el("th", {}, h)));
  const ms = (...vs) => vs.map(v => fmtNum(v)).join(" / ");
  table.tBodies[0].replaceChildren(...rows.map(r => {
    const tr = el("tr", { class: r.pattern === "all" ? "all" : "" });
    const classes = Object.entries(r.failures_by_class || {}).filter(([, n]) => n).map(([c, n]) => `${c} ${n}`).join(", ") || "none";
    [r.pattern, r.users === null ? "–" : r.users, r.requests || 0, r.failures || 0, classes,
     ms(r.ttft_p50_ms, r.ttft_p95_ms, r.ttft_p99_ms), ms(r.itl_p50_ms, r.itl_p95_ms),
     ms(r.e2e_p50_ms, r.e2e_p95_ms, r.e2e_p99_ms), fmtNum(r.current_tokens_per_s)]
      .forEach(v => tr.appendChild(el("td", {}, String(v))));
    return tr;
  }));
  document.getElementById("llm-note").textContent = state.llm.error || "";
}

function renderEvents(state) {
  const items = (state.sampler.events || []).map(e => ({ ts: e.timestamp, text: `${e.kind}: ${e.detail}` }))
    .concat((state.alerts.recent || []).map(a => ({ ts: a.timestamp, text: `alert ${a.state}: ${a.message}` })))
    .sort((a, b) => b.ts - a.ts).slice(0, 50);
  document.getElementById("events").replaceChildren(...(items.length ? items : [{ ts: null, text: "none yet" }])
    .map(i => el("li", {}, (i.ts ? new Date(i.ts * 1000).toLocaleString() + "  " : "") + i.text)));
}

function render(state) {
  lastState = state;
  const p = state.profile;
  document.getElementById("run-info").textContent =
    `Locust ${state.locust.state || "?"} · ${state.locust.user_count ?? 0} users` +
    (state.locust.worker_count !== null && state.locust.worker_count !== undefined ? ` · ${state.locust.worker_count} workers` : "") +
    ` · profile ${p.name || p.path || "none"}` + (p.error ? ` (${p.error})` : "") +
    ` · sampler ${state.sampler.status}` + (state.sampler.name ? ` (${state.sampler.name}, pid ${state.sampler.pid})` : "");
  renderAlerts(state);
  renderCards(state);
  memoryChart(state);
  cpuChart(state);
  ttftChart(state);
  serverCharts(state);
  renderTable(state);
  renderEvents(state);
  document.getElementById("footer").textContent =
    `updated ${new Date(state.generated_at * 1000).toLocaleTimeString()} · monitor tick ${state.monitor.ticks}`;
  document.body.dataset.ticks = String(state.monitor.ticks);
}

async function poll() {
  try {
    const resp = await fetch("api/state", { credentials: "same-origin", cache: "no-store" });
    if (resp.redirected || !resp.ok) throw new Error(`state answered ${resp.status}${resp.redirected ? " (login needed?)" : ""}`);
    render(await resp.json());
  } catch (err) {
    document.getElementById("run-info").textContent = "cannot read the state: " + err.message;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

if (typeof document !== "undefined") {
  document.getElementById("show-projection").addEventListener("change", () => { if (lastState) memoryChart(lastState); });
  poll();
}
if (typeof module !== "undefined") {  // node (tests/webui/test_webui.py) checks the cards
  module.exports = { fmtSig, fmtBytes, fmtPct, fmtHours, trendCards };
}
