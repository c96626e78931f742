"""A labelled corpus of memory-like series covering every known trap: synthetic from a seed, plus real recordings.

Used by tests/analysis/test_analysis_accuracy.py and the benchmarks (baselines, detection limits).
Each series is a samples-CSV-shaped DataFrame (timestamp, the metric, pid, create_time) with its
truth ("leak": grows without bound at ``true_slope_per_hour``; "bounded": noise, GC sawtooth,
warm-up, cache fill, a single step, a staircase that stops, diurnal load, restarts) and what the
data can support: ``CorpusSeries.accepts(limit)`` is the set of verdicts that are right for it,

- a leak whose growth over the run clearly exceeds both the minimum observed change a leak verdict
  needs and the noise: {"leak"}; one that grew too little to tell: {"inconclusive"} (never "ok");
- a bounded series: {"ok", "inconclusive"} ("leak" is a false alarm), but {"inconclusive"} while it
  still rises at the end faster than the practical threshold (a warm-up that has not levelled off:
  "ok" would claim what the data does not show);
- a leak within a factor 1.5 of the practical threshold: any verdict (the data sits on the line).

The families of the first generation (``generate``'s first loop, 6-96 h, every leak >= 0.25 %/h;
``_short_runs``, 3 min to 1 h) are unchanged; later ones (``_slow_and_warmup_runs``) add the traps of
real servers: slow steady leaks of 0.01-0.1 %/h over 1-7 days with and without a GC sawtooth (and
the 1-Hz week of a 4 GB process), concave warm-ups of several lengths and sizes, a load
generator's start-up and a real engine's warm-up (vLLM: 2.8 -> 3.0 GiB in 3 minutes, slowing).
``recordings`` loads real samples files listed in ``tests/fixtures/recordings/*.yaml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmsoak.analysis.metric_specs import metric_spec
from llmsoak.analysis.verdict import practical_threshold

T0 = 1.7e9  # Unix s of the first sample
HOUR = 3600.0
MIB = 1024.0 * 1024.0
GIB = 1024.0 * MIB
PAGE = 4096.0
LENGTH_CLASSES = ("short", "medium", "long")
"""short: under 1 h; medium: 1 h to 24 h; long: 24 h and more (by the series' duration)."""
VERDICT_SETS = {"leak": frozenset({"leak"}), "ok": frozenset({"ok", "inconclusive"}),
                "inconclusive": frozenset({"inconclusive"}), "any": frozenset({"leak", "ok", "inconclusive"})}
NEAR_THRESHOLD = 1.5  # a true slope within this factor of the practical threshold: any verdict
CLEAR_CHANGE = 1.25  # a decidable leak grows this many times the minimum observed change ...
CLEAR_NOISE_SDS = 6.0  # ... and this many noise standard deviations over the run


@dataclass(frozen=True, eq=False)
class CorpusSeries:
    """One labelled series. Rates per hour in the metric's unit; ``true_projected_7d`` is the
    noise-free value (of the lower envelope) at 168 h of uptime, when known."""

    name: str
    family: str
    truth: str  # "leak" | "bounded"
    df: object  # pandas.DataFrame
    true_slope_per_hour: float
    true_projected_7d: float | None
    clean: bool = False
    """A steady linear leak: slope and projection accuracy are checked on these."""
    metric: str = "rss_bytes"
    """The column of ``df`` that holds the series."""
    level: float | None = None
    """The series' base level (metric unit): the practical threshold and minimum change refer to it."""
    noise_sd: float = 0.0
    """Standard deviation of the noise left after the lower envelope (metric unit)."""
    effective_hours: float | None = None
    """Hours in which the leak shows (the duration minus a warm-up); None: the whole duration."""
    end_slope_per_hour: float = 0.0
    """A bounded series' true growth rate at its last sample (a warm-up still rising)."""
    limit: float | None = None
    """A memory limit for the "with a limit" runs (None: the metric has none)."""
    also_inconclusive: bool = False
    """A leak behind a warm-up that still shows halfway through: "inconclusive" is right too."""
    source: str = "synthetic"
    """"synthetic", or the recording's file name."""
    label: str | None = None
    """For a recording: its label from the index file (leak, ok, inconclusive, any); else derived."""
    why: str = ""

    @property
    def hours(self) -> float:
        t = self.df["timestamp"]
        return float(t.iloc[-1] - t.iloc[0]) / HOUR

    @property
    def length_class(self) -> str:
        return "short" if self.hours < 1 else ("medium" if self.hours < 24 else "long")

    def accepts(self, limit: float | None = None) -> frozenset[str]:
        """The verdicts that are right for this series analysed with ``limit`` (see the module docstring)."""
        if self.label is not None:
            return VERDICT_SETS[self.label]
        spec = metric_spec(self.metric)
        level = self.level if self.level is not None else float(np.nanmedian(self.df[self.metric]))
        threshold = practical_threshold(spec, level, limit)
        if self.truth == "bounded":
            return VERDICT_SETS["inconclusive" if abs(self.end_slope_per_hour) >= threshold else "ok"]
        slope = self.true_slope_per_hour
        if slope < threshold / NEAR_THRESHOLD:
            return VERDICT_SETS["ok"]  # slower than a leak by definition
        if slope < threshold * NEAR_THRESHOLD:
            return VERDICT_SETS["any"]
        min_change = max(spec.min_change_pct / 100.0 * abs(level), spec.min_change_abs)
        hours = self.effective_hours if self.effective_hours is not None else self.hours
        grown = slope * max(hours, 0.0)
        if grown >= max(CLEAR_CHANGE * min_change, CLEAR_NOISE_SDS * self.noise_sd):
            return frozenset({"leak", "inconclusive"}) if self.also_inconclusive else VERDICT_SETS["leak"]
        if grown <= max(min_change / CLEAR_CHANGE, CLEAR_NOISE_SDS / 2 * self.noise_sd):
            return VERDICT_SETS["inconclusive"]
        return frozenset({"leak", "inconclusive"})

    def expected(self, limit: float | None = None) -> str:
        """A one-word label for tables: leak, ok, inconclusive, or "either" (no verdict required)."""
        acc = self.accepts(limit)
        return next((k for k in ("leak", "ok", "inconclusive") if acc == VERDICT_SETS[k]), "either")


def ar1(n: int, phi: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """AR(1) noise with lag-1 correlation ``phi`` and marginal standard deviation ``sigma``."""
    if not 0 <= phi < 1:
        raise ValueError(f"phi must be in [0, 1), got {phi}")
    w = rng.normal(0.0, sigma * np.sqrt(1 - phi * phi), n + 1)
    if phi == 0:
        return w[:n]
    k = int(min(n, np.ceil(np.log(1e-6) / np.log(phi))))
    kernel = phi ** np.arange(k)
    burn = rng.normal(0.0, sigma, 1)[0]
    out = np.convolve(w[1:], kernel)[:n]
    return out + burn * phi ** np.arange(1, n + 1)


def sawtooth(t_s: np.ndarray, period_s: float, amplitude: float, phase: float = 0.0) -> np.ndarray:
    """GC-like sawtooth: rises linearly by ``amplitude`` over ``period_s``, then drops back."""
    return amplitude * (((t_s / period_s) + phase) % 1.0)


def _frame(t_s, y, pid=None, create_time=None, metric="rss_bytes"):
    import pandas as pd

    data = {"timestamp": T0 + t_s, metric: np.maximum(y, 0.0)}
    data["pid"] = np.full(len(t_s), 1000.0) if pid is None else pid
    data["create_time"] = np.full(len(t_s), T0) if create_time is None else create_time
    return pd.DataFrame(data)


def _times(rng, hours, interval_s, jitter=False):
    t = np.arange(0.0, hours * HOUR, interval_s)
    if jitter:
        t = t + rng.uniform(-0.3, 0.3, len(t)) * interval_s
        t = np.sort(np.clip(t, 0, None))
    return t


def generate(seed: int = 0, per_family: int = 12, *, later: bool = True) -> list[CorpusSeries]:
    """The labelled corpus: ``per_family`` series for each family (``later=False``: only the first
    generation's families, 23 × ``per_family`` series, for comparisons with earlier figures)."""
    rng = np.random.default_rng(seed)
    out: list[CorpusSeries] = []

    def pick(*values):
        return values[int(rng.integers(len(values)))]

    for i in range(per_family):
        level = rng.uniform(3e8, 3e9)
        hours = pick(6, 12, 24, 48)
        interval = pick(10, 15, 30)
        # --- leaks --------------------------------------------------------------------------
        rate = level * rng.uniform(0.003, 0.03)  # 0.3-3 %/h
        t = _times(rng, hours, interval)
        y = level + rate * t / HOUR + rng.normal(0, 0.001 * level, len(t))
        out.append(CorpusSeries(f"linear_clean_{i}", "linear_clean", "leak", _frame(t, y), rate,
                                level + rate * 168, clean=True, level=level, noise_sd=0.001 * level))

        phi = pick(0.5, 0.9, 0.98)
        hours_ar = pick(12, 24, 48)
        t = _times(rng, hours_ar, interval)
        rate = level * rng.uniform(0.0025, 0.02)
        y = level + rate * t / HOUR + ar1(len(t), phi, 0.005 * level, rng)
        out.append(CorpusSeries(f"linear_ar{phi}_{i}", "linear_ar", "leak", _frame(t, y), rate, level + rate * 168,
                                level=level, noise_sd=0.005 * level))

        t = _times(rng, hours, interval)
        rate = level * rng.uniform(0.003, 0.02)
        teeth = sawtooth(t, rng.uniform(120, 1200), level * rng.uniform(0.02, 0.1), rng.uniform())
        y = level + rate * t / HOUR + teeth + rng.normal(0, 0.002 * level, len(t))
        out.append(CorpusSeries(f"sawtooth_leak_{i}", "sawtooth_leak", "leak", _frame(t, y), rate, None,
                                level=level, noise_sd=0.002 * level))

        t = _times(rng, max(hours, 12), interval)
        tau_h = rng.uniform(0.3, 1.5)
        rate = level * rng.uniform(0.003, 0.02)
        size = level * rng.uniform(0.1, 0.5)
        warm = size * (1 - np.exp(-t / HOUR / tau_h))
        y = level + warm + rate * t / HOUR + ar1(len(t), 0.9, 0.003 * level, rng)
        # Still a quarter of the growth halfway through: "still warming up" is a fair answer too.
        mid_slope = size / tau_h * np.exp(-t[-1] / HOUR / 2 / tau_h)
        out.append(CorpusSeries(f"warmup_leak_{i}", "warmup_leak", "leak", _frame(t, y), rate, None,
                                level=level, noise_sd=0.003 * level, effective_hours=t[-1] / HOUR - 5 * tau_h,
                                also_inconclusive=mid_slope >= 0.25 * rate))

        period_h = pick(3, 4, 6, 8)
        t = _times(rng, pick(24, 36, 48), interval)
        rate = level * rng.uniform(0.005, 0.03)
        seg = np.floor(t / HOUR / period_h)
        since = t - seg * period_h * HOUR
        y = level + rate * since / HOUR + ar1(len(t), 0.5, 0.002 * level, rng)
        out.append(CorpusSeries(f"restarts_leak_{i}", "restarts_leak", "leak",
                                _frame(t, y, pid=1000 + seg, create_time=T0 + seg * period_h * HOUR),
                                rate, level + rate * 168, level=level, noise_sd=0.002 * level))

        t = _times(rng, max(hours, 12), interval, jitter=True)
        keep = np.ones(len(t), dtype=bool)
        for _ in range(3):
            start = rng.uniform(0.1, 0.9) * t[-1]
            keep &= ~((t > start) & (t < start + rng.uniform(0.5, 2.0) * HOUR))
        t = t[keep]
        rate = level * rng.uniform(0.003, 0.02)
        y = level + rate * t / HOUR + ar1(len(t), 0.7, 0.003 * level, rng)
        out.append(CorpusSeries(f"gaps_leak_{i}", "gaps_leak", "leak", _frame(t, y), rate, level + rate * 168,
                                level=level, noise_sd=0.003 * level))

        t = _times(rng, pick(48, 72), pick(30, 60))
        rate = level * rng.uniform(0.003, 0.015)
        diurnal = level * rng.uniform(0.03, 0.15) * np.sin(2 * np.pi * t / (24 * HOUR) + rng.uniform(0, 6.3))
        y = level + rate * t / HOUR + diurnal + ar1(len(t), 0.9, 0.003 * level, rng)
        out.append(CorpusSeries(f"diurnal_leak_{i}", "diurnal_leak", "leak", _frame(t, y), rate, None,
                                level=level, noise_sd=0.003 * level))

        t = _times(rng, max(hours, 12), interval)
        step_h = rng.uniform(0.5, 2.0)
        step = level * rng.uniform(0.005, 0.02)
        y = level + step * np.floor(t / HOUR / step_h) + rng.normal(0, 0.001 * level, len(t))
        out.append(CorpusSeries(f"staircase_leak_{i}", "staircase_leak", "leak", _frame(t, y),
                                step / step_h, None, level=level, noise_sd=step))

        # --- no leak ------------------------------------------------------------------------
        t = _times(rng, hours, interval)
        y = level + rng.normal(0, rng.uniform(0.001, 0.02) * level, len(t))
        out.append(CorpusSeries(f"white_{i}", "white_noise", "bounded", _frame(t, y), 0.0, level, level=level))

        phi = pick(0.9, 0.95, 0.98, 0.995)
        t = _times(rng, hours, interval)
        y = level + ar1(len(t), phi, rng.uniform(0.002, 0.01) * level, rng)
        out.append(CorpusSeries(f"ar{phi}_{i}", "ar_noise", "bounded", _frame(t, y), 0.0, level, level=level))

        t = _times(rng, hours, interval)
        teeth = sawtooth(t, rng.uniform(120, 1800), level * rng.uniform(0.02, 0.2), rng.uniform())
        y = level + teeth + rng.normal(0, 0.002 * level, len(t))
        out.append(CorpusSeries(f"sawtooth_{i}", "sawtooth", "bounded", _frame(t, y), 0.0, None, level=level))

        t = _times(rng, max(hours, 12), interval)
        tau_h = rng.uniform(0.2, max(hours, 12) / 10)
        size = level * rng.uniform(0.1, 0.8)
        warm = size * (1 - np.exp(-t / HOUR / tau_h))
        y = level + warm + ar1(len(t), 0.8, 0.003 * level, rng)
        out.append(CorpusSeries(f"warmup_flat_{i}", "warmup_flat", "bounded", _frame(t, y), 0.0, None, level=level,
                                end_slope_per_hour=size / tau_h * np.exp(-t[-1] / HOUR / tau_h)))

        t = _times(rng, hours, interval)
        fill_end = rng.uniform(0.1, 0.4) * t[-1]
        fill = level * rng.uniform(0.1, 0.5) * np.minimum(t / fill_end, 1.0)
        y = level + fill + ar1(len(t), 0.8, 0.003 * level, rng)
        out.append(CorpusSeries(f"cache_fill_{i}", "cache_fill", "bounded", _frame(t, y), 0.0, None, level=level))

        t = _times(rng, hours, interval)
        at = rng.uniform(0.2, 0.6) * t[-1]
        y = level + (t > at) * level * rng.uniform(0.05, 0.3) + ar1(len(t), 0.8, 0.003 * level, rng)
        out.append(CorpusSeries(f"single_step_{i}", "single_step", "bounded", _frame(t, y), 0.0, None, level=level))

        t = _times(rng, max(hours, 12), interval)
        n_steps = int(rng.integers(3, 6))
        edges = np.sort(rng.uniform(0.05, 0.5, n_steps)) * t[-1]
        stairs = (t[:, None] > edges[None, :]).sum(axis=1) * level * rng.uniform(0.02, 0.08)
        y = level + stairs + rng.normal(0, 0.002 * level, len(t))
        out.append(CorpusSeries(f"staircase_stops_{i}", "staircase_stops", "bounded", _frame(t, y), 0.0, None,
                                level=level))

        t = _times(rng, pick(48, 72, 96), pick(30, 60))
        diurnal = level * rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * t / (24 * HOUR) + rng.uniform(0, 6.3))
        y = level + diurnal + ar1(len(t), 0.9, 0.003 * level, rng)
        out.append(CorpusSeries(f"diurnal_{i}", "diurnal", "bounded", _frame(t, y), 0.0, None, level=level))

        period_h = pick(3, 4, 6, 8)
        t = _times(rng, pick(24, 36, 48), interval)
        seg = np.floor(t / HOUR / period_h)
        since = t - seg * period_h * HOUR
        size, tau_h = level * rng.uniform(0.1, 0.4), rng.uniform(0.1, 0.4)
        warm = size * (1 - np.exp(-since / HOUR / tau_h))
        y = level + warm + ar1(len(t), 0.8, 0.003 * level, rng)
        out.append(CorpusSeries(f"restarts_ok_{i}", "restarts_ok", "bounded",
                                _frame(t, y, pid=1000 + seg, create_time=T0 + seg * period_h * HOUR), 0.0, None,
                                level=level, end_slope_per_hour=size / tau_h * np.exp(-since[-1] / HOUR / tau_h)))
    # A separate stream, so that the families above are the same series whatever is added here.
    short_rng = np.random.default_rng([seed, 1])
    for i in range(per_family):
        out.extend(_short_runs(short_rng, i))
    if later:
        later_rng = np.random.default_rng([seed, 2])
        for i in range(per_family):
            out.extend(_slow_and_warmup_runs(later_rng, i, weeks_at_1hz=i < max(1, per_family // 6)))
    # A limit for the "with a limit" runs: 5 % to 100 % above the memory's level.
    limit_rng = np.random.default_rng([seed, 3])
    return [dataclasses.replace(c, limit=c.level * (1 + limit_rng.uniform(0.05, 1.0)))
            if c.metric.endswith("_bytes") and c.level else c for c in out]


def _short_runs(rng: np.random.Generator, i: int) -> list[CorpusSeries]:
    """One series of each short-run family (3 min to 1 h): four bounded traps and two real leaks."""
    out = []

    def pick(*values):
        return values[int(rng.integers(len(values)))]

    def short_times():
        minutes = pick(3, 4, 10, 20, 30, 60)
        return _times(rng, minutes / 60, pick(0.5, 1.0, 2.0, 5.0) if minutes <= 10 else pick(1.0, 2.0, 5.0))

    # --- no leak: a flat RSS with a few allocator steps (64 KiB - 1 MiB each, in all at most
    # max(1 % of the level, 1 MiB)), page-rounded, plus a short start-up ramp of the first samples
    t = short_times()
    level = rng.uniform(20, 2048) * MIB
    n_steps = int(rng.integers(1, 7))
    total = min(rng.uniform(0.3, 1.0) * max(0.01 * level, MIB), n_steps * MIB)
    sizes = rng.dirichlet(np.ones(n_steps)) * total
    at = np.sort(rng.uniform(0.02, 0.98, n_steps)) * t[-1]
    steps = (t[:, None] > at[None, :]) @ sizes
    start = np.minimum(t / max(rng.uniform(0.5, 3.0) * (t[1] - t[0]), 1e-9), 1.0) * 0.6 + 0.4
    y = np.round((level * start + steps + rng.normal(0, 2 * PAGE, len(t))) / PAGE) * PAGE
    out.append(CorpusSeries(f"short_alloc_steps_{i}", "short_alloc_steps", "bounded", _frame(t, y), 0.0, None,
                            level=level))

    # --- no leak: a slow saturating warm-up of 0.3-2 % of the level (time constant 0.2-1 × the run)
    t = short_times()
    level = rng.uniform(20, 2048) * MIB
    tau = rng.uniform(0.2, 1.0) * t[-1]
    size = rng.uniform(0.003, 0.02) * level
    warm = size * (1 - np.exp(-t / tau))
    y = np.round((level + warm + ar1(len(t), 0.5, 0.0005 * level, rng)) / PAGE) * PAGE
    out.append(CorpusSeries(f"short_warmup_{i}", "short_warmup", "bounded", _frame(t, y), 0.0, None, level=level,
                            end_slope_per_hour=size / tau * HOUR * np.exp(-t[-1] / tau)))

    # --- no leak: file descriptors ramping 3-10 → 8-40 in the first 1-5 % of the run (connections
    # opening), then flat with an occasional extra connection for a sample or two
    t = short_times()
    base = float(rng.integers(3, 11))
    top = base + float(rng.integers(5, 31))
    ramp_s = rng.uniform(0.01, 0.05) * t[-1]
    fds = np.round(base + (top - base) * np.minimum(t / ramp_s, 1.0))
    fds += (rng.uniform(size=len(t)) < rng.uniform(0.0, 0.05)) * rng.integers(1, 3, len(t))
    out.append(CorpusSeries(f"short_fd_ramp_{i}", "short_fd_ramp", "bounded", _frame(t, fds, metric="num_fds"),
                            0.0, None, metric="num_fds", level=top))

    # --- no leak: CPU at 5-60 % in psutil's 2-point steps, drifting by at most 1.5 points as the
    # load settles (up or down)
    t = short_times()
    level = rng.uniform(5, 60)
    size, tau = rng.uniform(-1.5, 1.5), rng.uniform(0.3, 1.0) * t[-1]
    drift = size * (1 - np.exp(-t / tau))
    cpu = np.clip(np.round((level + drift + rng.normal(0, rng.uniform(0.5, 3.0), len(t))) / 2) * 2, 0, None)
    out.append(CorpusSeries(f"short_cpu_{i}", "short_cpu", "bounded", _frame(t, cpu, metric="cpu_percent"), 0.0,
                            None, metric="cpu_percent", level=level,
                            end_slope_per_hour=size / tau * HOUR * np.exp(-t[-1] / tau)))

    # --- leak: a stub keeping 10-80 KiB per request at 2-20 requests/s on 20-60 MiB (the demo's
    # leak: 40 KiB at ~13 requests/s, 1.8 GiB/h), page-rounded, with the allocator's 128 KiB steps
    t = short_times()
    level = rng.uniform(20, 60) * MIB
    rate = rng.uniform(10, 80) * 1024 * rng.uniform(2, 20) * HOUR  # bytes per hour
    kept = np.floor(rate * t / HOUR / (128 * 1024)) * 128 * 1024
    y = np.round((level + kept + rng.normal(0, 2 * PAGE, len(t))) / PAGE) * PAGE
    out.append(CorpusSeries(f"short_big_leak_{i}", "short_big_leak", "leak", _frame(t, y), rate,
                            level + rate * 168, level=level, noise_sd=128 * 1024))

    # --- leak: a descriptor per 2-30 s never closed, after the same start-up ramp as above
    t = short_times()
    base = float(rng.integers(3, 11))
    top = base + float(rng.integers(5, 31))
    every_s = rng.uniform(2, 30)
    fds = np.round(base + (top - base) * np.minimum(t / (0.03 * t[-1]), 1.0)) + np.floor(t / every_s)
    out.append(CorpusSeries(f"short_fd_leak_{i}", "short_fd_leak", "leak", _frame(t, fds, metric="num_fds"),
                            HOUR / every_s, None, metric="num_fds", level=top, noise_sd=1.0,
                            effective_hours=0.97 * t[-1] / HOUR))
    return out


def _slow_and_warmup_runs(rng: np.random.Generator, i: int, weeks_at_1hz: bool) -> list[CorpusSeries]:
    """One series of each later family: slow steady leaks (0.01-0.1 %/h, 1-7 days, with and without a
    GC sawtooth; with ``weeks_at_1hz`` also a 1-Hz week of a 4 GB process), concave warm-ups of
    several lengths and sizes, a load generator's start-up and a real engine's warm-up."""
    out = []

    def pick(*values):
        return values[int(rng.integers(len(values)))]

    def page(y):
        return np.round(y / PAGE) * PAGE

    # --- leak: slow and steady, 0.01-0.1 %/h (log-uniform) of 2-8 GiB for 1-7 days, AR(1) noise
    level = rng.uniform(2, 8) * GIB
    pct = 10 ** rng.uniform(-2, -1)
    rate = level * pct / 100
    hours = pick(24, 48, 72, 120, 168)
    t = _times(rng, hours, pick(30, 60, 120))
    sd = rng.uniform(0.0005, 0.003) * level
    y = level + rate * t / HOUR + ar1(len(t), pick(0.5, 0.9), sd, rng)
    out.append(CorpusSeries(f"slow_leak_{i}", "slow_leak", "leak", _frame(t, page(y)), rate, level + rate * 168,
                            clean=True, level=level, noise_sd=sd))

    # --- leak: the same under a GC sawtooth of 1-6 % of the level every 5-60 minutes
    level = rng.uniform(2, 8) * GIB
    pct = 10 ** rng.uniform(-2, -1)
    rate = level * pct / 100
    t = _times(rng, pick(24, 72, 168), pick(10, 15, 30))
    sd = rng.uniform(0.0002, 0.001) * level
    teeth = sawtooth(t, rng.uniform(300, 3600), rng.uniform(0.01, 0.06) * level, rng.uniform())
    y = level + rate * t / HOUR + teeth + rng.normal(0, sd, len(t))
    out.append(CorpusSeries(f"slow_leak_sawtooth_{i}", "slow_leak_sawtooth", "leak", _frame(t, page(y)), rate,
                            level + rate * 168, clean=True, level=level, noise_sd=sd))

    if weeks_at_1hz:
        # --- leak: the week at 1 Hz: 4 GB, 1-4 MiB/h under a 250 MB sawtooth of irregular period
        level = 4e9
        rate = rng.uniform(1, 4) * MIB
        t = np.arange(0.0, 168 * HOUR, 1.0)
        edges = np.cumsum(rng.uniform(600, 5400, 1200))
        edges = edges[edges < t[-1]]
        k = np.searchsorted(edges, t, side="right")
        start = np.concatenate([[0.0], edges])[k]
        end = np.concatenate([edges, [t[-1] + 3000.0]])[k]
        y = level + rate * t / HOUR + 250e6 * (t - start) / (end - start) + rng.normal(0, 5 * MIB, len(t))
        out.append(CorpusSeries(f"week_1hz_{i}", "week_1hz", "leak", _frame(t, page(y)), rate, level + rate * 168,
                                clean=True, level=level, noise_sd=5 * MIB))

    # --- bounded: a concave warm-up of 1-30 % of the level over 6 min to 48 h, time constant 0.05-1.5 × the run
    level = rng.uniform(0.2, 8) * GIB
    hours = pick(0.1, 0.5, 2, 6, 24, 48)
    t = _times(rng, hours, float(np.clip(hours * HOUR / rng.uniform(300, 2000), 0.5, 60)))
    size = rng.uniform(0.01, 0.3) * level
    tau_h = rng.uniform(0.05, 1.5) * hours
    y = level + size * (1 - np.exp(-t / HOUR / tau_h)) + ar1(len(t), 0.8, rng.uniform(0.0002, 0.003) * level, rng)
    out.append(CorpusSeries(f"warmup_concave_{i}", "warmup_concave", "bounded", _frame(t, page(y)), 0.0, None,
                            level=level, end_slope_per_hour=size / tau_h * np.exp(-t[-1] / HOUR / tau_h)))

    # --- bounded: a load generator starting (Locust: 25 -> 55 MiB in seconds, then 1-3 MiB more, slowing)
    base = rng.uniform(20, 40) * MIB
    jump, tau1 = rng.uniform(20, 35) * MIB, rng.uniform(2, 5)
    slow, tau2 = rng.uniform(1, 3) * MIB, rng.uniform(60, 300)
    t = _times(rng, pick(2, 3, 4, 6, 10) / 60, pick(0.5, 1.0))
    y = base + jump * (1 - np.exp(-t / tau1)) + slow * (1 - np.exp(-t / tau2)) + rng.normal(0, 2 * PAGE, len(t))
    out.append(CorpusSeries(f"generator_startup_{i}", "generator_startup", "bounded", _frame(t, page(y)), 0.0, None,
                            level=base + jump, end_slope_per_hour=slow / tau2 * HOUR * np.exp(-t[-1] / tau2)))

    # --- bounded: a real engine warming up (vLLM: RSS 2.8 -> 3.0 GiB in 3 minutes, growing more slowly)
    level = rng.uniform(2.5, 3.5) * GIB
    minutes = pick(2, 3, 5, 10)
    t = _times(rng, minutes / 60, pick(0.5, 1.0))
    size, tau = rng.uniform(0.03, 0.1) * level, rng.uniform(0.3, 2.0) * minutes * 60
    y = level + size * (1 - np.exp(-t / tau)) / (1 - np.exp(-t[-1] / tau)) + rng.normal(0, rng.uniform(0.5, 4) * MIB, len(t))
    end_slope = size / (1 - np.exp(-t[-1] / tau)) / tau * HOUR * np.exp(-t[-1] / tau)
    out.append(CorpusSeries(f"engine_warmup_{i}", "engine_warmup", "bounded", _frame(t, page(y)), 0.0, None,
                            level=level, end_slope_per_hour=end_slope))
    return out


def recordings(directory: str | Path) -> list[CorpusSeries]:
    """Real recordings listed in ``directory/*.yaml`` (entries: file, metric, label, why).

    ``label`` is leak, ok (also: healthy, bounded), inconclusive or any; see ``CorpusSeries.accepts``.
    An index file is a list of entries, or a mapping with one list of them.
    """
    import pandas as pd
    import yaml

    aliases = {"healthy": "ok", "bounded": "ok"}
    out = []
    directory = Path(directory)
    for index in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(index.read_text()) or []
        entries = data if isinstance(data, list) else next((v for v in data.values() if isinstance(v, list)), [])
        for entry in entries:
            label = aliases.get(str(entry["label"]), str(entry["label"]))
            if label not in VERDICT_SETS:
                raise ValueError(f"{index.name}: {entry['file']}: unknown label {entry['label']!r}")
            metric = entry.get("metric", "rss_bytes")
            df = pd.read_csv(directory / entry["file"])
            cols = ["timestamp", metric] + [c for c in ("pid", "create_time") if c in df.columns]
            df = df[cols].dropna(subset=[metric]).reset_index(drop=True)
            truth = "leak" if label == "leak" else "bounded"
            out.append(CorpusSeries(f"{entry['file']}:{metric}", entry.get("family", "recording"), truth, df,
                                    0.0, None, metric=metric, source=entry["file"], label=label,
                                    why=str(entry.get("why", ""))))
    return out


def leak_series(rate_pct_per_hour: float, hours: float, noise_pct: float, phi: float,
                interval_s: float = 30.0, seed: int = 0, level: float = 1e9):
    """One linear leak in AR(1) noise (for detection-limit tables): a samples DataFrame."""
    rng = np.random.default_rng(seed)
    t = _times(rng, hours, interval_s)
    y = level * (1 + rate_pct_per_hour / 100 * t / HOUR) + ar1(len(t), phi, noise_pct / 100 * level, rng)
    return _frame(t, y)
