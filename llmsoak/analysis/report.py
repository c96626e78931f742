"""Writing an analysed run: verdict.json, charts/*.png, report.html (self-contained) and summary.md.

``write_outputs(analysis, out_dir)`` draws the charts that the data allows (``draw_charts``),
renders the HTML report with the PNGs embedded as base64 (no external file, script or font: it
opens from a mail attachment) and the Markdown summary, and writes every file atomically (a
temporary file renamed over the old one), so an interrupted run never leaves half a report.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

import numpy as np

from llmsoak.analysis import charts
from llmsoak.analysis.run_dir import RunAnalysis, SeriesResult
from llmsoak.analysis.wording import figure_cells, fmt_figure, fmt_interval, verdict_word
from llmsoak.formats import FAILURE_CLASSES
from llmsoak.formatting import (
    format_bytes_sig,
)
from llmsoak.rundir import RunDir

METRIC_LABELS = {
    "rss_bytes": "RSS", "uss_bytes": "USS", "swap_bytes": "swap", "cgroup_memory_bytes": "cgroup memory",
    "gpu_memory_bytes": "GPU memory", "cpu_percent": "CPU", "num_threads": "threads",
    "num_fds": "open files", "num_procs": "processes", "ttft_p95_ms": "TTFT p95",
    "itl_p95_ms": "inter-token latency p95", "e2e_p95_ms": "end-to-end p95",
    "error_rate_percent": "error rate",
}
CHART_TITLES = {
    "memory": "Memory of the target", "cpu": "CPU", "threads_fds": "Threads and open files",
    "gpu": "GPU", "latency": "Latency", "throughput": "Throughput and users", "errors": "Errors",
    "generator": "Load generator (Locust)", "server": "Server telemetry (KV cache, queue, preemptions)",
}


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)
    return path


def chart_data(res: SeriesResult) -> charts.SeriesChartData:
    """Arrays for charting one analysed series, read from its MetricVerdict."""
    df, mv = res.df, res.verdict
    segs = list(getattr(mv, "segments", ()) or ())
    last = segs[-1] if segs else None
    # The line the trend was fitted on (rolling minimum of the window minima for memory), so the
    # chart shows exactly what was judged and no GC teeth.
    env_t, env_y = getattr(mv, "envelope_t", None), getattr(mv, "fitted_y", None)
    if env_y is None or env_t is None or len(env_y) != len(env_t):
        env_y = getattr(mv, "envelope_y", None)
    tr_t, tr_y = getattr(mv, "trend_t", None), getattr(mv, "trend_y", None)
    return charts.SeriesChartData(
        metric=res.metric, t_s=df["timestamp"].to_numpy(dtype=float),
        values=df[res.metric].to_numpy(dtype=float), verdict=res.verdict_json(),
        envelope=(np.asarray(env_t, dtype=float), np.asarray(env_y, dtype=float))
        if env_t is not None and env_y is not None and len(env_t) else None,
        trend=(np.asarray(tr_t, dtype=float), np.asarray(tr_y, dtype=float))
        if tr_t is not None and tr_y is not None and len(tr_t) else None,
        regime_start_s=getattr(mv, "regime_start", None),
        uptime_start_s=(last.create_time_s if last is not None and last.create_time_s is not None
                        else (last.start_s if last is not None else None)),
        restarts_s=[s.start_s for s in segs[1:]])


def draw_charts(analysis: RunAnalysis, charts_dir: Path) -> dict[str, Path]:
    """Every chart the data allows, as ``{name: path}`` (memory, cpu, latency, ...)."""
    charts_dir = Path(charts_dir)
    charts_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    t0 = analysis.t0_s
    target = analysis.targets[analysis.primary]
    s = target.series
    mem = next((m for m in ("rss_bytes", "uss_bytes", "cgroup_memory_bytes") if m in s), None)
    if mem is not None:
        out["memory"] = charts.memory_chart(charts_dir / "memory.png", chart_data(s[mem]), t0,
                                            limit=analysis.limit_bytes, label=METRIC_LABELS[mem])
    elif s:  # --samples on another metric: one panel
        metric, res = next(iter(s.items()))
        out[metric] = charts.metric_panels_chart(charts_dir / f"{metric}.png",
                                                 [(METRIC_LABELS.get(metric, metric), chart_data(res))], t0,
                                                 f"{target.name}: {metric}")
    if "cpu_percent" in s:
        out["cpu"] = charts.metric_panels_chart(charts_dir / "cpu.png", [("CPU", chart_data(s["cpu_percent"]))],
                                                t0, "CPU of the target (100% = one core)")
    tf = [(METRIC_LABELS[m], chart_data(s[m])) for m in ("num_threads", "num_fds") if m in s]
    if tf:
        out["threads_fds"] = charts.metric_panels_chart(charts_dir / "threads_fds.png", tf, t0,
                                                        "Threads and open file descriptors")
    gpu = [(METRIC_LABELS[m], chart_data(s[m])) for m in ("gpu_memory_bytes",) if m in s]
    if gpu:
        out["gpu"] = charts.metric_panels_chart(charts_dir / "gpu.png", gpu, t0, "GPU memory of the target")
    if analysis.load is not None:

        overall = analysis.load.overall()
        per_pattern = analysis.load.df[analysis.load.df["pattern"] != "all"]
        verdicts = {m: r.verdict_json() for m, r in analysis.latency.items()}
        out["latency"] = charts.latency_chart(charts_dir / "latency.png", overall, t0,
                                              per_pattern if len(per_pattern) else None, verdicts)
        out["throughput"] = charts.throughput_chart(charts_dir / "throughput.png", overall, t0)
        out["errors"] = charts.errors_chart(charts_dir / "errors.png", overall, t0, FAILURE_CLASSES)
    if analysis.server is not None and (analysis.verdict.get("server") or {}).get("samples"):
        out["server"] = charts.server_chart(charts_dir / "server.png", analysis.server.df, t0,
                                            analysis.verdict["server"],
                                            analysis.load.overall() if analysis.load is not None else None)
    gen = analysis.generator
    if gen is not None and gen.series:
        panels = [(f"Locust {METRIC_LABELS[m]}", chart_data(gen.series[m])) for m in ("rss_bytes", "cpu_percent")
                  if m in gen.series]
        out["generator"] = charts.metric_panels_chart(charts_dir / "generator.png", panels, t0,
                                                      "Load generator (Locust processes)")
    return out


# Kept for callers of the old names (compare.py); the words live in wording.py.
_fmt = fmt_figure
_interval = fmt_interval


def metric_rows(verdict: dict) -> list[tuple[str, str, dict]]:
    """(group, metric, per-metric dict) for every verdict in the JSON, target first."""
    rows = [("target", m, v) for m, v in verdict.get("metrics", {}).items()]
    for name, t in (verdict.get("targets") or {}).items():
        if name != verdict.get("target"):
            rows += [(name, m, v) for m, v in t["metrics"].items()]
    rows += [("latency", m, v) for m, v in (verdict.get("latency") or {}).items()]
    rows += [("generator", m, v) for m, v in ((verdict.get("generator") or {}).get("metrics") or {}).items()]
    return rows


_SERVER_ROWS = (("waiting requests", "queue"), ("KV cache", "kv_cache"), ("preemptions", "preemptions"))


def server_rows(server: dict) -> list[tuple[str, str, str]]:
    """(what, figures, verdict word) for each part of verdict.json's ``server`` that is there."""
    rows = []
    for what, key in _SERVER_ROWS:
        part = server.get(key)
        if not part:
            rows.append((what, "–", "not exposed"))
            continue
        if key == "queue":
            figures = (f"mean {fmt_figure(part.get('first_quarter_mean'), 'count')} → "
                       f"{fmt_figure(part.get('last_quarter_mean'), 'count')}, max {fmt_figure(part.get('max'), 'count')}")
            if part.get("running_max") is not None:
                figures += f"; running max {fmt_figure(part['running_max'], 'count')}"
            word = part["verdict"]
        elif key == "kv_cache":
            figures = (f"mean {fmt_figure(part.get('mean'), 'count')} %, p95 {fmt_figure(part.get('p95'), 'count')} %, "
                       f"{100 * (part.get('share_full') or 0):.0f} % of the run ≥ {fmt_figure(part.get('full_percent'), 'count')} %")
            word = part["verdict"]
        else:
            figures = f"{fmt_figure(part.get('total'), 'count')} in the run"
            word = "preempted" if part.get("total") else "none"
        rows.append((what, figures, word))
    return rows


