"""Trend tests on the labelled corpus, beside analyze_metric, by run length (docs/leak-statistics.md).

Each baseline calls "leak" when its test finds an increasing trend at p < 0.05 (one-sided 0.025):

- "OLS": least-squares slope, normal-approximation p-value with independent errors assumed;
- "Mann-Kendall": the original test, no autocorrelation correction;
- "Newey-West OLS": least-squares slope with a heteroskedasticity- and autocorrelation-consistent
  standard error (Bartlett kernel, lag floor(4 (n/100)^(2/9)));
- "Hamed-Rao MK": the Mann-Kendall test with the Hamed-Rao variance correction for autocorrelation
  (pymannkendall, requirements-dev.txt);
- the last two again with llmsoak's practical threshold (the slope must also reach it), so that the
  table separates what the autocorrelation correction adds from what the rest of the method adds.

All on the raw series thinned to at most 1,000 points (Mann-Kendall is O(n^2)); llmsoak on the full
series. Scored as accuracy.py does: precision over every leak call (a call on a bounded series is a
false alarm), recall over the leaks the data can decide (``CorpusSeries.accepts``).
Run: .venv/bin/python benchmarks/baselines.py [--seeds 0] [--recordings tests/fixtures/recordings]
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
import time
import warnings

import numpy as np

from llmsoak.analysis.corpus import LENGTH_CLASSES, VERDICT_SETS, generate, recordings
from llmsoak.analysis.metric_specs import metric_spec
from llmsoak.analysis.verdict import analyze_metric, practical_threshold

MAX_POINTS = 1000


def _p_upper(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def ols_slope_se(t_h: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope per hour and its standard error assuming independent errors."""
    tc = t_h - t_h.mean()
    stt = float(np.dot(tc, tc))
    b = float(np.dot(tc, y - y.mean())) / stt
    r = y - y.mean() - b * tc
    return b, math.sqrt(float(np.dot(r, r)) / (len(y) - 2) / stt)


def newey_west_slope_se(t_h: np.ndarray, y: np.ndarray, lag: int | None = None) -> tuple[float, float]:
    """Least-squares slope per hour and its Newey-West (HAC, Bartlett kernel) standard error."""
    n = len(y)
    tc = t_h - t_h.mean()
    stt = float(np.dot(tc, tc))
    b = float(np.dot(tc, y - y.mean())) / stt
    u = (y - y.mean() - b * tc) * tc  # score of the slope
    lag = int(math.floor(4 * (n / 100) ** (2 / 9))) if lag is None else lag
    s = float(np.dot(u, u))
    for k in range(1, min(lag, n - 1) + 1):
        s += 2 * (1 - k / (lag + 1)) * float(np.dot(u[k:], u[:-k]))
    return b, math.sqrt(max(s, 0.0)) / stt


def mann_kendall_z(y: np.ndarray) -> float:
    """The original Mann-Kendall z (no ties correction, no autocorrelation correction)."""
    n = len(y)
    s = float(np.sum(np.triu(np.sign(y[None, :] - y[:, None]), 1)))
    var = n * (n - 1) * (2 * n + 5) / 18
    return (s - np.sign(s)) / math.sqrt(var)


def hamed_rao(y: np.ndarray) -> tuple[float, float]:
    """(one-sided p of an increase, Sen's slope per sample) from pymannkendall's Hamed-Rao test."""
    import pymannkendall

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a constant stretch has an undefined ACF
        r = pymannkendall.hamed_rao_modification_test(y)
    z = r.z if math.isfinite(r.z) else 0.0
    return _p_upper(z), float(r.slope)


def calls(series, threshold: float) -> dict[str, bool]:
    """Each baseline's leak call on one series (thinned to MAX_POINTS)."""
    t = series.df["timestamp"].to_numpy(dtype=float)
    y = series.df[series.metric].to_numpy(dtype=float)
    step = max(1, math.ceil(len(t) / MAX_POINTS))
    t_h, y = (t[::step] - t[0]) / 3600.0, y[::step]
    b, se = ols_slope_se(t_h, y)
    nb, nse = newey_west_slope_se(t_h, y)
    p_hr, sen = hamed_rao(y)
    sen_per_hour = sen / max(float(np.median(np.diff(t_h))), 1e-12)
    nw = nse > 0 and _p_upper(nb / nse) < 0.025
    hr = p_hr < 0.025
    return {"OLS p < 0.05": se > 0 and _p_upper(b / se) < 0.025,
            "Mann-Kendall p < 0.05": _p_upper(mann_kendall_z(y)) < 0.025,
            "Newey-West OLS p < 0.05": nw,
            "Hamed-Rao MK p < 0.05": hr,
            "Newey-West OLS + threshold": nw and nb >= threshold,
            "Hamed-Rao MK + threshold": hr and sen_per_hour >= threshold}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="comma-separated corpus seeds (default 0)")
    parser.add_argument("--recordings", metavar="DIR", help="also the recordings indexed in DIR/*.yaml")
    args = parser.parse_args()
    corpus = [s for seed in args.seeds.split(",") for s in generate(int(seed))]
    if args.recordings:
        corpus += recordings(args.recordings)
    # per (method, class): [leak calls, false alarms, decidable leaks, caught]
    counts: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    seconds: dict[str, float] = collections.defaultdict(float)
    for s in corpus:
        level = s.level if s.level is not None else float(np.nanmedian(s.df[s.metric]))
        threshold = practical_threshold(metric_spec(s.metric), level, None)
        started = time.perf_counter()
        result = calls(s, threshold)
        seconds["baselines"] += time.perf_counter() - started
        started = time.perf_counter()
        result["llmsoak"] = analyze_metric(s.df, s.metric).verdict == "leak"
        seconds["llmsoak"] += time.perf_counter() - started
        decidable = s.accepts(None) == VERDICT_SETS["leak"]
        for method, leak in result.items():
            for cls in (s.length_class, "all"):
                c = counts[(method, cls)]
                c[0] += leak
                c[1] += leak and s.truth != "leak"
                c[2] += decidable
                c[3] += leak and decidable
    methods = list(dict.fromkeys(m for m, _ in counts))
    print(f"{len(corpus)} series, seeds {args.seeds}; llmsoak {seconds['llmsoak']:.0f} s, "
          f"baselines {seconds['baselines']:.0f} s")
    print("| method | " + " | ".join(f"{c}: precision / recall / false alarms" for c in (*LENGTH_CLASSES, "all")) + " |")
    print("|---|" + "---|" * (len(LENGTH_CLASSES) + 1))
    for m in methods:
        cells = []
        for cls in (*LENGTH_CLASSES, "all"):
            calls_, fa, dec, caught = counts[(m, cls)]
            precision = f"{(calls_ - fa) / calls_:.2f}" if calls_ else "–"
            recall = f"{caught / dec:.2f}" if dec else "–"
            cells.append(f"{precision} / {recall} / {fa}")
        print(f"| {m} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
