"""Accuracy of the leak verdict on the labelled synthetic corpus (llmsoak.analysis.corpus).

Counts honestly: "inconclusive" on a leak is a miss (hurts recall); "leak" on a bounded series
is a false alarm (hurts precision). Figures for docs/leak-statistics.md come from the same code.
"""

from __future__ import annotations

import collections

import pytest

from llmsoak.analysis.corpus import generate
from llmsoak.analysis.verdict import analyze_metric


def _confusion(seed: int):
    corpus = generate(seed=seed, per_family=12)
    cm = collections.Counter()
    results = []
    for series in corpus:
        v = analyze_metric(series.df, series.metric)
        cm[(series.label, v.verdict)] += 1
        results.append((series, v))
    return corpus, cm, results


@pytest.mark.parametrize("seed", [0, 1])
def test_corpus_precision_and_recall_at_least_95_percent(seed):
    # GIVEN a seeded corpus covering every trap, 276 series: 120 leaks and 156 bounded
    corpus, cm, _ = _confusion(seed)
    assert len(corpus) >= 270
    assert {s.label for s in corpus} == {"leak", "ok"}
    # WHEN each is analysed
    tp = cm[("leak", "leak")]
    fp = cm[("ok", "leak")]
    fn = cm[("leak", "ok")] + cm[("leak", "inconclusive")]
    # THEN precision and recall of "leak" are both at least 0.95
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    assert precision >= 0.95, dict(cm)
    assert recall >= 0.95, dict(cm)


def test_clean_linear_leaks_slope_within_20pct_and_projection_within_5pct():
    # GIVEN the clean linear leaks of the corpus (true slope and 7-day value known)
    _, _, results = _confusion(0)
    clean = [(s, v) for s, v in results if s.clean]
    assert len(clean) >= 10
    for series, v in clean:
        # THEN the slope is within ±20% and the 7-day projection within ±5% of the truth
        assert v.verdict == "leak", (series.name, v.reason)
        assert abs(v.slope_per_hour / series.true_slope_per_hour - 1) <= 0.20, series.name
        assert abs(v.projected_7d / series.true_projected_7d - 1) <= 0.05, series.name
        lo, hi = v.slope_interval_per_hour
        assert lo <= series.true_slope_per_hour * 1.2 and hi >= series.true_slope_per_hour * 0.8


def test_every_trap_family_is_represented_with_several_parameters():
    # GIVEN the corpus WHEN grouped by family THEN every documented trap has >= 10 series
    corpus = generate(seed=0, per_family=12)
    families = collections.Counter(s.family for s in corpus)
    for family in ("linear_ar", "sawtooth_leak", "warmup_leak", "restarts_leak", "gaps_leak", "diurnal_leak",
                   "staircase_leak", "white_noise", "ar_noise", "sawtooth", "warmup_flat", "cache_fill",
                   "single_step", "staircase_stops", "diurnal", "restarts_ok", "short_alloc_steps", "short_warmup",
                   "short_fd_ramp", "short_cpu", "short_big_leak", "short_fd_leak"):
        assert families[family] >= 10, family


@pytest.mark.parametrize("seed", [0, 1])
def test_short_runs_never_call_a_small_rise_a_leak_but_catch_large_leaks(seed):
    # GIVEN the short-run families (3 min to 1 h): bounded allocator steps, slow warm-ups of <= 2 %,
    # descriptor ramps and CPU settling by <= 1.5 points; and large memory and descriptor leaks
    _, _, results = _confusion(seed)
    short = [(s, v) for s, v in results if s.family.startswith("short_")]
    assert len(short) == 72 and {s.metric for s, _ in short} == {"rss_bytes", "num_fds", "cpu_percent"}
    for series, v in short:
        if series.label == "ok":
            # THEN no bounded one is a leak; those whose rise is real but small are inconclusive,
            # with how long to run on, never "ok"
            assert v.verdict != "leak", (series.name, v.reason)
            if v.verdict == "inconclusive" and "too little" in v.reason:
                assert v.hours_needed >= 0.5 and v.slope_interval_per_hour[0] > 0
                assert v.observed_change < v.min_change
        else:
            # AND every leak is caught, however short the run
            assert v.verdict == "leak", (series.name, v.reason)
            assert v.observed_change >= v.min_change
    # AND the descriptor ramps of the first seconds are cut as warm-up: most read "ok", or (a run
    # under 8 h cannot resolve one fd at 0.25/h) inconclusive only for being too short
    ramps = [v.verdict if not v.too_short else "too_short" for s, v in short if s.family == "short_fd_ramp"]
    assert ramps.count("ok") + ramps.count("too_short") >= len(ramps) // 2, ramps