def server_reason_of(server: dict, what: str) -> str:
    """The reason of one part of ``server``; for a part the server did not export, the headline's."""
    part = server.get(dict(_SERVER_ROWS)[what])
    return str((part or {}).get("reason") or (server.get("reason") if not server.get("exported") else
                                              "the server does not export it")).replace("|", "/")


def render_summary_md(verdict: dict, chart_files: dict[str, Path] | None = None,
                      base_dir: Path | None = None) -> str:
    """summary.md: the verdict, one table of metrics, load, allocation sites and notes.

    Chart links are relative to ``base_dir`` (the directory summary.md is written to)."""
    lines = [f"# llmsoak analysis: {verdict['verdict'].upper()}", "",
             f"Source: `{verdict.get('source')}`, target `{verdict.get('target')}`"]
    w = verdict.get("window") or {}
    if w.get("duration_h") is not None:
        lines[-1] += f", {w['duration_h']:.2f} h, {w.get('samples')} samples"
    lines += ["", f"Decided by: {', '.join(verdict.get('decided_by') or []) or 'nothing'}", "",
              "| group | metric | verdict | slope | 95% interval | growth %/h | 7 days | hours to limit | restarts | reason |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for group, metric, v in metric_rows(verdict):
        c = {k: text for k, (text, _muted) in figure_cells(v).items()}
        lines.append(
            f"| {group} | {metric} | **{verdict_word(v)}** | {c['slope']} | {c['interval']} | "
            f"{c['growth']} | {c['projected']} | {c['hours_to_limit']} | {v.get('restarts', '–')} | "
            f"{str(v.get('reason', '')).replace('|', '/')} |")
    load = verdict.get("load")
    if load:
        lines += ["", "## Load", "", load.get("summary", "")]
    server = verdict.get("server")
    if server:
        lines += ["", "## Server telemetry", "", "| what | verdict | figures | reason |", "|---|---|---|---|"]
        for what, figures, word in server_rows(server):
            lines.append(f"| {what} | **{word}** | {figures} | {server_reason_of(server, what)} |")
    tm = verdict.get("tracemalloc")
    if tm and tm.get("top"):
        lines += ["", "## Top growing allocation sites (tracemalloc)", "", "| site | growth | per hour |", "|---|---|---|"]
        for site in tm["top"]:
            lines.append(f"| `{site['site']}` | {format_bytes_sig(site['growth_bytes'])} | "
                         f"{_fmt(site.get('growth_bytes_per_hour'), 'bytes', True)} |")
    if chart_files:
        def link(p: Path) -> str:
            return os.path.relpath(p, base_dir) if base_dir is not None else f"charts/{Path(p).name}"

        lines += ["", "## Charts", ""] + [f"- [{CHART_TITLES.get(k, k)}]({link(p)})" for k, p in chart_files.items()]
    if verdict.get("notes"):
        lines += ["", "## Notes (repairs and gaps)", ""] + [f"- {n}" for n in verdict["notes"]]
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1250px;margin:1.5em auto;
padding:0 1em;color:#212121;line-height:1.45}
.banner{padding:1em 1.4em;border-radius:8px;color:#fff;font-size:1.3em;margin-bottom:1em}
.banner small{display:block;font-size:.7em;opacity:.92}
table{border-collapse:collapse;width:100%;margin:.6em 0 1.4em;font-size:.92em}
th,td{border:1px solid #ddd;padding:.35em .55em;text-align:left;vertical-align:top}
th{background:#f5f5f5} td.num{text-align:right;white-space:nowrap} td.muted{color:#9e9e9e}
tr.reason td{border-top:none;color:#555;font-size:.92em;padding:.1em .55em .6em 1.6em}
tr.figures td{border-bottom:none}
.v{font-weight:600;text-transform:uppercase}
img{max-width:100%;border:1px solid #eee;margin:.4em 0 1.2em}
code{background:#f5f5f5;padding:0 .25em;border-radius:3px}
"""


def _chart_html(name: str, path: Path) -> str:
    """One chart as a heading and an embedded PNG (the report stays a single file)."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    title = html.escape(CHART_TITLES.get(name, name))
    return f"<h2>{title}</h2><img alt='{title} chart' src='data:image/png;base64,{data}'>"


def render_html(verdict: dict, chart_files: dict[str, Path]) -> str:
    """report.html: verdict banner, metric table, charts embedded as base64 PNG, load, notes."""
    e = html.escape
    v = verdict["verdict"]
    colour = charts.VERDICT_COLOURS.get(v, "#555")
    prim = verdict.get("metrics", {}).get("rss_bytes") or next(iter(verdict.get("metrics", {}).values()), {})
    w = verdict.get("window") or {}
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>llmsoak analysis: {e(v)}</title><style>{_CSS}</style></head><body>",
             f"<div class='banner' style='background:{colour}'>Verdict: <b>{e(v.upper())}</b>"
             f"<small>{e(str(prim.get('reason', '')))}</small></div>",
             f"<p>Source <code>{e(str(verdict.get('source')))}</code>, target <code>{e(str(verdict.get('target')))}</code>"]
    if w.get("duration_h") is not None:
        parts[-1] += f", {w['duration_h']:.2f} hours, {w.get('samples')} samples"
    parts[-1] += f". Decided by: {e(', '.join(verdict.get('decided_by') or []) or 'nothing')}.</p>"
    # The picture people came for first (the memory curve), then the table, then the other charts.
    chart_items = list(chart_files.items())
    chart_items.sort(key=lambda item: item[0] != "memory")
    for name, path in chart_items[:1]:
        parts.append(_chart_html(name, path))
    parts.append("<h2>Verdict per metric</h2><table><tr><th>group</th><th>metric</th><th>verdict</th>"
                 "<th>slope</th><th>95% interval</th><th>growth %/h</th><th>after 7 days</th>"
                 "<th>7-day interval</th><th>hours to limit</th><th>restarts</th></tr>")
    for group, metric, mv in metric_rows(verdict):
        c = charts.VERDICT_COLOURS.get(mv.get("verdict"), "#555")
        cells = figure_cells(mv)
        figures = "".join(f"<td class='num{' muted' if cells[k][1] else ''}'>{e(cells[k][0])}</td>"
                          for k in ("slope", "interval", "growth", "projected", "projected_interval", "hours_to_limit"))
        parts.append(
            f"<tr class='figures'><td>{e(group)}</td><td>{e(metric)}</td>"
            f"<td class='v' style='color:{c}'>{e(verdict_word(mv))}</td>"
            + figures
            + f"<td class='num'>{e(str(mv.get('restarts', '–')))}</td></tr>"
            # the reason on a full-width line of its own, so the figures stay on one line
            + f"<tr class='reason'><td colspan='10'>{e(str(mv.get('reason', '')))}</td></tr>")
    parts.append("</table>")
    load = verdict.get("load")
    if load:
        parts.append(f"<h2>Growth and load</h2><p>{e(load.get('summary', ''))}</p>")
    server = verdict.get("server")
    if server:
        parts.append("<h2>Server telemetry</h2><table><tr><th>what</th><th>verdict</th><th>figures</th></tr>")
        for what, figures, word in server_rows(server):
            c = charts.SERVER_COLOURS.get(word, "#555")
            parts.append(f"<tr class='figures'><td>{e(what)}</td><td class='v' style='color:{c}'>{e(word)}</td>"
                         f"<td>{e(figures)}</td></tr><tr class='reason'><td colspan='3'>"
                         f"{e(server_reason_of(server, what))}</td></tr>")
        parts.append("</table>")
        if "server" in chart_files:
            parts.append(_chart_html("server", chart_files["server"]))
    tm = verdict.get("tracemalloc")
    if tm and tm.get("top"):
        parts.append("<h2>Top growing allocation sites (tracemalloc)</h2><table><tr><th>site</th>"
                     "<th>growth</th><th>per hour</th><th>size now</th></tr>")
        for site in tm["top"]:
            parts.append(f"<tr><td><code>{e(site['site'])}</code></td><td class='num'>{e(format_bytes_sig(site['growth_bytes']))}</td>"
                         f"<td class='num'>{e(_fmt(site.get('growth_bytes_per_hour'), 'bytes', True))}</td>"
                         f"<td class='num'>{e(format_bytes_sig(site.get('size_bytes')))}</td></tr>")
        parts.append("</table>")
    for name, path in chart_items[1:]:
        if name != "server" or not server:  # drawn with its table above
            parts.append(_chart_html(name, path))
    if verdict.get("notes"):
        parts.append("<h2>Notes: repairs and gaps</h2><ul>" +
                     "".join(f"<li>{e(n)}</li>" for n in verdict["notes"]) + "</ul>")
    parts.append("<p><small>Written by <code>llmsoak analyze</code>. verdict.json holds every figure above.</small></p>"
                 "</body></html>")
    return "\n".join(parts)


def write_outputs(analysis: RunAnalysis, out_dir: Path | None = None, *, json_path: Path | None = None,
                  charts_dir: Path | None = None, with_report: bool = True,
                  with_charts: bool = True) -> dict[str, Path]:
    """Write verdict.json, charts, report.html and summary.md; returns ``{what: path}``.

    ``out_dir`` (RUN_DIR/analysis by default for a run) places everything; ``json_path`` and
    ``charts_dir`` override single locations (``--json``, ``--charts``).
    """
    written: dict[str, Path] = {}
    if out_dir is None and analysis.root is not None:
        out_dir = RunDir(analysis.root).analysis
    if charts_dir is None and out_dir is not None:
        charts_dir = Path(out_dir) / "charts"
    chart_files = draw_charts(analysis, charts_dir) if charts_dir is not None and with_charts else {}
    written.update({f"chart:{k}": p for k, p in chart_files.items()})
    if json_path is None and out_dir is not None:
        json_path = Path(out_dir) / "verdict.json"
    if json_path is not None:
        written["json"] = atomic_write(json_path, json.dumps(analysis.verdict, indent=2) + "\n")
    if with_report and out_dir is not None:
        written["report"] = atomic_write(Path(out_dir) / "report.html", render_html(analysis.verdict, chart_files))
        written["summary"] = atomic_write(Path(out_dir) / "summary.md",
                                          render_summary_md(analysis.verdict, chart_files, Path(out_dir)))
    return written
