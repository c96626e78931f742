"""Does memory growth follow the load? Bytes per request and per session, busy vs idle growth.

The memory series is cut into windows of equal length; in each window the lower envelope (the
minimum, i.e. memory after garbage collection) is taken, and the envelope's increment from one
window to the next is set against the requests served in that window. Increments across a restart
of the target are dropped. Three views come out:

- ``bytes_per_request`` (and ``bytes_per_session`` when the run closed chat sessions): envelope
  growth divided by the work done in the same windows;
- ``correlation``: Spearman's rank correlation of increments against requests per window;
- ``busy_growth_per_hour`` vs ``idle_growth_per_hour``: growth rate in the busier half of the
  windows against the quieter half (or against windows with no traffic at all).

``follows_load`` is True when growth happens mostly while busy, False when the quiet windows grow
about as fast (time-driven growth: caches, timers, fragmentation), None when the load hardly
varied and the data cannot tell.
"""

from __future__ import annotations

import math


def _spearman(x, y) -> float | None:
    import pandas as pd

    if len(x) < 6:
        return None
    rx, ry = pd.Series(x).rank(), pd.Series(y).rank()
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(rx.corr(ry))


def segment_ids(df):
    """Integer segment id per row: a new segment at every change of ``pid`` or ``create_time``."""
    import numpy as np

    seg = np.zeros(len(df), dtype=np.int64)
    for col in ("pid", "create_time"):
        if col in df.columns:
            v = df[col].to_numpy(dtype=float)
            prev = v[:-1]
            cur = v[1:]
            changed = (cur != prev) & ~(np.isnan(cur) & np.isnan(prev)) & ~np.isnan(cur) & ~np.isnan(prev)
            seg[1:] += changed
    return np.cumsum(seg)


