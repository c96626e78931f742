"""Minimum detectable leak rate against noise and run length (quoted in docs/leak-statistics.md).

For each noise level (marginal sd, % of level, AR(1) phi 0.9 at 30-s samples) and run length,
the smallest tested leak rate (%/h) that analyze_metric calls "leak" in at least 90% of seeds.
Run: .venv/bin/python benchmarks/detection_limits.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import sys

from llmsoak.analysis.corpus import leak_series
from llmsoak.analysis.verdict import analyze_metric

RATES_PCT_H = (0.1, 0.12, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)
NOISE_PCT = (0.2, 1.0, 3.0)
HOURS = (3, 6, 24, 72)


def detection_limit(noise_pct: float, hours: float, seeds: int, phi: float = 0.9) -> float | None:
    """Smallest rate in RATES_PCT_H detected in >= 90% of ``seeds`` series (None: none was)."""
    for rate in RATES_PCT_H:
        hits = sum(analyze_metric(leak_series(rate, hours, noise_pct, phi, seed=s)).verdict == "leak"
                   for s in range(seeds))
        if hits >= 0.9 * seeds:
            return rate
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    print("| noise sd (% of level) | " + " | ".join(f"{h} h" for h in HOURS) + " |")
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
