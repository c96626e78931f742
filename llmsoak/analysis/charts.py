"""Charts of a run (matplotlib, Agg, PNG), one function per chart, readable at a glance.

Every chart has the time axis in hours since the run started, values in human units (MiB, GiB,
ms, %), a title that states the verdict, and a legend. Long series are never drawn point by
point: the raw samples become a min/max band per pixel column (``minmax_band``) and the lines are
the analysis' reduced series (lower envelope, trend), so a 7-day run at 1 s draws as fast as a
1-hour one.

Inputs are plain numpy arrays (timestamps in Unix seconds) and JSON-ready dicts, so the functions
work on anything, not only on ``llmsoak analyze`` results.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llmsoak.analysis.wording import projection_note, verdict_word
from llmsoak.formatting import format_bytes_sig, format_hours, format_sig, snap

VERDICT_COLOURS = {"leak": "#c62828", "ok": "#2e7d32", "inconclusive": "#b26a00"}
_BAND_COLUMNS = 1200  # pixel columns of a 12-inch figure at 100 dpi
_DPI = 100


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


@dataclass
class SeriesChartData:
    """One metric ready to chart: raw samples, reduced series, verdict (all times Unix seconds)."""

    metric: str
    t_s: np.ndarray
    values: np.ndarray
    verdict: dict  # the per-metric verdict JSON (verdict, slope_per_hour, projected_7d, ...)
    envelope: tuple[np.ndarray, np.ndarray] | None = None
    trend: tuple[np.ndarray, np.ndarray] | None = None
    regime_start_s: float | None = None
    uptime_start_s: float | None = None  # start of the target's current process (for the 7-day mark)
    restarts_s: list[float] = field(default_factory=list)


def human_scale(max_abs: float, unit: str) -> tuple[float, str]:
    """Divisor and label for values of ``unit`` whose magnitude is about ``max_abs``."""
    if unit == "bytes":
        for div, name in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if max_abs >= div:
                return float(div), name
        return 1.0, "B"
    if unit in ("ms", "milliseconds"):
        return (1000.0, "s") if max_abs >= 10_000 else (1.0, "ms")
    if unit in ("percent", "%"):
        return 1.0, "%"
    return 1.0, unit or ""


def minmax_band(x: np.ndarray, y: np.ndarray, columns: int = _BAND_COLUMNS):
    """(x_mid, y_min, y_max) with one entry per occupied pixel column; NaNs ignored."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) <= 2 * columns:
        return x, y, y
    edges = np.linspace(x[0], x[-1], columns + 1)
    starts = np.searchsorted(x, edges[:-1], side="left")
    starts = np.unique(starts[starts < len(x)])
    return (np.add.reduceat(x, starts) / np.diff(np.append(starts, len(x))),
            np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts))


def _hours(t_s, t0_s: float):
    return (np.asarray(t_s, dtype=float) - t0_s) / 3600.0


def _fmt_value(v: float | None, unit: str, resolution: float = 1e-9) -> str:
    """3 significant digits in the unit ``human_scale`` picks; below ``resolution`` reads 0."""
    if v is None or not np.isfinite(v):
        return "n/a"
    v = snap(float(v), resolution)
    if unit == "bytes":
        return format_bytes_sig(v)
    div, name = human_scale(abs(v), unit)
    return f"{format_sig(v / div)} {name}".strip()


def verdict_title(label: str, verdict: dict) -> str:
    """``"Target RSS: LEAK, +4.1 MiB/h, 7 days: 1.6 GiB"`` from a per-metric verdict dict."""
    unit = verdict.get("unit") or ""
    parts = [f"{label}: {verdict_word(verdict).upper()}"]
    slope = verdict.get("slope_per_hour")
    if slope is not None:
        thr = verdict.get("min_growth_per_hour")
        text = _fmt_value(abs(slope), unit, 1e-4 * thr if thr else 1e-9)
        sign = "" if text.startswith("0 ") or text == "0" else ("+" if slope >= 0 else "−")
        parts.append(f"{sign}{text}/h")
    # Only a leak's projection is a finding; "ok" and "inconclusive" titles do not quote one.
    if verdict.get("projected_7d") is not None and unit == "bytes" and verdict.get("verdict") == "leak":
        parts.append(f"7 days: {_fmt_value(verdict['projected_7d'], unit)}")
    return ", ".join(parts)