def relate_growth_to_load(samples, metric: str, load_df=None, totals: dict | None = None) -> dict:
    """Relate ``metric``'s envelope growth in ``samples`` (timestamp + metric [+ pid/create_time])
    to per-minute ``load_df`` (timestamp, requests[, users]) and Locust ``totals``.

    Returns a JSON-ready dict; values are None where the data cannot say.
    """
    import numpy as np
    import pandas as pd

    totals = totals or {}
    out: dict = {"metric": metric, "requests_total": totals.get("requests"),
                 "sessions_total": totals.get("sessions"), "window_s": None, "windows": 0,
                 "growth": None, "bytes_per_request": None, "bytes_per_session": None,
                 "correlation": None, "busy_growth_per_hour": None, "idle_growth_per_hour": None,
                 "follows_load": None, "summary": ""}
    df = samples[["timestamp", metric]].copy()
    df["segment"] = segment_ids(samples)
    df = df.dropna(subset=[metric])
    if len(df) < 2:
        out["summary"] = f"Not enough {metric} samples to relate growth to load."
        return out
    t0, t1 = float(df["timestamp"].iloc[0]), float(df["timestamp"].iloc[-1])
    duration_s = max(t1 - t0, 1.0)
    window_s = max(60.0, 60.0 * math.ceil(duration_s / 60.0 / 60.0))  # at most ~60 windows
    out["window_s"] = window_s
    df["window"] = ((df["timestamp"] - t0) // window_s).astype(np.int64)
    env = df.groupby(["segment", "window"], sort=True)[metric].min().reset_index()
    same_seg = env["segment"].diff() == 0
    env["increment"] = env[metric].diff().where(same_seg)
    inc = env.dropna(subset=["increment"])
    growth = float(inc["increment"].sum()) if len(inc) else 0.0
    out["growth"] = growth

    requests_in_windows = None
    if load_df is not None and len(load_df) and "requests" in load_df:
        ld = load_df[["timestamp", "requests"]].dropna()
        ld = ld[(ld["timestamp"] >= t0 - 60) & (ld["timestamp"] <= t1)]
        if len(ld):
            w = ((ld["timestamp"].clip(lower=t0) - t0) // window_s).astype(np.int64)
            per_window = ld.groupby(w)["requests"].sum()
            inc = inc.assign(requests=inc["window"].map(per_window).fillna(0.0).to_numpy())
            requests_in_windows = float(inc["requests"].sum())
            if out["requests_total"] is None:
                out["requests_total"] = float(ld["requests"].sum())
    out["windows"] = int(len(inc))

    work = requests_in_windows if requests_in_windows else out["requests_total"]
    if work and work > 0:
        out["bytes_per_request"] = growth / work
    if out["sessions_total"]:
        out["bytes_per_session"] = growth / out["sessions_total"]

    if requests_in_windows is None or len(inc) < 4:
        out["summary"] = ("No per-window request counts (llm_timeseries.csv or Locust history): "
                          "cannot tell whether growth follows load.")
        return out
    req = inc["requests"].to_numpy(dtype=float)
    incr = inc["increment"].to_numpy(dtype=float)
    out["correlation"] = _spearman(incr, req)
    hours_per_window = window_s / 3600.0
    top = req.max()
    idle = req <= 0.05 * top if top > 0 else np.ones_like(req, dtype=bool)
    if idle.sum() < 2 or (~idle).sum() < 2:  # no quiet spells: split at the median instead
        idle = req <= np.median(req)
        if idle.all() or not idle.any():
            idle = np.zeros_like(req, dtype=bool)
    if idle.any() and (~idle).any():
        busy_rate = float(incr[~idle].sum() / ((~idle).sum() * hours_per_window))
        idle_rate = float(incr[idle].sum() / (idle.sum() * hours_per_window))
        out["busy_growth_per_hour"], out["idle_growth_per_hour"] = busy_rate, idle_rate
    spread = float(pd.Series(req).std() / req.mean()) if req.mean() > 0 else 0.0
    out["follows_load"] = _decide(out, growth, spread)
    out["summary"] = _summary(out, growth)
    return out


def _decide(out: dict, growth: float, load_spread: float) -> bool | None:
    busy, idle, rho = out["busy_growth_per_hour"], out["idle_growth_per_hour"], out["correlation"]
    if growth <= 0 or busy is None or load_spread < 0.2:
        return None  # no growth, or the load never varied enough to separate the two
    if busy > 0 and idle <= 0.25 * busy and (rho is None or rho > 0.2):
        return True
    if idle >= 0.5 * max(busy, 0.0) and (rho is None or rho < 0.5):
        return False
    return None


def _summary(out: dict, growth: float) -> str:
    from llmsoak.units import format_bytes

    metric = out["metric"]
    is_bytes = metric.endswith("_bytes")
    fmt = format_bytes if is_bytes else (lambda v: f"{v:.3g}")
    parts = []
    if out["bytes_per_request"] is not None and growth > 0:
        parts.append(f"{fmt(out['bytes_per_request'])} per request")
    if out["bytes_per_session"] is not None and growth > 0:
        parts.append(f"{fmt(out['bytes_per_session'])} per session")
    head = f"{metric} grew {fmt(growth)} over the analysed windows" + (f" ({', '.join(parts)})" if parts else "")
    if out["follows_load"] is True:
        tail = ("growth follows load: it happens while requests are served "
                f"({fmt(out['busy_growth_per_hour'])}/h busy vs {fmt(out['idle_growth_per_hour'])}/h quiet), "
                "so look at per-request state (caches, session history, buffers)")
    elif out["follows_load"] is False:
        tail = ("growth does not follow load: quiet periods grow about as fast as busy ones "
                f"({fmt(out['idle_growth_per_hour'])}/h vs {fmt(out['busy_growth_per_hour'])}/h), "
                "so look at time-driven state (timers, background tasks, fragmentation)")
    elif growth <= 0:
        tail = "no net growth to attribute"
    else:
        tail = "the load varied too little to tell whether growth follows it"
    return f"{head}; {tail}."
