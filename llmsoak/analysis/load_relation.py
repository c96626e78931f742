"""Does memory growth follow the load? Bytes per request and per session, busy vs quiet growth.

The memory series is reduced to its lower envelope per window of a minute or more (the minimum:
memory after garbage collection) within each run of the target (restarts split it). The envelope
is then fitted, per run, as ``level = a_run + b * requests_served_so_far + c * hours``:

- ``b`` is the growth per request (``bytes_per_request``), ``c`` the growth per hour that the
  load does not explain (timers, background tasks, fragmentation);
- with busy and quiet periods the two columns are not collinear and the fit separates them; under
  a steady load they are, and the data cannot tell (``follows_load`` None);
- standard errors are inflated for autocorrelated residuals ((1 + r) / (1 - r)), and a side
  needs t > 3 to count.

``follows_load`` is True when the per-request term is significant and carries at least three
quarters of the growth, False when the time term is significant and carries half or more.
``busy_growth_per_hour`` and ``idle_growth_per_hour`` are the fitted rates at the busy and quiet
request rates of the run. ``bytes_per_session`` divides the growth by the chat sessions closed
(Locust's ``DELETE /chat/{id}`` count) when there were any.
"""

from __future__ import annotations

from llmsoak.analysis.segments import typical_interval_s
from llmsoak.formatting import format_bytes_sig, format_sig


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


def _rolling_min_with_time(y, t, k: int):
    """Centered rolling minimum of ``y`` over ``k`` points and the ``t`` at which each minimum lies."""
    import numpy as np

    n = len(y)
    if n < k:
        return y.astype(float), t.astype(float)
    half = k // 2
    padded = np.concatenate([np.full(half, np.inf), y.astype(float), np.full(half, np.inf)])
    idx = np.lib.stride_tricks.sliding_window_view(padded, k).argmin(axis=1) + np.arange(n) - half
    return y[idx].astype(float), t[idx].astype(float)


def _fit(y, cum_req, t_h, seg):
    """Within-run OLS of y on (cum_req, t_h); (b, c, se_b, se_c, collinear)."""
    import numpy as np
    import pandas as pd

    def demean(x):
        return x - pd.Series(x).groupby(seg).transform("mean").to_numpy()

    yd, xd, td = demean(y), demean(cum_req), demean(t_h)
    X = np.column_stack([xd, td])
    if len(y) < 8 or np.std(xd) == 0 or np.std(td) == 0:
        return None
    corr = abs(float(np.corrcoef(xd, td)[0, 1]))
    coef, *_ = np.linalg.lstsq(X, yd, rcond=None)
    resid = yd - X @ coef
    dof = max(len(y) - 2 - len(np.unique(seg)), 1)
    sigma2 = float(resid @ resid) / dof
    r = float(np.corrcoef(resid[:-1], resid[1:])[0, 1]) if len(resid) > 3 and np.std(resid) > 0 else 0.0
    r = min(max(r, 0.0), 0.98)
    cov = np.linalg.pinv(X.T @ X) * sigma2 * (1 + r) / (1 - r)
    return float(coef[0]), float(coef[1]), float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1])), corr > 0.9995


