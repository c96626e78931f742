"""Naive trend tests on the labelled corpus, for comparison with analyze_metric (docs/leak-statistics.md).

"OLS": least-squares slope > 0 with a normal-approximation p < 0.05 (independent errors assumed).
"Mann-Kendall": the original test (no autocorrelation correction), increasing with p < 0.05.
Both on the raw series thinned to at most 2,000 points. Run: .venv/bin/python benchmarks/baselines.py
"""

from __future__ import annotations

import collections
import math
import sys

import numpy as np

from llmsoak.analysis.corpus import generate
from llmsoak.analysis.verdict import analyze_metric


def _p_upper(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def ols_increasing(t: np.ndarray, y: np.ndarray) -> bool:
    tc = t - t.mean()
    b = np.dot(tc, y - y.mean()) / np.dot(tc, tc)
    r = y - y.mean() - b * tc
    se = math.sqrt(np.dot(r, r) / (len(y) - 2) / np.dot(tc, tc))
    return se > 0 and _p_upper(b / se) < 0.025


def mann_kendall_increasing(y: np.ndarray) -> bool:
    n = len(y)
    s = float(np.sum(np.triu(np.sign(y[None, :] - y[:, None]), 1)))
    var = n * (n - 1) * (2 * n + 5) / 18
    z = (s - np.sign(s)) / math.sqrt(var)
    return _p_upper(z) < 0.025


def main() -> int:
    cm = {name: collections.Counter() for name in ("OLS p-value", "Mann-Kendall", "llmsoak")}
    for series in generate(seed=0, per_family=12):
        t = series.df["timestamp"].to_numpy()
        y = series.df[series.metric].to_numpy()
        step = max(1, len(t) // 2000)
        calls = {"OLS p-value": ols_increasing(t[::step], y[::step]),
                 "Mann-Kendall": mann_kendall_increasing(y[::step]),
                 "llmsoak": analyze_metric(series.df, series.metric).verdict == "leak"}
        for name, leak in calls.items():
            cm[name][(series.label, leak)] += 1
    print("| method | precision | recall | false alarms on bounded series |")
    print("|---|---|---|---|")
    for name, c in cm.items():
        tp, fp, fn = c[("leak", True)], c[("ok", True)], c[("leak", False)]
        n_ok = fp + c[("ok", False)]
        print(f"| {name} | {tp / max(tp + fp, 1):.2f} | {tp / max(tp + fn, 1):.2f} | {fp}/{n_ok} ({fp / n_ok:.0%}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
