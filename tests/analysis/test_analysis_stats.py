"""Small pure statistics functions on fixed data, and analyze_metric's arithmetic and contract."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from llmsoak.analysis import MetricVerdict, analyze_metric, overall_verdict
from llmsoak.analysis.corpus import ar1
from llmsoak.analysis.envelope import reduce_windows, rolling_min_centered, window_width_s
from llmsoak.analysis.segments import find_gaps, split_segments, typical_interval_s
from llmsoak.analysis.trend import block_bootstrap_indices, fit_trend, lag1_autocorr
from llmsoak.analysis.verdict import set_aside_too_short
from llmsoak.errors import CommandError
from llmsoak.formatting import format_value

T0 = 1.7e9


def test_reduce_windows_min_median_mean_on_fixed_data():
    # GIVEN 6 samples 1 s apart and 3-s windows
    t = np.arange(6.0)
    y = np.array([5.0, 1.0, 3.0, 9.0, 7.0, 8.0])
    # WHEN reduced THEN each window holds its min / median / mean at the mean time
    tw, ymin, counts = reduce_windows(t, y, 3.0, "min")
    assert list(tw) == [1.0, 4.0] and list(ymin) == [1.0, 7.0] and list(counts) == [3, 3]
    assert list(reduce_windows(t, y, 3.0, "median")[1]) == [3.0, 8.0]
    assert list(reduce_windows(t, y, 3.0, "mean")[1]) == [3.0, 8.0]


def test_reduce_windows_skips_nan_and_empty_windows_of_a_gap():
    t = np.array([0.0, 1.0, 2.0, 30.0, 31.0])
    y = np.array([1.0, np.nan, 2.0, 4.0, 3.0])
    tw, yw, counts = reduce_windows(t, y, 10.0, "min")
    assert list(yw) == [1.0, 3.0] and list(counts) == [2, 2]
    with pytest.raises(ValueError):
        reduce_windows(t, y, 0.0)


def test_rolling_min_centered_and_window_width():
    assert list(rolling_min_centered(np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0]), 3)) == [1, 1, 1, 1, 1, 5]
    assert window_width_s(7 * 86400, 1.0, 400) == pytest.approx(1512.0)
    assert window_width_s(100, 5.0, 400) == 5.0


def test_lower_envelope_removes_gc_sawtooth():
    # GIVEN a flat heap with a 10-minute GC sawtooth of 50 MB over 6 h
    t = np.arange(0, 6 * 3600, 5.0)
    y = 1e9 + 5e7 * ((t / 600) % 1.0)
    # WHEN reduced to 15-min window minima THEN the envelope is flat at the post-GC level
    _, env, _ = reduce_windows(t, y, 900.0, "min")
    assert np.ptp(env) < 1e6


def test_split_segments_at_pid_and_create_time_changes():
    # GIVEN pid changes at row 3, create_time at row 5, a missing pid at row 1
    t = np.arange(8.0)
    pid = np.array([7, np.nan, 7, 8, 8, 8, 8, 8], dtype=float)
    ct = np.array([1, 1, 1, 2, 2, 9, 9, 9], dtype=float)
    segs = split_segments(t, pid, ct)
    # THEN three segments, missing values never split
    assert [(s.start_idx, s.end_idx, s.pid) for s in segs] == [(0, 3, 7), (3, 5, 8), (5, 8, 8)]
    assert segs[2].create_time_s == 9.0
    assert len(split_segments(t)) == 1


def test_gaps_and_typical_interval():
    t = np.array([0.0, 10, 20, 30, 1000, 1010])
    assert typical_interval_s(t) == 10.0
    assert find_gaps(t) == [(30.0, 1000.0)]


def test_block_bootstrap_indices_are_contiguous_blocks():
    idx = block_bootstrap_indices(10, 4, 50, np.random.default_rng(0))
    assert idx.shape == (50, 10) and idx.min() >= 0 and idx.max() <= 9
    # within each block of 4 the indices step by one
    assert (np.diff(idx[:, :4], axis=1) == 1).all()


def test_lag1_autocorr_of_ar1_noise():
    x = ar1(20000, 0.8, 1.0, np.random.default_rng(1))
    assert lag1_autocorr(x) == pytest.approx(0.8, abs=0.03)


def test_bootstrap_interval_covers_true_slope_under_autocorrelated_noise():
    # GIVEN 200 series: slope 2/h plus AR(1) noise (phi 0.9) WHEN fitted
    rng = np.random.default_rng(5)
    t_h = np.linspace(0, 24, 400)
    hits = 0
    for k in range(200):
        y = 100 + 2.0 * t_h + ar1(len(t_h), 0.9, 3.0, rng)
        fit = fit_trend(t_h, y, seed=k)
        hits += fit.slope_lo <= 2.0 <= fit.slope_hi
    # THEN the 95% interval covers the truth in at least ~90% of them (a naive one covers far less)
    assert hits / 200 >= 0.9


def _series(hours, rate_per_h, level=1e9, interval_s=30.0, noise=0.0, seed=0, **extra):
    t = np.arange(0, hours * 3600, interval_s)
    rng = np.random.default_rng(seed)
    y = level + rate_per_h * t / 3600 + rng.normal(0, noise, len(t))
    return pd.DataFrame({"timestamp": T0 + t, "rss_bytes": y, **extra})


def test_projection_and_hours_to_limit_arithmetic_on_a_noise_free_leak():
    # GIVEN 10 MB/h from 1 GB at process start, sampled for 24 h, limit 2 GB
    df = _series(24, 1e7, create_time=T0)
    v = analyze_metric(df, limit=2e9)
    # THEN slope, the 168-h value and the time to the limit follow by arithmetic
    assert v.verdict == "leak"
    assert v.slope_per_hour == pytest.approx(1e7, rel=1e-3)
    assert v.projected_7d == pytest.approx(1e9 + 168 * 1e7, rel=2e-3)
    now_level = 1e9 + 1e7 * 24
    assert v.hours_to_limit == pytest.approx((2e9 - now_level) / 1e7, rel=0.01)
    assert v.growth_pct_per_hour == pytest.approx(100 * 1e7 / 1.12e9, rel=0.02)


def test_projection_counts_uptime_from_create_time():
    # GIVEN the process started 100 h before sampling began (create_time)
    df = _series(24, 1e7, create_time=T0 - 100 * 3600)
    v = analyze_metric(df)
    # THEN 168 h of uptime is only 68 h after the first sample
    assert v.projected_7d == pytest.approx(1e9 + 68 * 1e7, rel=2e-3)


def test_flat_series_is_ok_and_has_no_hours_to_limit():
    v = analyze_metric(_series(24, 0.0, noise=1e6), limit=2e9)
    assert v.verdict == "ok" and v.hours_to_limit is None
    assert "flat" in v.reason


def test_short_run_is_inconclusive_and_says_how_many_more_hours():
    # GIVEN 40 minutes of a faint leak in noise
    v = analyze_metric(_series(0.67, 1e6, noise=2e6, interval_s=5))
    assert v.verdict == "inconclusive"
    assert v.hours_needed is not None and v.hours_needed > 0
    assert re.search(r"about \d+ more hours? ", v.reason)


def test_too_few_samples_is_inconclusive_not_an_error():
    v = analyze_metric(_series(0.05, 1e7, interval_s=60))
    assert v.verdict == "inconclusive" and "sample" in v.reason


def test_slow_steady_growth_is_a_slow_leak_and_the_threshold_can_wave_it_through():
    # GIVEN 0.05 %/h growth over 48 h, statistically clear (the 2 MiB/h on 4 GB, scaled)
    df = _series(48, 5e5, noise=1e4)
    v = analyze_metric(df)
    # THEN it is a leak, named slow (+8.4 % of its level a week), not "ok"
    assert v.verdict == "leak" and v.severity == "slow" and v.slope_interval_per_hour[0] > 0
    assert re.search(r": a slow leak \(\+8\.[34] % of its level a week\)", v.reason), v.reason
    # WHEN the user raises the practical threshold to 0.1 %/h THEN the same data is "ok", and the
    # sentence says the growth and what the data really rules out (the interval's upper end)
    ok = analyze_metric(df, min_growth_pct_per_hour=0.1)
    assert ok.verdict == "ok" and ok.reason.startswith("rss_bytes grows slowly: 488 KiB/h")
    hi = ok.slope_interval_per_hour[1]
    assert f"which rules out growth of {format_value(hi, 'bytes')}/h or more" in ok.reason
    assert f"(a leak counts from {format_value(ok.threshold_per_hour, 'bytes')}/h)" in ok.reason


def test_latency_drift_uses_drift_language_and_falling_throughput_is_bad():
    t = np.arange(0, 24 * 3600, 60.0)
    df = pd.DataFrame({"timestamp": T0 + t, "ttft_p95_ms": 200 + 5 * t / 3600,
                       "tokens_per_s": 50 - 0.5 * t / 3600})
    lat = analyze_metric(df, "ttft_p95_ms")
    assert lat.verdict == "leak" and "drifts up" in lat.reason and lat.unit == "ms"
    tps = analyze_metric(df, "tokens_per_s")
    assert tps.verdict == "leak" and tps.slope_per_hour < 0


def test_missing_metric_column_is_a_command_error():
    with pytest.raises(CommandError, match="no 'uss_bytes' column"):
        analyze_metric(_series(1, 0.0), "uss_bytes")


def test_to_json_has_the_design_fields_and_is_serialisable():
    v = analyze_metric(_series(24, 1e7), limit=5e9)
    d = v.to_json()
    for key in ("verdict", "unit", "slope_per_hour", "slope_interval_per_hour", "growth_pct_per_hour",
                "projected_7d", "projected_interval_7d", "hours_to_limit", "restarts", "reason"):
        assert key in d
    json.dumps(d, allow_nan=False)
    assert d["projected_interval_7d"][0] <= d["projected_7d"] <= d["projected_interval_7d"][1]
    assert isinstance(v, MetricVerdict) and len(v.envelope_t) == len(v.envelope_y) > 100
    assert len(v.trend_t) == 2 and v.trend_t[0] >= T0


def test_overall_verdict_precedence():
    def mv(word):
        return MetricVerdict("m", word, "", None, None, None, None, None, None, 0, None)
    assert overall_verdict([mv("ok"), mv("leak"), mv("inconclusive")]) == "leak"
    assert overall_verdict([mv("ok"), mv("inconclusive")]) == "inconclusive"
    assert overall_verdict([mv("ok"), mv("ok")]) == "ok"
    assert overall_verdict([]) == "inconclusive"


def test_too_short_counts_are_set_aside_only_when_memory_answered():
    # GIVEN verdicts with and without the too-short flag
    def mv(metric, word, too_short=False):
        return MetricVerdict(metric, word, "", None, None, None, None, None, None, 0, None, too_short=too_short)
    fds_short = mv("num_fds", "inconclusive", True)
    # WHEN memory has an answer, THEN a too-short count is set aside and the headline is memory's
    kept, aside = set_aside_too_short([mv("rss_bytes", "ok"), fds_short])
    assert aside == [fds_short] and overall_verdict(kept) == "ok"
    # AND a count inconclusive for another reason (a real but unsettled rise) still counts
    kept, aside = set_aside_too_short([mv("rss_bytes", "ok"), mv("num_fds", "inconclusive")])
    assert aside == [] and overall_verdict(kept) == "inconclusive"
    # AND a count leak still decides
    assert overall_verdict(set_aside_too_short([mv("rss_bytes", "ok"), mv("num_fds", "leak")])[0]) == "leak"
    # AND a too-short memory metric is never set aside, nor a count when memory has no answer
    kept, aside = set_aside_too_short([mv("rss_bytes", "inconclusive", True), fds_short])
    assert aside == [] and overall_verdict(kept) == "inconclusive"


def test_leading_ramp_end_cuts_a_warm_up_ramp_but_not_a_linear_leak():
    from llmsoak.analysis.regime import leading_ramp_end

    # GIVEN 400 windows: a ramp over the first 2 % then flat with rare +1 blips (a count)
    t_h = np.linspace(0, 4 / 60, 400)
    rng = np.random.default_rng(0)
    ramp = np.where(np.arange(400) < 8, np.round(7 + np.arange(400)), 15.0)
    ramp += rng.uniform(size=400) < 0.02
    # THEN the regime may not start before the ramp's end
    assert 8 <= leading_ramp_end(t_h, ramp) <= 12
    # GIVEN a plain linear leak in AR(1) noise over 48 h, reduced to a lower envelope (plateaus of a
    # rolling minimum) from which a small daily harmonic was removed: the plateaus' residuals are
    # then tiny but not 0, so their median deviation understates the noise ~20-fold
    for seed in range(10):
        t_h = np.linspace(0, 48, 400)
        y = 2e9 + 7e6 * t_h + ar1(400, 0.5, 3e6, np.random.default_rng(seed))
        env = rolling_min_centered(y, 5, full_edges=True) + 1e5 * np.sin(2 * np.pi * t_h / 24)
        # THEN nothing is cut (with the median deviation as yardstick 9 of these 10 were "ramps")
        assert leading_ramp_end(t_h, env) == 0, seed
