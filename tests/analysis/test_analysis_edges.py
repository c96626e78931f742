"""Edge cases of the verdict and how its figures read: zero levels, bounded projections, the last
window of a run, significant digits, and projections that are not findings (report and charts)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from support.analysis_runs import make_run_dir

from llmsoak.analysis.envelope import reduce_windows, rolling_min_centered
from llmsoak.analysis.report import figure_cells, render_html, render_summary_md, write_outputs
from llmsoak.analysis.run_dir import analyze_run
from llmsoak.analysis.verdict import analyze_metric
from llmsoak.analysis.wording import NOT_A_TREND, times
from llmsoak.formatting import format_bytes_sig, format_pct_per_hour, format_sig

T0 = 1.79e9
MIB = 2**20


def _frame(t, **cols):
    return pd.DataFrame({"timestamp": T0 + np.asarray(t, dtype=float), **cols})


def _no_numpy_warnings(fn):
    """Run ``fn`` with every RuntimeWarning (numpy's divide by zero, invalid value) raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with np.errstate(all="warn"):
            return fn()


# ---------------------------------------------------------------- 1. zero levels
@pytest.mark.parametrize("metric", ["swap_bytes", "cpu_percent", "error_rate", "num_fds"])
@pytest.mark.parametrize("restart", [False, True])
def test_all_zero_series_has_null_growth_and_a_sensible_reason(metric, restart):
    # GIVEN nine hours (a count needs 8 h to resolve one unit at 0.25/h) of a metric that is 0
    # throughout, with or without a restart half way
    t = np.arange(0, 9 * 3600, 30.0)
    cols = {metric: np.zeros(len(t))}
    if restart:
        cols["pid"] = np.where(t < 4.5 * 3600, 100, 200)
    # WHEN analysed with numpy warnings turned into errors
    v = _no_numpy_warnings(lambda: analyze_metric(_frame(t, **cols), metric))
    # THEN it is ok, the growth in % of a zero level is null, and no figure reads "nan"
    assert v.verdict == "ok"
    assert v.growth_pct_per_hour is None and v.to_json()["growth_pct_per_hour"] is None
    assert v.slope_per_hour == 0.0
    # a utilisation has no 7-day projection (null); every stock projects its flat level
    assert v.projected_7d == (None if metric == "cpu_percent" else 0.0)
    assert "nan" not in v.reason.lower() and "level is 0" in v.reason
    assert "drifts up" not in v.reason and "grows" not in v.reason


def test_constant_nonzero_series_across_restarts_reads_zero_not_dust():
    # GIVEN a constant 500 MB split by a restart (standard errors of exactly 0 in both runs)
    t = np.arange(0, 6 * 3600, 30.0)
    df = _frame(t, swap_bytes=np.full(len(t), 5e8), pid=np.where(t < 3 * 3600, 1, 2))
    v = _no_numpy_warnings(lambda: analyze_metric(df, "swap_bytes"))
    # THEN the pooled slope is finite and the sentence says 0, not "-0 B" or "1e-14"
    assert v.verdict == "ok" and np.isfinite(v.slope_per_hour)
    assert "flat: 0 B/h (95% CI 0 B to 0 B/h" in v.reason
    assert "e-" not in v.reason and "-0 " not in v.reason


# ---------------------------------------------------------------- 2. physical bounds
def test_projection_of_a_falling_memory_is_clamped_at_zero_and_not_called_flat():
    # GIVEN swap falling 40 MB per hour from 500 MB over 12 h (extrapolated: -6.2 GB at 7 days)
    t = np.arange(0, 12 * 3600, 30.0)
    rng = np.random.default_rng(0)
    swap = np.clip(5e8 - 4e7 * t / 3600 + rng.normal(0, 1e7, len(t)), 0, None)
    v = analyze_metric(_frame(t, swap_bytes=swap), "swap_bytes")
    # THEN the projection and its interval stop at 0 B, and the reason says it falls
    assert v.verdict == "ok"
    assert v.projected_7d == 0.0 and v.projected_interval_7d == (0.0, 0.0)
    assert v.reason.startswith("swap_bytes falls:") and "7 days" not in v.reason


def test_a_falling_cpu_is_called_falling_and_has_no_projection():
    # GIVEN CPU falling 8 points per hour from 50 % over 6 h (extrapolated: -1290 % at 7 days)
    t = np.arange(0, 6 * 3600, 30.0)
    rng = np.random.default_rng(0)
    cpu = np.clip(50 - 8 * t / 3600 + rng.normal(0, 1, len(t)), 0, None)
    v = analyze_metric(_frame(t, cpu_percent=cpu), "cpu_percent")
    # THEN it is ok and "falls"; a utilisation has no 7-day projection at all (null in the JSON)
    assert v.verdict == "ok" and v.reason.startswith("cpu_percent falls:")
    assert v.projected_7d is None and v.projected_interval_7d is None
    assert v.to_json()["projected_7d"] is None and v.to_json()["projected_interval_7d"] is None


@pytest.mark.parametrize("metric", ["cpu_percent", "gpu_util_percent"])
def test_a_utilisation_rising_in_a_40_s_run_is_not_a_leak(metric):
    # GIVEN 40 s of a generator's CPU climbing from 10 % to 18 % (the reviewed run: "leak,
    # 706 %/h, projected 119000 %"), sampled every 0.5 s with psutil-like 2-point steps
    t = np.arange(0, 40, 0.5)
    rng = np.random.default_rng(1)
    cpu = 2 * np.round((10 + 8 * t / 40 + rng.normal(0, 0.5, len(t))) / 2)
    # WHEN analysed
    v = analyze_metric(_frame(t, **{metric: cpu}), metric)
    # THEN it is inconclusive, asks for 30 min of steady load, and quotes no projection
    assert v.verdict == "inconclusive"
    assert "at least 30 min of steady load" in v.reason and "about 30 more minutes" in v.reason
    assert v.hours_needed == pytest.approx(0.5 - 39.5 / 3600, abs=0.01)
    assert v.projected_7d is None and "7 days" not in v.reason and "projected" not in v.reason


def test_a_utilisation_drifting_for_hours_is_still_a_drift_without_projection():
    # GIVEN CPU rising steadily 3 points per hour from 20 % over 4 h
    t = np.arange(0, 4 * 3600, 15.0)
    rng = np.random.default_rng(2)
    v = analyze_metric(_frame(t, cpu_percent=20 + 3 * t / 3600 + rng.normal(0, 1, len(t))), "cpu_percent")
    # THEN it is a drift ("leak" in the JSON) with the rate, but no 7-day figure
    assert v.verdict == "leak" and 2.4 < v.slope_per_hour < 3.6
    assert v.reason.startswith("cpu_percent drifts up") and "7 days" not in v.reason
    assert v.projected_7d is None


def test_error_rate_projection_stays_a_fraction():
    # GIVEN an error rate climbing 2 points per hour from 10 % for 12 h (a straight line reaches 346 %)
    t = np.arange(0, 12 * 3600, 60.0)
    rng = np.random.default_rng(3)
    rate = 0.1 + 0.02 * t / 3600 + rng.normal(0, 0.005, len(t))
    v = analyze_metric(_frame(t, error_rate=rate), "error_rate")
    # THEN it drifts up, and the 7-day value is at most 100 % (1.0)
    assert v.verdict == "leak"
    assert v.projected_7d == 1.0 and 0.0 <= v.projected_interval_7d[0] <= v.projected_interval_7d[1] <= 1.0
    assert "it would be 100 %" in v.reason


def test_only_a_leak_speaks_of_the_projection():
    # GIVEN a short noisy run (inconclusive) and a flat one of 12 h (ok)
    t = np.arange(0, 2400, 5.0)
    rng = np.random.default_rng(0)
    short = _frame(t, rss_bytes=1e9 + 0.67e6 * t / 3600 + rng.normal(0, 2e6, len(t)))
    flat = _frame(np.arange(0, 12 * 3600, 30.0), rss_bytes=np.full(1440, 1e9))
    for df, projected in ((short, False), (flat, True)):
        v = analyze_metric(df)
        # THEN the field stays in the JSON (null when 40 min would be carried 250× beyond their length)
        assert v.verdict != "leak" and "projected_7d" in v.to_json()
        assert (v.projected_7d is not None) == projected
        # AND neither reason speaks of 7 days or a limit
        assert "7 days" not in v.reason and "limit" not in v.reason


# ---------------------------------------------------------------- 3. the last window
def test_partial_last_window_is_merged_into_the_one_before():
    # GIVEN 5 samples per 5-s window and a last window holding a single, high sample
    t = np.arange(0.0, 21.0)
    y = np.arange(21.0)
    y[-1] = 1000.0
    # WHEN reduced THEN the last window holds 6 samples and its minimum is not the lone sample
    tw, yw, counts = reduce_windows(t, y, 5.0, "min")
    assert list(counts) == [5, 5, 5, 6] and yw[-1] == 15.0
    # AND without merging the lone sample is a window of its own
    assert list(reduce_windows(t, y, 5.0, "min", merge_partial_last=False)[2]) == [5, 5, 5, 5, 1]
    # AND one sample per window (width = interval) is never "partial"
    assert len(reduce_windows(t, y, 1.0, "min")[0]) == 21


def test_rolling_min_full_edges_use_the_nearest_full_window():
    y = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    assert list(rolling_min_centered(y, 3, full_edges=True)) == [1, 1, 1, 1, 1, 1]
    assert list(rolling_min_centered(y, 3)) == [1, 1, 1, 1, 1, 5]


def test_envelope_does_not_tick_up_when_the_run_ends_on_a_gc_peak():
    # GIVEN a leak of 20 MiB/h under a 5-minute GC sawtooth of 30 MiB, ending just before a GC
    t = np.arange(0, 6 * 3600 - 10, 10.0)
    rss = 400 * MIB + 20 * MIB * t / 3600 + 30 * MIB * ((t % 300) / 300)
    v = analyze_metric(_frame(t, rss_bytes=rss))
    # WHEN the charted envelope (what the trend is fitted on) is compared with the trend's end
    assert v.verdict == "leak" and len(v.fitted_y) == len(v.envelope_t)
    end_gap = v.fitted_y[-1] - v.trend_y[-1]
    # THEN the last point sits within 3 MiB of the trend (before: the GC ramp, +17 MiB)
    assert abs(end_gap) < 3 * MIB, end_gap / MIB
    assert np.max(np.diff(v.fitted_y[-5:])) < 3 * MIB


# ---------------------------------------------------------------- significant digits
@pytest.mark.parametrize(("value", "text"), [
    (5464.123, "5460"), (0.012345, "0.0123"), (20.0, "20"), (999.7, "1000"), (-3.594, "-3.59"),
    (0.0, "0"), (123456.7, "123000"), (6.42e-16, "6.42e-16"), (1e-5, "1.00e-5"), (2.5e10, "2.50e+10")])
def test_format_sig_three_significant_digits(value, text):
    assert format_sig(value) == text


def test_format_bytes_and_growth():
    assert format_bytes_sig(3.72 * 2**30) == "3.72 GiB"
    assert format_bytes_sig(400 * MIB) == "400 MiB"
    assert format_bytes_sig(1000) == "0.977 KiB" and format_bytes_sig(-5e-8) == "0 B"
    assert format_bytes_sig(float("nan")) == "n/a"
    assert format_pct_per_hour(5464.123) == "+5460 %/h" and format_pct_per_hour(-0.01234) == "-0.0123 %/h"


def test_reason_rounds_a_fast_growth_to_three_digits():
    # GIVEN memory growing 50 MiB/h from 1 MiB (thousands of % per hour)
    t = np.arange(0, 2 * 3600, 10.0)
    v = analyze_metric(_frame(t, rss_bytes=MIB + 50 * MIB * t / 3600))
    # THEN every number in the sentence has at most 3 significant digits
    assert v.verdict == "leak"
    for number in re.findall(r"\d+\.\d+|\d{4,}", v.reason):
        assert len(number.replace(".", "").lstrip("0")) <= 3, (number, v.reason)


# ---------------------------------------------------------------- report and charts
def test_report_marks_projections_that_are_not_findings(tmp_path):
    # GIVEN a 1.2-h run with a small leak: rss is inconclusive, threads ok
    run = make_run_dir(tmp_path / "run", hours=1.2, leak_mib_per_hour=3, with_llm=False, with_locust=False,
                       with_generator=False)
    analysis = analyze_run(run)
    rss = analysis.verdict["metrics"]["rss_bytes"]
    assert rss["verdict"] == "inconclusive"
    # (its latest fit carried 7 days, as an older analysis wrote it when the regime was long enough)
    verdict = {**analysis.verdict, "metrics": {**analysis.verdict["metrics"], "rss_bytes": {**rss, "projected_7d": 7e8}}}
    # WHEN the summary and the report are rendered
    md = render_summary_md(verdict)
    html = render_html(verdict, {})
    # THEN the 7-day column says "not a trend yet" instead of the number, greyed in HTML
    row = next(line for line in md.splitlines() if line.startswith("| target | rss_bytes |"))
    assert "(not a trend yet)" in row and format_bytes_sig(7e8) not in row
    assert "class='num muted'>(not a trend yet)</td>" in html
    # AND a thread count too short to resolve (1.2 h < 8 h) is no finding either
    threads = analysis.verdict["metrics"]["num_threads"]
    assert threads["verdict"] == "inconclusive" and threads["too_short"] is True
    assert figure_cells({**threads, "projected_7d": 25.0})["projected"] == (f"({NOT_A_TREND})", True)
    # AND an "ok" metric's flat level carried forward is marked as no leak
    cells = figure_cells({**threads, "verdict": "ok", "too_short": False, "projected_7d": 25.0})
    assert cells["projected"][0].endswith("(no leak)") and cells["projected"][1] is True
    # AND the memory chart's title quotes no 7-day figure
    written = write_outputs(analysis)
    assert written["chart:memory"].stat().st_size > 20_000


def test_report_numbers_have_three_significant_digits(tmp_path):
    run = make_run_dir(tmp_path / "run", hours=3.0, leak_mib_per_hour=25, with_llm=False, with_locust=False,
                       with_generator=False, limit="2GiB")
    analysis = analyze_run(run)
    rss = analysis.verdict["metrics"]["rss_bytes"]
    assert rss["verdict"] == "leak"
    cells = figure_cells(rss)
    assert re.fullmatch(r"\+?\d+(\.\d+)? MiB/h", cells["slope"][0]) and len(cells["slope"][0].split()[0]) <= 4
    assert re.fullmatch(r"\+\d\.\d{2}", cells["growth"][0]) or re.fullmatch(r"\+\d{2}\.\d", cells["growth"][0])
    # 3 h of data would be carried 56× beyond their length: no 7-day figure, and the cell says why
    assert rss["projected_7d"] is None and 50 < rss["extrapolation"] < 60
    assert cells["projected"] == (f"(none from 3 h of data ({times(rss['extrapolation'])} beyond it))", True)
    assert cells["hours_to_limit"][0].endswith(" h") or "days" in cells["hours_to_limit"][0]


# ---------------------------------------------------------------- short runs: observed growth
def _demo_generator_rss(seed=0, leak_bytes_per_h=0.0, level=56 * MIB):
    """4 minutes at 0.5 s like the demo's Locust process: 21 MiB at the first sample, then a flat
    level with four 128 KiB allocator steps (0.5 MiB), and a shutdown spike on the last sample."""
    t = np.arange(0, 240.5, 0.5)
    rng = np.random.default_rng(seed)
    steps = (t[:, None] > np.array([20.0, 70.0, 130.0, 170.0])[None, :]).sum(axis=1) * 128 * 1024
    rss = level + steps + leak_bytes_per_h * t / 3600 + rng.integers(0, 3, len(t)) * 4096.0
    rss[0] = 21 * MIB
    rss[-1] += 7 * MIB
    return t, rss


def test_short_run_small_rise_is_inconclusive_not_a_leak():
    # GIVEN the demo's load generator: +0.5 MiB (0.9 %) on 56 MiB in 4 minutes, ~7 MiB/h
    t, rss = _demo_generator_rss()
    v = _no_numpy_warnings(lambda: analyze_metric(_frame(t, rss_bytes=rss)))
    # THEN the rate is significant, but too little growth was seen to call it a leak (nor "ok")
    assert v.slope_interval_per_hour[0] > 0 and v.slope_per_hour > v.threshold_per_hour
    assert v.verdict == "inconclusive", v.reason
    assert v.observed_change < v.min_change == 4 * MIB  # a few allocator arenas
    # AND the reason says what rose, in how long, what is needed and how long to run on
    assert v.reason.startswith("rss_bytes rose ") and " in 4 min: too little to tell a leak from warm-up" in v.reason
    assert "needs 4 MiB of observed change" in v.reason and re.search(r"about \d+ more hours? ", v.reason)
    assert v.hours_needed >= 0.5 and "7 days" not in v.reason
    json_ = v.to_json()
    assert json_["observed_change"] == pytest.approx(v.observed_change) and json_["min_change"] == 4 * MIB


def test_short_run_large_leak_is_still_a_leak():
    # GIVEN the demo's leaky stub: 40 KiB kept per request at ~13 requests/s (1.8 GiB/h) on 24 MiB
    t, rss = _demo_generator_rss(leak_bytes_per_h=40 * 1024 * 13 * 3600, level=24 * MIB)
    v = analyze_metric(_frame(t, rss_bytes=rss))
    # THEN four minutes suffice: over 100 MiB was observed
    assert v.verdict == "leak", v.reason
    assert v.observed_change > 100 * MIB and v.slope_per_hour == pytest.approx(1.79 * 2**30, rel=0.05)


def test_hours_needed_is_when_the_trend_would_have_shown_the_minimum_change():
    # GIVEN 30 minutes of a clean 1 %/h rise on 1 GiB (0.5 % seen; a leak verdict needs 1.5 %)
    t = np.arange(0, 1800, 1.0)
    v = analyze_metric(_frame(t, rss_bytes=2**30 * (1 + 0.01 * t / 3600)))
    # THEN it is inconclusive and about 1.5 h - 0.5 h = 1 more hour would decide
    assert v.verdict == "inconclusive" and v.hours_needed == pytest.approx(1.0, rel=0.05)
    # AND two hours of the same line are a leak
    t = np.arange(0, 2 * 3600, 2.0)
    assert analyze_metric(_frame(t, rss_bytes=2**30 * (1 + 0.01 * t / 3600))).verdict == "leak"


def test_leading_descriptor_ramp_is_cut_as_warm_up_in_a_short_run():
    # GIVEN connections 7 -> 15 over the first 5 s, then flat for 4 minutes (0.5-s samples)
    t = np.arange(0, 240, 0.5)
    fds = np.where(t < 5, np.round(7 + 8 * t / 5), 15.0)
    v = analyze_metric(_frame(t, num_fds=fds), "num_fds")
    # THEN the ramp is not part of the trended regime, and the flat rest is no leak; but 4 minutes
    # cannot rule out 0.25 fd/h (one fd takes 4 h): inconclusive only for being too short
    assert v.regime_start >= T0 + 4.0
    assert v.verdict == "inconclusive" and v.too_short, v.reason
    assert "too short to rule out a leak of 0.25 count/h" in v.reason and 7.5 < v.hours_needed < 8.0


@pytest.mark.parametrize("seed", range(4))
def test_cpu_drifting_a_point_in_a_short_run_is_not_a_leak(seed):
    # GIVEN CPU at ~8 % in psutil's 2-point steps, drifting up 1 point over 4 minutes
    t = np.arange(0, 240, 0.5)
    rng = np.random.default_rng(seed)
    cpu = np.round((8 + rng.normal(0, 2, len(t)) + t / 240) / 2) * 2
    v = analyze_metric(_frame(t, cpu_percent=cpu), "cpu_percent")
    # THEN it is not a leak: a leak verdict needs at least 2 points of observed change
    assert v.verdict != "leak", v.reason
    assert v.min_change == 2.0
    if "too little" in v.reason:
        assert re.search(r"rose [0-9.]+ points? \(", v.reason) and "needs 2 points of observed change" in v.reason
