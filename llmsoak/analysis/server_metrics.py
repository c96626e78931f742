"""The server's own telemetry (``samples/server_metrics.csv``): is its queue growing, is its KV
cache saturated, did it preempt requests?

Pure functions on a frame with ``timestamp`` and the SERVER_METRICS_COLUMNS; the sentences are in
:mod:`llmsoak.analysis.wording`. Into verdict.json as ``server`` (docs/formats.md): these
verdicts describe capacity, not leaks, so they never change the overall verdict or the exit code.

Queue growth: waiting requests are a bounded, strongly autocorrelated count, so no trend test runs
on the raw samples (see docs/leak-statistics.md). The series is cut into ``QUEUE_WINDOWS`` equal
windows; it is ``growing`` when Kendall's tau of the window means against time is significant
(p < ``QUEUE_P_VALUE``) *and* the last quarter waits materially more than the first
(``QUEUE_MIN_RISE`` requests, and half as much again as before). KV-cache saturation: the share of
samples at or above ``KV_FULL_PERCENT``; ``saturated`` when it is ``KV_SATURATED_SHARE`` or more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmsoak.formats import SERVER_METRICS_COLUMNS

MIN_ROWS = 20
"""Fewer scrapes than this: every server verdict is ``inconclusive``."""
QUEUE_WINDOWS = 20
QUEUE_P_VALUE = 0.01
QUEUE_MIN_RISE = 1.0
"""Requests: a rise smaller than one waiting request is not growth, whatever the test says."""
KV_FULL_PERCENT = 95.0
KV_SATURATED_SHARE = 0.2
"""Sustained saturation: at least a fifth of the run at or above KV_FULL_PERCENT."""


@dataclass
class ServerMetrics:
    """The server telemetry of a run: the frame and its source file."""

    source: Path
    df: object  # pandas.DataFrame, columns SERVER_METRICS_COLUMNS (floats, NaN = not exported)

    def has(self, column: str) -> bool:
        return column in self.df and bool(self.df[column].notna().any())


def read_server_metrics(path: str | Path) -> ServerMetrics | None:
    """The file as a frame sorted by time (no rows: the server exposed none of the gauges), or
    None when it cannot be read."""
    import pandas as pd  # only analyses read it; keeps `import llmsoak.analysis` light

    path = Path(path)
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        df = pd.DataFrame({"timestamp": []})
    except (OSError, ValueError):
        return None
    if "timestamp" not in df:
        return None
    for column in SERVER_METRICS_COLUMNS:
        df[column] = pd.to_numeric(df[column], errors="coerce") if column in df else np.nan
    df = df.dropna(subset=["timestamp"]).sort_values("timestamp").reset_index(drop=True)
    return ServerMetrics(source=path, df=df)


def _finite(values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr[np.isfinite(arr)]


def queue_growth(t_s, waiting) -> dict:
    """Verdict on ``requests_waiting`` over time: ``growing``, ``stable`` or ``inconclusive``.

    Returns ``{"verdict", "samples", "first_quarter_mean", "last_quarter_mean", "max",
    "slope_per_hour", "tau", "p_value"}`` (None where not computed)."""
    from scipy.stats import kendalltau  # only analyses need scipy

    t = np.asarray(t_s, dtype=float)
    w = np.asarray(waiting, dtype=float)
    keep = np.isfinite(t) & np.isfinite(w)
    t, w = t[keep], w[keep]
    out = {"verdict": "inconclusive", "samples": int(len(w)), "first_quarter_mean": None,
           "last_quarter_mean": None, "max": float(w.max()) if len(w) else None,
           "slope_per_hour": None, "tau": None, "p_value": None}
    if len(w) < MIN_ROWS or t[-1] <= t[0]:
        return out
    quarter = max(1, len(w) // 4)
    first, last = float(w[:quarter].mean()), float(w[-quarter:].mean())
    windows = np.array_split(np.arange(len(w)), min(QUEUE_WINDOWS, len(w)))
    wt = np.array([t[i].mean() for i in windows])
    wm = np.array([w[i].mean() for i in windows])
    slope = float(np.polyfit((wt - wt[0]) / 3600.0, wm, 1)[0]) if len(wm) >= 2 else None
    if np.ptp(wm) == 0:
        tau, p_value = 0.0, 1.0
    else:
        tau, p_value = (float(x) for x in kendalltau(wt, wm))
        if math.isnan(tau):
            tau, p_value = 0.0, 1.0
    rise = last - first
    growing = tau > 0 and p_value < QUEUE_P_VALUE and rise >= max(QUEUE_MIN_RISE, 0.5 * first)
    out.update(verdict="growing" if growing else "stable", first_quarter_mean=first, last_quarter_mean=last,
               slope_per_hour=slope, tau=tau, p_value=p_value)
    return out


def kv_saturation(kv_percent) -> dict:
    """Verdict on ``kv_cache_usage_percent``: ``saturated``, ``ok`` or ``inconclusive``.

    Returns ``{"verdict", "samples", "share_full", "full_percent", "p95", "max", "mean"}``."""
    kv = _finite(kv_percent)
    out = {"verdict": "inconclusive", "samples": int(len(kv)), "share_full": None,
           "full_percent": KV_FULL_PERCENT, "p95": None, "max": None, "mean": None}
    if not len(kv):
        return out
    share = float((kv >= KV_FULL_PERCENT).mean())
    out.update(share_full=share, p95=float(np.percentile(kv, 95)), max=float(kv.max()), mean=float(kv.mean()))
    if len(kv) >= MIN_ROWS:
        out["verdict"] = "saturated" if share >= KV_SATURATED_SHARE else "ok"
    return out


def counter_increase(values) -> float | None:
    """How much a Prometheus counter rose over the run, restarts (drops to a lower value) counted
    as starting again from 0; None without values."""
    v = _finite(values)
    if not len(v):
        return None
    steps = np.diff(v)
    return float(np.where(steps >= 0, steps, v[1:]).sum())


def analyze_server(metrics: ServerMetrics) -> dict:
    """The ``server`` object of verdict.json (figures, verdicts and one reason each)."""
    from llmsoak.analysis import wording  # wording imports nothing of ours back

    df = metrics.df
    t = df["timestamp"].to_numpy(dtype=float)
    exported = [c for c in SERVER_METRICS_COLUMNS[1:] if metrics.has(c)]
    out: dict = {"source": str(metrics.source), "samples": int(len(df)),
                 "duration_h": float((t[-1] - t[0]) / 3600.0) if len(t) else 0.0,
                 "exported": exported}
    if not len(df):
        out["reason"] = wording.server_reason(out)
        return out
    if metrics.has("requests_waiting"):
        queue = queue_growth(t, df["requests_waiting"])
        if metrics.has("requests_running"):
            queue["running_mean"] = float(_finite(df["requests_running"]).mean())
            queue["running_max"] = float(_finite(df["requests_running"]).max())
        queue["reason"] = wording.queue_reason(queue)
        out["queue"] = queue
    if metrics.has("kv_cache_usage_percent"):
        kv = kv_saturation(df["kv_cache_usage_percent"])
        kv["reason"] = wording.kv_cache_reason(kv)
        out["kv_cache"] = kv
    if metrics.has("preemptions_total"):
        total = counter_increase(df["preemptions_total"])
        out["preemptions"] = {"total": total, "reason": wording.preemptions_reason(total, out["duration_h"])}
    out["reason"] = wording.server_reason(out)
    return out
