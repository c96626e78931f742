"""Two runs side by side (before and after a fix): per-metric verdicts, slopes and their change.

``compare_verdicts(before, after)`` works on two verdict JSON dicts (from ``analyze_run`` or a
saved verdict.json); a metric "improved" when its verdict got better (leak → inconclusive → ok) or,
with the same verdict, when the slope interval of the after run lies wholly below the before run's
slope. ``comparison_chart`` overlays the two memory envelopes on hours since each run's start.
"""

from __future__ import annotations

from pathlib import Path

from llmsoak.analysis import charts
from llmsoak.analysis.report import _fmt, chart_data
from llmsoak.formatting import format_bytes_sig

_RANK = {"leak": 0, "inconclusive": 1, "ok": 2}


def _group_metrics(verdict: dict) -> dict[str, dict]:
    out = {m: v for m, v in (verdict.get("metrics") or {}).items()}
    out.update({m: v for m, v in (verdict.get("latency") or {}).items()})
    return out


def compare_verdicts(before: dict, after: dict) -> dict:
    """``{"before", "after", "verdict_before", "verdict_after", "metrics": {m: {...}}, "summary"}``."""
    b_metrics, a_metrics = _group_metrics(before), _group_metrics(after)
    rows: dict[str, dict] = {}
    for metric in [m for m in b_metrics if m in a_metrics]:
        b, a = b_metrics[metric], a_metrics[metric]
        sb, sa = b.get("slope_per_hour"), a.get("slope_per_hour")
        rb, ra = _RANK.get(b.get("verdict"), 1), _RANK.get(a.get("verdict"), 1)
        a_hi = (a.get("slope_interval_per_hour") or [None, None])[1]
        if ra != rb:
            improved = ra > rb
        elif sb is not None and a_hi is not None and a_hi < sb:
            improved = True
        elif sb is not None and sa is not None and sa > sb and b.get("verdict") == "leak":
            improved = False
        else:
            improved = None
        rows[metric] = {
            "unit": a.get("unit") or b.get("unit"),
            "verdict_before": b.get("verdict"), "verdict_after": a.get("verdict"),
            "slope_per_hour_before": sb, "slope_per_hour_after": sa,
            "slope_ratio": (sa / sb) if sb not in (None, 0) and sa is not None else None,
            "projected_7d_before": b.get("projected_7d"), "projected_7d_after": a.get("projected_7d"),
            "improved": improved,
        }
    return {"before": before.get("source"), "after": after.get("source"),
            "verdict_before": before.get("verdict"), "verdict_after": after.get("verdict"),
            "metrics": rows, "summary": _summary(before, after, rows)}


def _summary(before: dict, after: dict, rows: dict) -> str:
    vb, va = before.get("verdict"), after.get("verdict")
    head = f"Overall verdict {vb} → {va}"
    mem = rows.get("rss_bytes") or next((r for m, r in rows.items() if m.endswith("_bytes")), None)
    if mem and mem["slope_per_hour_before"] is not None and mem["slope_per_hour_after"] is not None:
        head += (f"; memory slope {format_bytes_sig(mem['slope_per_hour_before'])}/h → "
                 f"{format_bytes_sig(mem['slope_per_hour_after'])}/h")
    better = [m for m, r in rows.items() if r["improved"] is True]
    worse = [m for m, r in rows.items() if r["improved"] is False]
    tail = []
    if better:
        tail.append(f"improved: {', '.join(better)}")
    if worse:
        tail.append(f"worse: {', '.join(worse)}")
    return head + (f" ({'; '.join(tail)})" if tail else "") + "."


def render_comparison_md(cmp: dict) -> str:
    """A Markdown table of the comparison."""
    lines = [f"# Before / after: {cmp['verdict_before']} → {cmp['verdict_after']}", "",
             f"Before: `{cmp['before']}`  ", f"After: `{cmp['after']}`", "", cmp["summary"], "",
             "| metric | verdict before | verdict after | slope before | slope after | 7 days before | 7 days after | improved |",
             "|---|---|---|---|---|---|---|---|"]
    for m, r in cmp["metrics"].items():
        u = r["unit"] or ""
        imp = {True: "yes", False: "no", None: "–"}[r["improved"]]
        lines.append(f"| {m} | {r['verdict_before']} | {r['verdict_after']} | {_fmt(r['slope_per_hour_before'], u, True)} | "
                     f"{_fmt(r['slope_per_hour_after'], u, True)} | {_fmt(r['projected_7d_before'], u)} | "
                     f"{_fmt(r['projected_7d_after'], u)} | {imp} |")
    return "\n".join(lines) + "\n"


def comparison_chart(path: Path, before, after, metric: str = "rss_bytes") -> Path:
    """Overlay ``metric`` of two analysed runs (RunAnalysis) on hours since each run's start."""
    import numpy as np

    plt = charts._plt()
    fig, ax = plt.subplots(figsize=(12, 5))
    datas = []
    for label, analysis, colour in (("before", before, "#c62828"), ("after", after, "#2e7d32")):
        res = analysis.targets[analysis.primary].series.get(metric)
        if res is None:
            continue
        datas.append((label, chart_data(res), colour, analysis.t0_s))
    top = max((float(np.nanmax(d.values)) for _, d, _, _ in datas), default=1.0)
    div, uname = charts.human_scale(top, "bytes" if metric.endswith("_bytes") else "")
    for label, d, colour, t0 in datas:
        xm, lo, hi = charts.minmax_band((d.t_s - t0) / 3600.0, d.values)
        if len(xm) == np.isfinite(d.values).sum():  # few samples: each drawn, thin and light
            ax.plot(xm, lo / div, color=colour, alpha=0.3, linewidth=0.6)
        else:
            ax.fill_between(xm, lo / div, hi / div, color=colour, alpha=0.15, linewidth=0)
        env = d.envelope if d.envelope is not None else (d.t_s, d.values)
        title = charts.verdict_title(label, d.verdict)
        ax.plot((env[0] - t0) / 3600.0, np.asarray(env[1]) / div, color=colour, linewidth=1.6, label=title)
    ax.set_ylabel(f"{metric} ({uname})")
    fig.suptitle(f"Before / after: {metric}", fontsize=13, x=0.01, ha="left")
    return charts._finish(fig, [ax], path)