def _finish(fig, ax_list, path: Path, top_in: float = 0.75) -> Path:
    """Legends, grid, fixed margins (tight_layout would draw the figure twice), atomic PNG write."""
    for ax in ax_list:
        ax.grid(True, alpha=0.3)
        handles, _labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
    ax_list[-1].set_xlabel("hours since start of run")
    width_in, height_in = fig.get_size_inches()
    n = len(ax_list)
    top, bottom = 1 - top_in / height_in, 0.55 / height_in
    axes_in = (height_in - top_in - 0.55 - 0.7 * (n - 1)) / n
    fig.subplots_adjust(left=0.75 / width_in, right=1 - 0.75 / width_in, top=top, bottom=bottom,
                        hspace=0.7 / max(axes_in, 0.5))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    # Fast zlib level: the PNGs are a little larger and written several times faster.
    fig.savefig(tmp, dpi=_DPI, format="png", pil_kwargs={"compress_level": 1})
    _plt().close(fig)
    os.replace(tmp, path)
    return path


def _series_axes(ax, data: SeriesChartData, t0_s: float, label: str, colour: str = "#1565c0",
                 show_envelope: bool = True, limit: float | None = None) -> tuple[float, str]:
    """Raw band + envelope + trend + restarts of one metric on ``ax``; returns the scale used."""
    unit = data.verdict.get("unit") or ""
    finite = data.values[np.isfinite(data.values)]
    top = max(float(np.max(np.abs(finite))) if len(finite) else 1.0, 1e-12)
    div, uname = human_scale(top, unit)
    xm, lo, hi = minmax_band(_hours(data.t_s, t0_s), data.values)
    if len(xm) and len(xm) == len(finite):  # few samples: every one drawn, thin and light
        ax.plot(xm, lo / div, color=colour, alpha=0.35, linewidth=0.7, label=f"{label} samples")
    elif len(xm):
        ax.fill_between(xm, lo / div, hi / div, color=colour, alpha=0.25, linewidth=0,
                        label=f"{label} samples (min–max)")
    if show_envelope and data.envelope is not None and len(data.envelope[0]):
        ax.plot(_hours(data.envelope[0], t0_s), np.asarray(data.envelope[1], dtype=float) / div,
                color=colour, linewidth=1.6,
                label="lower envelope (after GC)" if unit == "bytes" else "median per window")
    if data.trend is not None and len(data.trend[0]):
        ax.plot(_hours(data.trend[0], t0_s), np.asarray(data.trend[1], dtype=float) / div,
                color="#212121", linewidth=2.0, linestyle="--", label="trend (current regime)")
    for i, r in enumerate(data.restarts_s):
        ax.axvline((r - t0_s) / 3600.0, color="#6a1b9a", linewidth=1.2, linestyle=":",
                   label="target restart" if i == 0 else None)
    if limit is not None and len(finite) and limit <= 1.5 * float(np.max(finite)):
        ax.axhline(limit / div, color=VERDICT_COLOURS["leak"], linewidth=1.5, label=f"limit {_fmt_value(limit, unit)}")
    ax.set_ylabel(f"{label} ({uname})" if uname else label)
    return div, uname