def relate_growth_to_load(samples, metric: str, load_df=None, totals: dict | None = None) -> dict:
    """Relate ``metric``'s envelope growth in ``samples`` (timestamp + metric [+ pid/create_time])
    to per-minute ``load_df`` (timestamp, requests) and Locust ``totals`` (requests, sessions).

    Returns a JSON-ready dict; values are None where the data cannot say.
    """
    import numpy as np
    import pandas as pd

    totals = totals or {}
    out: dict = {"metric": metric, "requests_total": totals.get("requests"),
                 "sessions_total": totals.get("sessions"), "window_s": None, "windows": 0,
                 "growth": None, "bytes_per_request": None, "bytes_per_session": None,
                 "growth_per_hour_without_load": None, "load_share": None,
                 "busy_growth_per_hour": None, "idle_growth_per_hour": None,
                 "follows_load": None, "summary": ""}
    df = samples[["timestamp", metric]].copy()
    df["segment"] = segment_ids(samples)
    df = df.dropna(subset=[metric])
    if len(df) < 2:
        out["summary"] = f"Not enough {metric} samples to relate growth to load."
        return out
    t = df["timestamp"].to_numpy(dtype=float)
    t0, t1 = float(t[0]), float(t[-1])
    window_s = max(60.0, 3.0 * typical_interval_s(t), (t1 - t0) / 2000.0)
    out["window_s"] = window_s
    df["window"] = ((df["timestamp"] - t0) // window_s).astype(np.int64)
    # Lower envelope: the minimum per window and *when* it occurred, then a rolling minimum over
    # 5 windows per run (spans a GC cycle of a few minutes, as the verdict does). Each point keeps
    # the time of the sample it came from, so a rising envelope is not paired with later load.
    at_min = df.loc[df.groupby(["segment", "window"], sort=True)[metric].idxmin()]
    env = pd.DataFrame({"segment": at_min["segment"].to_numpy(), "y": at_min[metric].to_numpy(dtype=float),
                        "t": at_min["timestamp"].to_numpy(dtype=float)})
    parts = [_rolling_min_with_time(g["y"].to_numpy(), g["t"].to_numpy(), 5) for _, g in env.groupby("segment", sort=True)]
    env["y"] = np.concatenate([p[0] for p in parts])
    env["t"] = np.concatenate([p[1] for p in parts])
    first = env.groupby("segment")["y"].transform("first")
    last = env.groupby("segment")["y"].transform("last")
    growth = float((last - first)[~env["segment"].duplicated()].sum())
    out["growth"], out["windows"] = growth, int(len(env))

    have_series = load_df is not None and len(load_df) and "requests" in load_df
    if have_series:
        ld = load_df[["timestamp", "requests"]].dropna().sort_values("timestamp")
        ld = ld[(ld["timestamp"] >= t0 - 60) & (ld["timestamp"] <= t1)]
        have_series = len(ld) >= 4
    if not have_series:
        work = out["requests_total"]
        if work:
            out["bytes_per_request"] = growth / work
        if out["sessions_total"]:
            out["bytes_per_session"] = growth / out["sessions_total"]
        out["summary"] = _summary(out, growth) if work else ""
        out["summary"] += (" " if out["summary"] else "") + (
            "No per-minute request counts (llm_timeseries.csv or Locust history): "
            "cannot tell whether growth follows load.")
        return out
    # Requests served by the middle of each envelope window (a minute's requests spread evenly).
    minute_end = ld["timestamp"].to_numpy(dtype=float) + 60.0
    cum = np.cumsum(ld["requests"].to_numpy(dtype=float))
    cum_at = np.interp(env["t"].to_numpy(), np.concatenate([[minute_end[0] - 60.0], minute_end]),
                       np.concatenate([[0.0], cum]))
    if out["requests_total"] is None:
        out["requests_total"] = float(cum[-1])
    t_h = (env["t"].to_numpy() - t0) / 3600.0
    seg = env["segment"].to_numpy()
    fit = _fit(env["y"].to_numpy(dtype=float), cum_at, t_h, seg)
    if out["sessions_total"]:
        out["bytes_per_session"] = growth / out["sessions_total"]
    if fit is None:
        out["bytes_per_request"] = growth / cum[-1] if cum[-1] > 0 else None
        out["summary"] = _summary(out, growth)
        return out
    b, c, se_b, se_c, collinear = fit
    hours = (t1 - t0) / 3600.0
    served = float(np.ptp(cum_at)) if len(cum_at) else 0.0
    load_part, time_part = b * served, c * hours
    if not collinear:  # the fitted growth is steadier than first-to-last envelope values
        growth = load_part + time_part
        out["growth"] = growth
        if out["sessions_total"]:
            out["bytes_per_session"] = growth / out["sessions_total"]
    rates = ld["requests"].to_numpy(dtype=float) * 60.0  # requests per hour, per minute row
    top = float(np.percentile(rates, 95)) if len(rates) else 0.0
    busy, quiet = rates[rates >= 0.5 * top], rates[rates <= max(0.05 * top, np.percentile(rates, 25))]
    if collinear:
        out["bytes_per_request"] = growth / served if served > 0 else None
    else:
        out["bytes_per_request"] = b
        out["growth_per_hour_without_load"] = c
        total_pos = max(load_part, 0.0) + max(time_part, 0.0)
        out["load_share"] = max(load_part, 0.0) / total_pos if total_pos > 0 else None
        if len(busy) and len(quiet):
            out["busy_growth_per_hour"] = c + b * float(busy.mean())
            out["idle_growth_per_hour"] = c + b * float(quiet.mean())
        if growth > 0 and total_pos > 0:
            if b > 3 * se_b and load_part >= 0.75 * total_pos:
                out["follows_load"] = True
            elif c > 3 * se_c and time_part >= 0.5 * total_pos:
                out["follows_load"] = False
    out["summary"] = _summary(out, growth)
    return out


def _summary(out: dict, growth: float) -> str:
    metric = out["metric"]
    fmt = format_bytes_sig if metric.endswith("_bytes") else format_sig
    parts = []
    if out["bytes_per_request"] is not None and out["bytes_per_request"] > 0 and growth > 0:
        parts.append(f"{fmt(out['bytes_per_request'])} per request")
    if out["bytes_per_session"] is not None and growth > 0:
        parts.append(f"{fmt(out['bytes_per_session'])} per session")
    head = f"{metric} grew {fmt(growth)} in total" + (f" ({', '.join(parts)})" if parts else "")
    busy, idle = out["busy_growth_per_hour"], out["idle_growth_per_hour"]
    rates = f" ({fmt(busy)}/h at busy load vs {fmt(idle)}/h when quiet)" if busy is not None and idle is not None else ""
    if out["follows_load"] is True:
        tail = (f"growth follows load{rates}: look at per-request state (caches, session history, buffers)")
    elif out["follows_load"] is False:
        tail = (f"growth does not follow load{rates}: it goes on without traffic, so look at "
                "time-driven state (timers, background tasks, fragmentation)")
    elif growth <= 0:
        tail = "no net growth to attribute"
    elif out["load_share"] is None:
        tail = "the load was too steady to tell whether growth follows it (vary it, e.g. a step or diurnal shape)"
    else:
        tail = f"neither requests nor time alone explain the growth clearly{rates}"
    return f"{head}; {tail}."
