"""Verdicts that hold on real servers: warm-ups are not leaks, slow steady leaks are not "ok",
projections say how far they reach, and the regime keeps a straight line straight.

The cases come from what was seen on real runs: a healthy vLLM whose RSS rose 2.8 -> 3.0 GiB in
3 minutes, slowing (called LEAK, 458 GiB in 7 days); a load generator's start-up (called a leak);
a week at 1 Hz of a 4 GB process with a 2 MiB/h leak under a 250 MB GC sawtooth (called ok after
throwing away half of it as warm-up). Real recordings: tests/fixtures/recordings/ (README.md there).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmsoak.analysis import reason as R
from llmsoak.analysis.corpus import VERDICT_SETS, recordings, sawtooth
from llmsoak.analysis.verdict import MAX_EXTRAPOLATION, analyze_metric
from llmsoak.analysis.wording import trend_cards

MIB, GIB = 2.0**20, 2.0**30
T0 = 1.79e9
RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"


def _frame(t, y, metric="rss_bytes", create_time=T0):
    return pd.DataFrame({"timestamp": T0 + t, metric: y, "pid": 4242.0, "create_time": create_time})


def _engine_warmup(tau_s: float, seconds: float = 180.0, interval_s: float = 1.0, seed: int = 0):
    """RSS rising 2.8 -> 3.0 GiB over ``seconds``, each second a little less (time constant ``tau_s``)."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, seconds, interval_s)
    shape = (1 - np.exp(-t / tau_s)) / (1 - np.exp(-seconds / tau_s))
    y = 2.8 * GIB + 0.2 * GIB * shape + rng.normal(0, 2 * MIB, len(t))
    return t, np.round(y / 4096) * 4096


# ---------------------------------------------------------------- 1. warm-up is not a leak
@pytest.mark.parametrize("tau_s", [60.0, 180.0, 360.0])
def test_an_engine_warming_up_reads_still_warming_up_with_how_long_and_why(tau_s):
    # GIVEN a healthy engine's RSS rising 2.8 -> 3.0 GiB in 3 minutes, growing more slowly as it goes
    t, y = _engine_warmup(tau_s)
    v = analyze_metric(_frame(t, y))
    # THEN it is not a leak: "inconclusive, still warming up", without a 7-day figure
    assert v.verdict == "inconclusive" and v.reason_code == R.WARMING_UP, v.reason
    assert v.reason.startswith("rss_bytes is still warming up: its growth slowed from ")
    assert "7 days" not in v.reason and v.projected_7d is None
    # AND it says on what evidence (slower thirds, a levelling-off curve) and how much longer to run
    first, middle, last = v.warmup.thirds_per_hour
    assert first > middle > last > 0
    assert "each later third grew less than the one before" in v.reason
    assert "a levelling-off curve fits" in v.reason
    assert re.search(r"about \d+ more (minutes?|hours?) of samples would tell whether it levels off", v.reason)
    assert v.hours_needed > 0
    assert v.to_json()["reason_code"] == "warming_up" and v.to_json()["warmup"]["fit_gain"] > 1


def test_a_warm_up_then_a_steady_leak_is_a_leak():
    # GIVEN a cache filling in its first hour (time constant 20 min), then 20 MiB/h for 11 more hours
    t = np.arange(0.0, 12 * 3600, 15.0)
    rng = np.random.default_rng(4)
    y = GIB + 300 * MIB * (1 - np.exp(-t / 1200)) + 20 * MIB * t / 3600 + rng.normal(0, MIB, len(t))
    v = analyze_metric(_frame(t, y))
    # THEN the regime starts after the warm-up and the growth behind it is a leak
    assert v.verdict == "leak", v.reason
    assert v.slope_per_hour == pytest.approx(20 * MIB, rel=0.1)


def test_the_demo_leak_is_a_leak_at_every_checkpoint_and_the_generator_start_up_never_is():
    # GIVEN the real recordings of `llmsoak run` on the demo profiles (the stub, 4 minutes)
    leak = pd.read_csv(RECORDINGS / "stub-leak-4min-target.csv")
    generator = pd.read_csv(RECORDINGS / "stub-healthy-4min-locust.csv")
    for seconds in (60, 120, 180, 240):
        # WHEN analysed as the run's checkpoints and its end would
        cut = {name: df[df["timestamp"] - df["timestamp"].iloc[0] <= seconds].reset_index(drop=True)
               for name, df in (("leak", leak), ("generator", generator))}
        v_leak = analyze_metric(cut["leak"])
        v_gen = analyze_metric(cut["generator"])
        # THEN the stub keeping 40 KiB per request leaks; the generator starting is never a leak
        assert v_leak.verdict == "leak", (seconds, v_leak.reason)
        assert v_gen.verdict == "inconclusive", (seconds, v_gen.reason)