def memory_chart(path: Path, data: SeriesChartData, t0_s: float, *, limit: float | None = None,
                 label: str = "RSS") -> Path:
    """Memory over the run (top) and its 7-day projection with interval band and limit (bottom)."""
    plt = _plt()
    fig, (ax, axp) = plt.subplots(2, 1, figsize=(12, 8), height_ratios=[3, 2])
    v = data.verdict
    unit = v.get("unit") or "bytes"
    colour = VERDICT_COLOURS.get(v.get("verdict"), "#1565c0")
    div, uname = _series_axes(ax, data, t0_s, label, limit=limit)
    fig.suptitle(verdict_title(f"Target memory ({label})", v), color=colour, fontsize=14, x=0.01, ha="left")
    if v.get("reason"):
        ax.set_title(textwrap.fill(textwrap.shorten(str(v["reason"]), 400), 150), loc="left",
                     fontsize=8.5, color="#424242")

    # Projection panel: the observed envelope, then the trend carried to 168 h of uptime.
    env = data.envelope if data.envelope is not None else (data.t_s, data.values)
    ex, elo, _ehi = minmax_band(_hours(env[0], t0_s), np.asarray(env[1], dtype=float))
    uptime0 = data.uptime_start_s if data.uptime_start_s is not None else (
        data.regime_start_s if data.regime_start_s is not None else float(data.t_s[0]))
    end_h = (uptime0 - t0_s) / 3600.0 + 168.0
    proj = v.get("projected_7d")
    leak = v.get("verdict") == "leak"
    # Only a leak's trend is a finding: otherwise the line is drawn muted, without its interval
    # cone (a wide cone of an undecided fit would set the scale and read as a forecast).
    interval = (v.get("projected_interval_7d") or [None, None]) if leak else [None, None]
    tops = [x for x in (proj if leak else None, interval[1], limit, float(np.nanmax(elo)) if len(elo) else None)
            if x is not None and np.isfinite(x)]
    pdiv, puname = human_scale(max(abs(x) for x in tops) if tops else 1.0, unit)
    axp.plot(ex, elo / pdiv, color="#1565c0", linewidth=1.4, label="observed (lower envelope)")
    if proj is not None and data.trend is not None and len(data.trend[0]):
        x_last = (float(data.trend[0][-1]) - t0_s) / 3600.0
        y_last = float(data.trend[1][-1])
        if leak:
            label_p, colour_p = f"projection: {_fmt_value(proj, unit)} after 7 days of uptime", "#212121"
        elif v.get("verdict") == "ok":
            label_p, colour_p = "current level carried forward (verdict ok: no leak)", "#9e9e9e"
        else:
            label_p, colour_p = "latest fit carried forward (inconclusive: not a trend yet)", "#9e9e9e"
        axp.plot([x_last, end_h], [y_last / pdiv, proj / pdiv], color=colour_p, linestyle="--",
                 linewidth=2.0 if leak else 1.4, label=label_p)
        if None not in interval:
            axp.fill_between([x_last, end_h], [y_last / pdiv, interval[0] / pdiv],
                             [y_last / pdiv, interval[1] / pdiv], color="#757575", alpha=0.25,
                             label=f"95% interval {_fmt_value(interval[0], unit)} – {_fmt_value(interval[1], unit)}")
    axp.axvline(end_h, color="#424242", linewidth=0.8, linestyle=":", label="7 days of uptime")
    if limit is not None:
        htl = v.get("hours_to_limit")
        extra = f", reached in {format_hours(htl)}" if htl is not None and leak else ""
        axp.axhline(limit / pdiv, color=VERDICT_COLOURS["leak"], linewidth=1.5,
                    label=f"limit {_fmt_value(limit, unit)}{extra}")
    axp.set_xlim(0, max(end_h, float(ex[-1]) if len(ex) else 0.0) * 1.02)
    if leak or not tops:
        axp.set_ylim(bottom=0)
    else:  # scaled to what was observed (and the limit): a muted line may leave the panel
        axp.set_ylim(0, 1.15 * max(tops) / pdiv)
    axp.set_ylabel(f"{label} ({puname})")
    if leak and proj is not None:
        title = "7-day projection"
    elif leak:
        title = f"7-day projection: {projection_note(v)}"
    else:
        title = f"7-day projection: none, the verdict is {v.get('verdict')}"
    axp.set_title(title, fontsize=11, loc="left", color="#212121" if leak and proj is not None else "#757575")
    return _finish(fig, [ax, axp], path, top_in=1.05)


def metric_panels_chart(path: Path, panels: list[tuple[str, SeriesChartData]], t0_s: float,
                        title: str, colours: tuple[str, ...] = ("#1565c0", "#00838f", "#6a1b9a")) -> Path:
    """One subplot per metric (CPU; threads and fds; GPU; the load generator)."""
    plt = _plt()
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 3.2 * len(panels) + 0.8), squeeze=False)
    axes = [a[0] for a in axes]
    for ax, (label, data), colour in zip(axes, panels, colours * 3, strict=False):
        _series_axes(ax, data, t0_s, label, colour=colour)
        ax.set_title(verdict_title(label, data.verdict), loc="left", fontsize=11,
                     color=VERDICT_COLOURS.get(data.verdict.get("verdict"), "#212121"))
    fig.suptitle(title, fontsize=13, x=0.01, ha="left")
    return _finish(fig, axes, path)


