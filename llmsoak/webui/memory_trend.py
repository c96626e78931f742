"""The target's memory trend for the Soak page, computed with the analysis core on the sampler's data.

``memory_trend(columns, rows, limit_bytes)`` turns the sampler rows the web UI holds into the
analysis core's per-metric verdict (slope per hour, growth % per hour, 7-day projection, hours to
limit) plus the few series the chart draws (lower envelope and fitted trend of the current regime),
thinned for a browser, and the trend cards' words. The statistics live in ``llmsoak.analysis.verdict``
and the words in ``llmsoak.analysis.wording``; nothing is re-derived here.
"""

from __future__ import annotations

import math
import time
from typing import Any

from llmsoak.analysis.wording import trend_cards

MIN_ROWS = 10
"""Fewer samples than this: no trend yet (the analysis would say inconclusive anyway)."""
MAX_CHART_POINTS = 600


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars → float, NaN/inf → None, tuples → lists (recursively)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _pairs(xs, ys, max_points: int = MAX_CHART_POINTS) -> list[list[float]]:
    """Zip two array-likes into ``[[t, y], ...]`` thinned to ``max_points``, dropping NaN."""
    try:
        xs, ys = list(xs), list(ys)
    except TypeError:
        return []
    points = [[float(x), float(y)] for x, y in zip(xs, ys, strict=False)
              if x is not None and y is not None and math.isfinite(float(x)) and math.isfinite(float(y))]
    if len(points) > max_points:
        step = -(-len(points) // max_points)
        points = points[::step] + [points[-1]]
    return points


def _series(verdict, prefix: str) -> list[list[float]]:
    """``[[t, y], ...]`` from the verdict's ``<prefix>_t`` / ``<prefix>_y`` arrays (Unix s, metric unit)."""
    return _pairs(getattr(verdict, f"{prefix}_t", ()), getattr(verdict, f"{prefix}_y", ()))


def _envelope(verdict) -> list[list[float]]:
    """The line the trend is fitted on (the smoothed lower envelope), as ``[[t, y], ...]``."""
    t = getattr(verdict, "envelope_t", ())
    y = getattr(verdict, "fitted_y", None)
    if y is None or len(y) != len(t):
        y = getattr(verdict, "envelope_y", ())
    return _pairs(t, y)


def memory_trend(columns: tuple[str, ...], rows: list[tuple], *, limit_bytes: float | None = None,
                 metric: str = "rss_bytes") -> dict:
    """The analysis core's verdict for ``metric`` over ``rows`` as a JSON-safe dict.

    Returns ``{"status": "ok", "verdict": {...MetricVerdict.to_json()...}, "cards": [[label, value,
    css class, note], ...], "envelope": [[t, y]], "trend": [[t, y]], "elapsed_s": float, "points": n}``
    or ``{"status": "waiting"|"unavailable", "reason": "..."}`` when there is not enough data or no
    analysis core. ``cards`` are the Soak page's trend cards (``wording.trend_cards``).
    """
    if metric not in columns or "timestamp" not in columns:
        return {"status": "waiting", "reason": f"no {metric} samples from the sampler yet"}
    usable = [r for r in rows if r[columns.index(metric)] is not None]
    if len(usable) < MIN_ROWS:
        return {"status": "waiting", "reason": f"{len(usable)} samples so far; a trend needs {MIN_ROWS}"}
    try:
        import pandas as pd

        # numpy and pandas load with the first trend, not when the web UI starts
        from llmsoak.analysis.verdict import analyze_metric
    except ImportError as err:
        return {"status": "unavailable", "reason": f"analysis core not available: {err}"}
    started = time.perf_counter()
    df = pd.DataFrame(usable, columns=list(columns)).apply(pd.to_numeric, errors="coerce")
    df = df.sort_values("timestamp").drop_duplicates("timestamp").reset_index(drop=True)
    try:
        verdict = analyze_metric(df, metric=metric, limit=limit_bytes)
    except Exception as err:  # noqa: BLE001 - a live page must keep drawing whatever the analysis says
        return {"status": "unavailable", "reason": f"trend analysis failed: {type(err).__name__}: {err}"}
    verdict_json = _clean(verdict.to_json())
    out = {
        "status": "ok",
        "verdict": verdict_json,
        # The cards' words come from the analysis (wording.py), so the page follows its rules.
        "cards": trend_cards(verdict_json),
        "envelope": _envelope(verdict),
        "trend": _series(verdict, "trend"),
        "points": len(df),
        "elapsed_s": round(time.perf_counter() - started, 4),
    }
    return out
