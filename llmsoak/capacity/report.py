"""A capacity sweep as charts and one HTML page: ``RUN/charts/*.png`` and ``RUN/report.html``.

Two charts (docs/capacity.md):

- *latency against throughput*: TTFT and E2E p95 (ms) against the achieved req/s of every step,
  the SLO limits as dashed lines;
- *goodput against load*: goodput req/s and the achieved req/s against the offered open-loop
  rate, the diagonal (everything offered is served), and the knee marked.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from llmsoak.rundir import CAPACITY_REPORT

CHARTS = {"latency_throughput": "Latency against throughput", "goodput_load": "Goodput against offered load"}


def _plt():
    import matplotlib  # start-up: only when a report is written

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=100, format="png")
    _plt().close(fig)
    os.replace(tmp, path)
    return path


def draw_charts(doc: dict, folder: Path) -> dict[str, Path]:
    """The two PNGs of a capacity.json document ``doc`` in ``folder``; name → path."""
    plt = _plt()
    folder.mkdir(parents=True, exist_ok=True)
    steps = doc["steps"]
    slo = doc["slo"]
    out = {}
    fig, ax = plt.subplots(figsize=(8, 4.5))
    pts = sorted((s for s in steps if s["kind"] in ("rate", "concurrency")), key=lambda s: s["achieved_rps"])
    for name, colour in (("ttft", "#1565c0"), ("e2e", "#6a1b9a")):
        xs = [s["achieved_rps"] for s in pts if s["latency_ms"][name]["p95"] is not None]
        ys = [s["latency_ms"][name]["p95"] for s in pts if s["latency_ms"][name]["p95"] is not None]
        ax.plot(xs, ys, "o-", color=colour, label=f"{name.upper()} p95")
        limit = slo.get(f"{name}_p95_ms")
        if limit is not None:
            ax.axhline(limit, color=colour, linestyle="--", alpha=0.6, label=f"{name.upper()} SLO {limit:g} ms")
    ax.set_xlabel("achieved throughput (req/s)")
    ax.set_ylabel("latency p95 (ms)")
    ax.set_title("Latency against throughput")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    out["latency_throughput"] = _save(fig, folder / "latency_throughput.png")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    rates = sorted((s for s in steps if s["kind"] == "rate"), key=lambda s: s["load"])
    xs = [s["load"] for s in rates]
    ax.plot(xs, [s["achieved_rps"] for s in rates], "o-", color="#757575", label="achieved req/s")
    ax.plot(xs, [s["goodput_rps"] for s in rates], "o-", color="#2e7d32", label="goodput req/s (met every SLO)")
    for s in rates:
        if not s["meets_slo"]:
            ax.plot([s["load"]], [s["goodput_rps"]], "x", color="#c62828", markersize=9)
    if xs:
        ax.plot([0, max(xs)], [0, max(xs)], ":", color="#bdbdbd", label="offered = served")
    knee = doc["knee"]["rate_rps"]
    if knee is not None:
        ax.axvline(knee, color="#c62828", linestyle="--", label=f"knee {knee:.3g} req/s ({doc['knee']['rate_bound']})")
    ax.set_xlabel("offered load (req/s, open loop)")
    ax.set_ylabel("req/s")
    ax.set_title("Goodput against offered load (× = step missed the SLOs)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    out["goodput_load"] = _save(fig, folder / "goodput_load.png")
    return out


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:.3g}{unit}" if isinstance(value, float) else f"{value}{unit}"


def render_html(doc: dict, charts: dict[str, Path]) -> str:
    """report.html: the answer in one sentence, the targets, the charts (embedded), every step."""
    e = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>capacity: {e(doc['profile'])}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:2px 6px;"
             "text-align:right}th{background:#f5f5f5}.miss{color:#c62828}.meet{color:#2e7d32}"
             "img{max-width:100%;border:1px solid #eee}</style>",
             f"<h1>Capacity of {e(doc['target'])}</h1>", f"<p><b>{e(summary(doc))}</b></p>"]
    if doc.get("verdict"):
        parts.append("<ul>" + "".join(f"<li>{e(line)}</li>" for line in doc["verdict"]) + "</ul>")
    slo = ", ".join(f"{k} {v:g}" for k, v in doc["slo"].items() if v is not None)
    parts.append(f"<p>Profile <code>{e(doc['profile'])}</code>; SLOs: {e(slo)}; synchronous rate "
                 f"{_fmt(doc['synchronous_rps'])} req/s; maximum throughput {_fmt(doc['max_throughput_rps'])} req/s; "
                 f"{e(doc['settings']['distribution'])} arrivals; exit code {doc['exit_code']}.</p>")
    for name, path in charts.items():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        parts.append(f"<h2>{e(CHARTS[name])}</h2><img alt='{e(CHARTS[name])}' src='data:image/png;base64,{data}'>")
    parts.append("<h2>Steps</h2><table><tr><th>#</th><th>role</th><th>load</th><th>achieved req/s</th>"
                 "<th>tok/s</th><th>TTFT p95</th><th>ITL p95</th><th>TPOT p95</th><th>E2E p95</th><th>errors</th>"
                 "<th>dropped</th><th>lag p95</th><th>goodput</th><th>SLOs</th></tr>")
    unit = {"rate": " req/s", "concurrency": " in flight", "users": " users"}
    for i, s in enumerate(doc["steps"], 1):
        lat = s["latency_ms"]
        verdict = ("<span class='meet'>met</span>" if s["meets_slo"]
                   else f"<span class='miss'>{e('; '.join(s['reasons']))}</span>")
        parts.append(
            f"<tr><td>{i}</td><td>{e(s['role'])}</td><td>{_fmt(s['load'])}{unit[s['kind']]}</td>"
            f"<td>{_fmt(s['achieved_rps'])}</td><td>{_fmt(s['output_tokens_per_s'])}</td>"
            + "".join(f"<td>{_fmt(lat[m]['p95'], ' ms')}</td>" for m in ("ttft", "itl", "tpot", "e2e"))
            + f"<td>{_fmt(s['error_rate'])}</td><td>{s['dropped']}</td><td>{_fmt(s['lag_ms']['p95'], ' ms')}</td>"
            f"<td>{_fmt(s['goodput_share'])} ({_fmt(s['goodput_rps'])} req/s)</td><td style='text-align:left'>{verdict}</td></tr>")
    parts.append("</table><p>Definitions: docs/capacity.md. Files: capacity.json, capacity.csv.</p>")
    return "\n".join(parts)


def summary(doc: dict) -> str:
    """The answer in one sentence, e.g. "holds 26.1 req/s (… users of its mix) within TTFT p95 1000 ms"."""
    knee = doc["knee"]
    slo = " and ".join(f"{n.split('_')[0].upper()} p95 {doc['slo'][n]:g} ms"
                       for n in ("ttft_p95_ms", "e2e_p95_ms") if doc["slo"].get(n) is not None)
    if knee["rate_rps"] is None:
        return f"No load measured met {slo}: not even {_fmt(doc['synchronous_rps'])} req/s one at a time."
    rate = f"{'at least ' if knee['rate_bound'] == 'at least' else ''}{knee['rate_rps']:.3g} req/s"
    users = ""
    if knee["users"]:
        users = (f" or {'at least ' if knee['users_bound'] == 'at least' else ''}{knee['users']} users "
                 f"of the profile's pattern mix")
    return f"This server holds {rate}{users} within {slo}."


def write_report(doc: dict, root: Path) -> Path:
    """Charts into ``root/charts/`` and ``root/report.html``; returns the report's path."""
    charts = draw_charts(doc, root / "charts")
    path = root / CAPACITY_REPORT
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_html(doc, charts), encoding="utf-8")
    os.replace(tmp, path)
    return path