def latency_chart(path: Path, overall, t0_s: float, per_pattern=None, verdicts: dict | None = None) -> Path:
    """TTFT, inter-token latency and end-to-end time, p50/p95/p99 per minute ("all" rows);
    per-pattern p95 as thin dashed lines."""
    plt = _plt()
    groups = [("Time to first token", "ttft"), ("Inter-token latency", "itl"), ("End-to-end time", "e2e")]
    groups = [g for g in groups if any(overall.get(f"{g[1]}_{p}_ms") is not None
                                       and overall[f"{g[1]}_{p}_ms"].notna().any() for p in ("p50", "p95", "p99"))]
    if not groups:
        groups = [("End-to-end time", "e2e")]
    fig, axes = plt.subplots(len(groups), 1, figsize=(12, 3.0 * len(groups) + 0.8), squeeze=False)
    axes = [a[0] for a in axes]
    x = _hours(overall["timestamp"], t0_s)
    styles = {"p50": ("#2e7d32", 1.4), "p95": ("#ef6c00", 1.6), "p99": ("#c62828", 1.2)}
    for ax, (label, key) in zip(axes, groups, strict=True):
        cols = [f"{key}_{p}_ms" for p in ("p50", "p95", "p99") if f"{key}_{p}_ms" in overall]
        top = max([float(np.nanmax(overall[c])) for c in cols if overall[c].notna().any()] or [1.0])
        div, uname = human_scale(top, "ms")
        for col in cols:
            if overall[col].notna().any():
                p = col.split("_")[1]
                colour, lw = styles[p]
                ax.plot(x, overall[col] / div, color=colour, linewidth=lw, label=p)
        if per_pattern is not None and f"{key}_p95_ms" in per_pattern:
            for name, grp in per_pattern.groupby("pattern"):
                if grp[f"{key}_p95_ms"].notna().any():
                    ax.plot(_hours(grp["timestamp"], t0_s), grp[f"{key}_p95_ms"] / div, linewidth=0.7,
                            linestyle="--", alpha=0.6, label=f"{name} p95")
        v = (verdicts or {}).get(f"{key}_p95_ms")
        title = verdict_title(f"{label} p95", v) if v else label
        ax.set_title(title, loc="left", fontsize=11,
                     color=VERDICT_COLOURS.get((v or {}).get("verdict"), "#212121"))
        ax.set_ylabel(f"{label.split()[0]} ({uname})")
        ax.set_ylim(bottom=0)
    fig.suptitle("Latency per minute", fontsize=13, x=0.01, ha="left")
    return _finish(fig, axes, path)


def throughput_chart(path: Path, overall, t0_s: float) -> Path:
    """Requests per minute with the number of users, and output tokens per second."""
    plt = _plt()
    has_tokens = "tokens_per_s" in overall and overall["tokens_per_s"].notna().any()
    fig, axes = plt.subplots(2 if has_tokens else 1, 1, figsize=(12, 6.5 if has_tokens else 4), squeeze=False)
    axes = [a[0] for a in axes]
    x = _hours(overall["timestamp"], t0_s)
    ax = axes[0]
    ax.plot(x, overall["requests"], color="#1565c0", linewidth=1.4, label="requests / min")
    ax.set_ylabel("requests / min")
    ax.set_ylim(bottom=0)
    if "users" in overall and overall["users"].notna().any():
        ax2 = ax.twinx()
        ax2.plot(x, overall["users"], color="#757575", linewidth=1.2, linestyle="--", label="users")
        ax2.set_ylabel("users")
        ax2.set_ylim(bottom=0)
        ax2.legend(loc="upper right", fontsize=8)
    ax.set_title("Throughput and users", loc="left", fontsize=11)
    if has_tokens:
        axes[1].plot(x, overall["tokens_per_s"], color="#00838f", linewidth=1.4, label="output tokens / s")
        axes[1].set_ylabel("tokens / s")
        axes[1].set_ylim(bottom=0)
        axes[1].set_title("Token throughput", loc="left", fontsize=11)
    return _finish(fig, axes, path)


def errors_chart(path: Path, overall, t0_s: float, classes: tuple[str, ...]) -> Path:
    """Failures per minute stacked by class, and the error rate in percent."""
    plt = _plt()
    fig, (ax, ax_rate) = plt.subplots(2, 1, figsize=(12, 6.5), height_ratios=[3, 2])
    x = _hours(overall["timestamp"], t0_s)
    stacks, labels = [], []
    for cls in classes:
        col = f"fail_{cls}"
        if col in overall and overall[col].fillna(0).sum() > 0:
            stacks.append(overall[col].fillna(0).to_numpy(dtype=float))
            labels.append(cls)
    total = float(overall["failures"].fillna(0).sum()) if "failures" in overall else 0.0
    if stacks:
        ax.stackplot(x, *stacks, labels=labels, alpha=0.85)
    elif total > 0:
        ax.plot(x, overall["failures"].fillna(0), color=VERDICT_COLOURS["leak"], label="failures")
    else:
        ax.text(0.5, 0.5, "no failures", transform=ax.transAxes, ha="center", va="center",
                fontsize=14, color=VERDICT_COLOURS["ok"])
    ax.set_ylabel("failures / min")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Errors by class ({int(total)} failures in total)", loc="left", fontsize=11)
    req = overall["requests"].to_numpy(dtype=float)
    fail = overall["failures"].fillna(0).to_numpy(dtype=float) if "failures" in overall else np.zeros_like(req)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(req > 0, 100.0 * fail / req, np.nan)
    ax_rate.plot(x, rate, color=VERDICT_COLOURS["leak"], linewidth=1.3, label="error rate")
    ax_rate.set_ylabel("error rate (%)")
    ax_rate.set_ylim(bottom=0)
    return _finish(fig, [ax, ax_rate], path)


