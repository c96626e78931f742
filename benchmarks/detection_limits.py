"""Minimum detectable leak rate against noise and run length (quoted in docs/leak-statistics.md).

For each noise level (marginal sd, % of level, AR(1) phi 0.9) and run length, the smallest tested
leak rate (%/h) that analyze_metric calls "leak" in at least 90% of seeds (level 1 GB). Runs of 3 h
and more are sampled every 30 s, shorter ones (a demo, a smoke test) every second.
Run: .venv/bin/python benchmarks/detection_limits.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import sys

from llmsoak.analysis.corpus import leak_series
from llmsoak.analysis.verdict import analyze_metric

RATES_PCT_H = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
NOISE_PCT = (0.2, 1.0, 3.0)
HOURS = (0.25, 1, 3, 6, 24, 72, 168)


def interval_for(hours: float) -> float:
    """Sampling interval (s) of a run of ``hours``: 1 s below 3 h, else 30 s."""
    return 1.0 if hours < 3 else 30.0


def detection_limit(noise_pct: float, hours: float, seeds: int, phi: float = 0.9) -> float | None:
    """Smallest rate in RATES_PCT_H detected in >= 90% of ``seeds`` series (None: none was)."""
    for rate in RATES_PCT_H:
        hits = sum(analyze_metric(leak_series(rate, hours, noise_pct, phi, interval_s=interval_for(hours),
                                              seed=s)).verdict == "leak"
                   for s in range(seeds))
        if hits >= 0.9 * seeds:
            return rate
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    print("| noise sd (% of level) | " + " | ".join(f"{h:g} h" for h in HOURS) + " |")
    print("|---|" + "---|" * len(HOURS))
    for noise in NOISE_PCT:
        cells = []
        for hours in HOURS:
            lim = detection_limit(noise, hours, args.seeds)
            cells.append(f"{lim:g} %/h" if lim is not None else f"> {RATES_PCT_H[-1]:g} %/h")
        print(f"| {noise:g} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
