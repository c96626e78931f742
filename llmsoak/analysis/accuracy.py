"""Scoring the verdict on the labelled corpus, by run length and with or without a memory limit.

``score(series)`` analyses every series of the corpus (``corpus.py``) twice — without a limit and
with its ``limit`` when it has one — and compares each verdict with the set the data supports
(``CorpusSeries.accepts``). ``tally`` counts, per length class (short < 1 h, medium, long >= 24 h)
and per limit setting:

- **leak precision**: leak verdicts on series that really leak / all leak verdicts (a leak verdict
  on a bounded series is a false alarm);
- **leak recall**: leak verdicts / the leaks the data can decide;
- **ok precision**: ok verdicts on bounded series / all ok verdicts (an "ok" on a real leak is the
  worst error);
- **undecidable**: how many series whose data cannot decide read "inconclusive" (a leak that grew
  too little, a warm-up still rising at the end), and how many read "leak" or "ok" instead.

Run ``python -m llmsoak.analysis.accuracy --seeds 0,1,2,3 [--recordings DIR]`` for the tables of
docs/leak-statistics.md. Slope and projection errors are measured on the steady leaks (``clean``).
"""

from __future__ import annotations

import argparse
import collections
import sys
from dataclasses import dataclass

from llmsoak.analysis.corpus import LENGTH_CLASSES, VERDICT_SETS, CorpusSeries, generate, recordings
from llmsoak.analysis.verdict import analyze_metric


@dataclass(frozen=True, eq=False)
class Outcome:
    """One series analysed once: its verdict (a MetricVerdict) and the verdicts the data supports."""

    series: CorpusSeries
    limit: float | None
    verdict: object
    accepts: frozenset

    @property
    def right(self) -> bool:
        return self.verdict.verdict in self.accepts


def score(series: list[CorpusSeries], *, with_limits: bool = True, min_growth_pct_per_hour: float | None = None
          ) -> list[Outcome]:
    """Every series without a limit, and (``with_limits``) again with its limit when it has one."""
    out = []
    for s in series:
        for limit in (None, s.limit) if with_limits and s.limit is not None else (None,):
            v = analyze_metric(s.df, s.metric, limit=limit, min_growth_pct_per_hour=min_growth_pct_per_hour)
            out.append(Outcome(s, limit, v, s.accepts(limit)))
    return out


@dataclass
class Tally:
    """Counts for one group of outcomes (see the module docstring)."""

    series: int = 0
    leaks_decidable: int = 0
    leaks_caught: int = 0
    leak_verdicts: int = 0
    false_alarms: int = 0
    ok_verdicts: int = 0
    ok_on_leaks: int = 0
    undecidable: int = 0
    undecidable_inconclusive: int = 0
    bounded: int = 0
    bounded_ok: int = 0
    wrong: int = 0

    def add(self, o: Outcome) -> None:
        v = o.verdict.verdict
        truth = o.series.truth
        self.series += 1
        self.wrong += not o.right
        if o.accepts == VERDICT_SETS["leak"]:
            self.leaks_decidable += 1
            self.leaks_caught += v == "leak"
        if v == "leak":
            self.leak_verdicts += 1
            self.false_alarms += truth != "leak"
        if v == "ok":
            self.ok_verdicts += 1
            self.ok_on_leaks += truth == "leak" and "ok" not in o.accepts
        if o.accepts == VERDICT_SETS["inconclusive"]:
            self.undecidable += 1
            self.undecidable_inconclusive += v == "inconclusive"
        if truth == "bounded" and o.accepts == VERDICT_SETS["ok"]:
            self.bounded += 1
            self.bounded_ok += v == "ok"

    @staticmethod
    def ratio(num: int, den: int) -> float | None:
        return num / den if den else None

    @property
    def leak_precision(self) -> float | None:
        return self.ratio(self.leak_verdicts - self.false_alarms, self.leak_verdicts)

    @property
    def leak_recall(self) -> float | None:
        return self.ratio(self.leaks_caught, self.leaks_decidable)

    @property
    def ok_precision(self) -> float | None:
        return self.ratio(self.ok_verdicts - self.ok_on_leaks, self.ok_verdicts)

    @property
    def undecidable_rate(self) -> float | None:
        return self.ratio(self.undecidable_inconclusive, self.undecidable)