SERVER_COLOURS = {"growing": "#c62828", "saturated": "#c62828", "stable": "#2e7d32", "ok": "#2e7d32",
                  "inconclusive": "#b26a00"}


def _band_or_line(ax, x, y, colour: str, label: str, lw: float = 1.3) -> None:
    """A long series as a min/max band per pixel column, a short one as a line."""
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(y)
    x, y = np.asarray(x, dtype=float)[keep], y[keep]
    if len(x) > 2 * _BAND_COLUMNS:
        bx, lo, hi = minmax_band(x, y)
        ax.fill_between(bx, lo, hi, color=colour, alpha=0.35, linewidth=0)
        ax.plot(bx, hi, color=colour, linewidth=0.8, label=label)
    else:
        ax.plot(x, y, color=colour, linewidth=lw, label=label)


def server_chart(path: Path, server_df, t0_s: float, server: dict, overall=None) -> Path:
    """The server's own telemetry beside the client's TTFT, on one time axis: TTFT p95 per minute
    (when the run has llm_timeseries.csv), KV-cache use with its saturation line, running and
    waiting requests, and preemptions since the start."""
    plt = _plt()
    x = _hours(server_df["timestamp"], t0_s)
    has = {c: c in server_df and server_df[c].notna().any()
           for c in ("kv_cache_usage_percent", "requests_running", "requests_waiting", "preemptions_total")}
    ttft = overall is not None and "ttft_p95_ms" in overall and overall["ttft_p95_ms"].notna().any()
    panels = [p for p, on in (("ttft", ttft), ("kv", has["kv_cache_usage_percent"]),
                              ("queue", has["requests_running"] or has["requests_waiting"]),
                              ("preempt", has["preemptions_total"])) if on]
    if not panels:
        panels = ["queue"]
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 2.6 * len(panels) + 0.8), squeeze=False, sharex=True)
    axes = [a[0] for a in axes]
    for ax, panel in zip(axes, panels, strict=True):
        if panel == "ttft":
            ax.plot(_hours(overall["timestamp"], t0_s), overall["ttft_p95_ms"], color="#ef6c00", linewidth=1.5,
                    label="TTFT p95 (client)")
            ax.set_ylabel("ms")
            ax.set_title("Time to first token p95 per minute (client side)", loc="left", fontsize=11)
        elif panel == "kv":
            kv = server.get("kv_cache") or {}
            _band_or_line(ax, x, server_df["kv_cache_usage_percent"], "#6a1b9a", "KV cache used")
            ax.axhline(kv.get("full_percent") or 95.0, color="#c62828", linestyle=":", linewidth=1,
                       label="saturation line")
            ax.set_ylim(0, 105)
            ax.set_ylabel("%")
            share = kv.get("share_full")
            title = f"KV-cache use: {str(kv.get('verdict', 'n/a')).upper()}"
            if share is not None:
                title += f", {100 * share:.0f} % of the run at or above {format_sig(kv.get('full_percent'))} %"
            ax.set_title(title, loc="left", fontsize=11, color=SERVER_COLOURS.get(kv.get("verdict"), "#212121"))
        elif panel == "queue":
            q = server.get("queue") or {}
            if has["requests_running"]:
                _band_or_line(ax, x, server_df["requests_running"], "#1565c0", "running")
            if has["requests_waiting"]:
                _band_or_line(ax, x, server_df["requests_waiting"], "#c62828", "waiting")
            ax.set_ylim(bottom=0)
            ax.set_ylabel("requests")
            ax.set_title(f"Requests in the server: queue {str(q.get('verdict', 'n/a')).upper()}", loc="left",
                         fontsize=11, color=SERVER_COLOURS.get(q.get("verdict"), "#212121"))
        else:
            total = np.asarray(server_df["preemptions_total"], dtype=float)
            first = total[np.isfinite(total)][0] if np.isfinite(total).any() else 0.0
            _band_or_line(ax, x, total - first, "#00838f", "preempted since start")
            ax.set_ylim(bottom=0)
            ax.set_ylabel("requests")
            ax.set_title(f"Preemptions: {format_sig((server.get('preemptions') or {}).get('total') or 0)}",
                         loc="left", fontsize=11)
    fig.suptitle("Server telemetry (the target's /metrics)", fontsize=13, x=0.01, ha="left")
    return _finish(fig, axes, path)