def test_every_labelled_recording_gets_a_verdict_its_label_accepts():
    # GIVEN the recordings listed in tests/fixtures/recordings/*.yaml, each with its label
    series = recordings(RECORDINGS)
    assert len(series) >= 4 and all(s.why for s in series)
    for s in series:
        v = analyze_metric(s.df, s.metric)
        # THEN each verdict is one the label accepts (a healthy run is never a leak)
        assert v.verdict in s.accepts(), (s.name, s.label, v.reason)
        if s.label == "ok":
            assert v.verdict != "leak"


# ---------------------------------------------------------------- 2. slow steady leaks are named
def _week_at_1hz(rate_per_hour=2 * MIB, seed=0):
    """7 days at 1 Hz: 4 GB, a steady leak under a 250 MB GC sawtooth of irregular period, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 7 * 86400, 1.0)
    edges = np.cumsum(rng.uniform(600, 5400, 1200))
    edges = edges[edges < t[-1]]
    k = np.searchsorted(edges, t, side="right")
    start = np.concatenate([[0.0], edges])[k]
    end = np.concatenate([edges, [t[-1] + 3000.0]])[k]
    y = 4e9 + rate_per_hour * t / 3600 + 250e6 * (t - start) / (end - start) + rng.normal(0, 5 * MIB, len(t))
    return t, y


def test_a_week_of_slow_steady_growth_under_a_sawtooth_is_a_slow_leak_over_the_whole_week():
    # GIVEN the week: 2 MiB/h (0.05 %/h) on 4 GB under a 250 MB sawtooth, 604,800 samples
    t, y = _week_at_1hz()
    v = analyze_metric(_frame(t, y))
    # THEN the regime keeps the whole straight line (no "85 h of warm-up" thrown away) ...
    assert v.regime_hours > 0.97 * 168, v.reason
    # ... the slope is measured to within 5 %, and it is named: a slow leak, not "ok"
    assert v.slope_per_hour == pytest.approx(2 * MIB, rel=0.05)
    assert v.verdict == "leak" and v.severity == "slow"
    assert re.search(r"rss_bytes grows 2(\.0\d)? MiB/h .* over 168 h \(7 days\): a slow leak \(\+8\.\d+ % of its level a week\)",
                     v.reason), v.reason
    # WHEN the container's 4.5 GB limit is known THEN severity comes from the time to reach it
    limited = analyze_metric(_frame(t, y), limit=4.5e9)
    assert limited.verdict == "leak" and 60 < limited.hours_to_limit < 90
    assert limited.severity == "fast" and "it reaches the 4.19 GiB limit in" in limited.reason


def test_ok_says_only_what_the_data_rules_out():
    # GIVEN 24 h of a flat 2 GiB process with a little noise
    t = np.arange(0.0, 24 * 3600, 30.0)
    rng = np.random.default_rng(1)
    v = analyze_metric(_frame(t, 2 * GIB + rng.normal(0, 0.2 * MIB, len(t))))
    assert v.verdict == "ok", v.reason
    # THEN "rules out" names the interval's upper end, not the threshold
    hi = v.slope_interval_per_hour[1]
    assert 0 < hi < v.threshold_per_hour
    ruled_out = re.search(r"which rules out growth of ([\d.]+ [KMG]iB)/h or more", v.reason).group(1)
    from llmsoak.formatting import format_value

    assert ruled_out == format_value(hi, "bytes")
    assert f"a leak counts from {format_value(v.threshold_per_hour, 'bytes')}/h" in v.reason


# ---------------------------------------------------------------- 3. a straight line stays straight
@pytest.mark.parametrize("noise", ["student_t", "sawtooth_slow"])
def test_a_straight_leak_keeps_its_whole_length_under_heavy_tails_or_a_slow_sawtooth(noise):
    # GIVEN 48 h of a 1 %/h leak on 1 GiB at 30 s, under heavy-tailed noise or a 3-hour GC sawtooth
    t = np.arange(0.0, 48 * 3600, 30.0)
    rng = np.random.default_rng(5)
    extra = (rng.standard_t(3, len(t)) * 3 * MIB if noise == "student_t"
             else sawtooth(t, 3 * 3600, 80 * MIB) + rng.normal(0, MIB, len(t)))
    v = analyze_metric(_frame(t, GIB + 0.01 * GIB * t / 3600 + extra))
    # THEN the regime is the whole run and the slope is right within 10 %
    assert v.verdict == "leak" and v.regime_hours > 0.95 * 48, v.reason
    assert v.slope_per_hour == pytest.approx(0.01 * GIB, rel=0.10)


# ---------------------------------------------------------------- 4. honest projections
def test_no_projection_far_beyond_the_data_and_the_reason_says_why():
    # GIVEN a clear 1 GiB/h leak seen for 4 minutes
    t = np.arange(0.0, 240.0, 0.5)
    v = analyze_metric(_frame(t, 50 * MIB + GIB * t / 3600))
    # THEN it is a leak, but 4 minutes carried to a week is about 2,500x beyond them: no projection
    assert v.verdict == "leak" and v.extrapolation > MAX_EXTRAPOLATION
    assert v.projected_7d is None and v.projected_interval_7d is None
    assert re.search(r"no 7-day projection: 4 min of data would be carried 2,\d{3}× beyond it", v.reason)


def test_a_projection_says_how_far_it_reaches_and_its_interval_holds_the_truth():
    # GIVEN a process started at the first sample, leaking 10 MiB/h for 24 h (7× short of a week)
    t = np.arange(0.0, 24 * 3600, 20.0)
    rng = np.random.default_rng(2)
    v = analyze_metric(_frame(t, GIB + 10 * MIB * t / 3600 + rng.normal(0, 2 * MIB, len(t))))
    truth = GIB + 10 * MIB * 168
    # THEN the 7-day value is within 5 %, its interval holds the truth, and the reason says the reach
    assert v.verdict == "leak" and v.projected_7d == pytest.approx(truth, rel=0.05)
    lo, hi = v.projected_interval_7d
    assert lo <= truth <= hi
    assert 5 < v.extrapolation < 7 and re.search(r"carried 6× beyond the 2[34](\.\d)? h of data", v.reason)


def test_the_live_cards_show_no_hourly_headline_from_45_seconds():
    # GIVEN 45 s of a process growing 30 MiB/h on 24 MiB (+125 %/h)
    t = np.arange(0.0, 45.0, 0.5)
    v = analyze_metric(_frame(t, 24 * MIB + 30 * MIB * t / 3600))
    cards = {label: (value, cls, note) for label, value, cls, note in trend_cards(v.to_json())}
    # THEN no card shouts a rate per hour: the slope card says what moved in how long
    assert cards["Growth"][:2] == ("—", "muted") and re.fullmatch(r"\(not per hour from 4\d s of data\)", cards["Growth"][2])
    assert re.fullmatch(r"\+\d+(\.\d+)? KiB in 4\d s", cards["Memory slope"][0]), cards["Memory slope"]
    assert "%/h" not in "".join(value for value, _cls, _note in cards.values())
    assert cards["Projected at 7 d"][0] in ("—", "–")


# ---------------------------------------------------------------- the labels themselves
def test_the_corpus_labels_what_the_data_can_decide():
    from llmsoak.analysis.corpus import generate

    corpus = generate(seed=0, per_family=2)
    by_family = {}
    for s in corpus:
        by_family.setdefault(s.family, set()).add(s.expected())
    # a short warm-up still rising at its end can only be "inconclusive"; a fast leak is decidable
    assert by_family["engine_warmup"] == {"inconclusive"}
    assert by_family["short_big_leak"] == {"leak"}
    assert VERDICT_SETS["ok"] == {"ok", "inconclusive"}


def test_a_cgroup_limit_in_the_samples_sets_the_time_to_the_limit_and_the_severity(tmp_path):
    from llmsoak.analysis.run_dir import analyze_samples

    # GIVEN 12 h of a 10 MiB/h leak from 1 GiB, sampled with the container's limit of 1.5 GiB
    t = np.arange(0.0, 12 * 3600, 30.0)
    rng = np.random.default_rng(6)
    df = _frame(t, GIB + 10 * MIB * t / 3600 + rng.normal(0, MIB, len(t)))
    df["cgroup_limit_bytes"] = 1.5 * GIB
    path = tmp_path / "target.csv"
    df.to_csv(path, index=False)
    # WHEN analysed without --limit
    analysis = analyze_samples(path)
    rss = analysis.verdict["metrics"]["rss_bytes"]
    # THEN the limit comes from the samples: (1.5 GiB - 1.12 GiB) / 10 MiB/h ≈ 39 h, a fast leak
    assert analysis.verdict["limit_bytes"] == 1.5 * GIB
    assert 35 < rss["hours_to_limit"] < 43 and rss["severity"] == "fast"
    # AND a --limit given by the user wins
    assert analyze_samples(path, limit=4 * GIB).verdict["metrics"]["rss_bytes"]["severity"] == "moderate"