def tally(outcomes: list[Outcome]) -> dict[tuple[str, bool], Tally]:
    """Tallies keyed by (length class, with a limit), plus ("all", False/True)."""
    groups: dict[tuple[str, bool], Tally] = collections.defaultdict(Tally)
    for o in outcomes:
        with_limit = o.limit is not None
        groups[(o.series.length_class, with_limit)].add(o)
        groups[("all", with_limit)].add(o)
    return dict(groups)


def slope_errors(outcomes: list[Outcome]) -> list[tuple[CorpusSeries, float, float | None]]:
    """(series, relative slope error, relative 7-day projection error or None) of the steady leaks
    called "leak" without a limit."""
    out = []
    for o in outcomes:
        s, v = o.series, o.verdict
        if o.limit is None and s.clean and v.verdict == "leak" and s.true_slope_per_hour:
            slope_err = abs(v.slope_per_hour / s.true_slope_per_hour - 1)
            proj_err = (abs(v.projected_7d / s.true_projected_7d - 1)
                        if v.projected_7d is not None and s.true_projected_7d else None)
            out.append((s, slope_err, proj_err))
    return out


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def markdown(groups: dict[tuple[str, bool], Tally]) -> list[str]:
    """The accuracy table of docs/leak-statistics.md."""
    lines = ["| runs | limit | series | leak precision | leak recall (caught/decidable) | false alarms | "
             "ok precision | undecidable → inconclusive | bounded → ok |",
             "|---|---|---|---|---|---|---|---|---|"]
    for cls in (*LENGTH_CLASSES, "all"):
        for with_limit in (False, True):
            t = groups.get((cls, with_limit))
            if t is None:
                continue
            lines.append(
                f"| {cls} | {'yes' if with_limit else 'no'} | {t.series} | {_fmt(t.leak_precision)} | "
                f"{_fmt(t.leak_recall)} ({t.leaks_caught}/{t.leaks_decidable}) | {t.false_alarms} | "
                f"{_fmt(t.ok_precision)} ({t.ok_verdicts - t.ok_on_leaks}/{t.ok_verdicts}) | "
                f"{t.undecidable_inconclusive}/{t.undecidable} | {t.bounded_ok}/{t.bounded} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Accuracy of the leak verdict on the labelled corpus.")
    parser.add_argument("--seeds", default="0", help="comma-separated corpus seeds (default 0)")
    parser.add_argument("--per-family", type=int, default=12)
    parser.add_argument("--recordings", metavar="DIR", help="also score the recordings indexed in DIR/*.yaml")
    parser.add_argument("--min-growth-pct-per-hour", type=float, help="the practical threshold to score with")
    parser.add_argument("--wrong", action="store_true", help="list every series whose verdict is not accepted")
    args = parser.parse_args(argv)
    series = [s for seed in args.seeds.split(",") for s in generate(int(seed), args.per_family)]
    if args.recordings:
        series += recordings(args.recordings)
    outcomes = score(series, min_growth_pct_per_hour=args.min_growth_pct_per_hour)
    print("\n".join(markdown(tally(outcomes))))
    errors = slope_errors(outcomes)
    if errors:
        slope = sorted(e for _s, e, _p in errors)
        proj = sorted(p for _s, _e, p in errors if p is not None)
        print(f"\nsteady leaks called leak: {len(errors)}; slope error median {slope[len(slope) // 2]:.3f}, "
              f"max {slope[-1]:.3f}, within 10 %: {sum(e <= 0.10 for e in slope)}/{len(slope)}; 7-day projection "
              f"error max {max(proj) if proj else float('nan'):.4f} ({len(proj)} projected)")
    if args.wrong:
        for o in outcomes:
            if not o.right:
                print(f"{o.series.name} [{o.series.length_class}, limit {'yes' if o.limit else 'no'}] "
                      f"expected {sorted(o.accepts)} got {o.verdict.verdict}: {o.verdict.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
