"""A labelled corpus of synthetic memory series, generated from a seed, covering every known trap.

Used by tests/analysis/test_analysis_accuracy.py and benchmarks/detection_limits.py. Each series is a
samples-CSV-shaped DataFrame (timestamp, rss_bytes, pid, create_time) with its true label:
"leak" (memory grows without bound at ``true_slope_per_hour``) or "ok" (bounded: noise, GC
sawtooth, warm-up, cache fill, a single step, a staircase that stops, diurnal load, restarts).
Rates are relative to the level: the practical threshold is 0.1 %/h, so every leak here grows
at 0.25 %/h or more (42 % a week) and every "ok" series is bounded.

The short-run families (``_short_runs``: 3 minutes to 1 hour at 0.5-5 s sampling) hold the trap
of a demo or a smoke test: a healthy process whose memory rises a little (allocator steps, a slow
warm-up of at most 2 % of its level) or whose counts ramp up in the first seconds, and a CPU that
drifts by a point or two; next to leaks that such runs must still catch (a stub keeping 40 KiB
per request: gigabytes an hour on tens of MiB; file descriptors opened and never closed). Some
of them sample ``num_fds`` or ``cpu_percent`` instead of ``rss_bytes``: ``CorpusSeries.metric``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

T0 = 1.7e9  # Unix s of the first sample
HOUR = 3600.0


@dataclass(frozen=True, eq=False)
class CorpusSeries:
    """One labelled series. Rates in bytes per hour; ``projected_7d`` is the noise-free value at 168 h."""

    name: str
    family: str
    label: str  # "leak" | "ok"
    df: object  # pandas.DataFrame
    true_slope_per_hour: float
    true_projected_7d: float | None
    clean: bool = False
    """A plain linear leak with little noise: slope and projection accuracy are checked on these."""
    metric: str = "rss_bytes"
    """The column of ``df`` that holds the series."""


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


def generate(seed: int = 0, per_family: int = 12) -> list[CorpusSeries]:
    """The labelled corpus: ``per_family`` series for each of the leak and non-leak families."""
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
                                level + rate * 168, clean=True))

        phi = pick(0.5, 0.9, 0.98)
        hours_ar = pick(12, 24, 48)
        t = _times(rng, hours_ar, interval)
        rate = level * rng.uniform(0.0025, 0.02)
        y = level + rate * t / HOUR + ar1(len(t), phi, 0.005 * level, rng)
        out.append(CorpusSeries(f"linear_ar{phi}_{i}", "linear_ar", "leak", _frame(t, y), rate, level + rate * 168))

        t = _times(rng, hours, interval)
        rate = level * rng.uniform(0.003, 0.02)
        teeth = sawtooth(t, rng.uniform(120, 1200), level * rng.uniform(0.02, 0.1), rng.uniform())
        y = level + rate * t / HOUR + teeth + rng.normal(0, 0.002 * level, len(t))
        out.append(CorpusSeries(f"sawtooth_leak_{i}", "sawtooth_leak", "leak", _frame(t, y), rate, None))

        t = _times(rng, max(hours, 12), interval)
        tau_h = rng.uniform(0.3, 1.5)
        rate = level * rng.uniform(0.003, 0.02)
        warm = level * rng.uniform(0.1, 0.5) * (1 - np.exp(-t / HOUR / tau_h))
        y = level + warm + rate * t / HOUR + ar1(len(t), 0.9, 0.003 * level, rng)
        out.append(CorpusSeries(f"warmup_leak_{i}", "warmup_leak", "leak", _frame(t, y), rate, None))

        period_h = pick(3, 4, 6, 8)
        t = _times(rng, pick(24, 36, 48), interval)
        rate = level * rng.uniform(0.005, 0.03)
        seg = np.floor(t / HOUR / period_h)
        since = t - seg * period_h * HOUR
        y = level + rate * since / HOUR + ar1(len(t), 0.5, 0.002 * level, rng)
        out.append(CorpusSeries(f"restarts_leak_{i}", "restarts_leak", "leak",
                                _frame(t, y, pid=1000 + seg, create_time=T0 + seg * period_h * HOUR),
                                rate, level + rate * 168))

        t = _times(rng, max(hours, 12), interval, jitter=True)
        keep = np.ones(len(t), dtype=bool)
        for _ in range(3):
            start = rng.uniform(0.1, 0.9) * t[-1]
            keep &= ~((t > start) & (t < start + rng.uniform(0.5, 2.0) * HOUR))
        t = t[keep]
        rate = level * rng.uniform(0.003, 0.02)
        y = level + rate * t / HOUR + ar1(len(t), 0.7, 0.003 * level, rng)
        out.append(CorpusSeries(f"gaps_leak_{i}", "gaps_leak", "leak", _frame(t, y), rate, level + rate * 168))

        t = _times(rng, pick(48, 72), pick(30, 60))
        rate = level * rng.uniform(0.003, 0.015)
        diurnal = level * rng.uniform(0.03, 0.15) * np.sin(2 * np.pi * t / (24 * HOUR) + rng.uniform(0, 6.3))
        y = level + rate * t / HOUR + diurnal + ar1(len(t), 0.9, 0.003 * level, rng)
        out.append(CorpusSeries(f"diurnal_leak_{i}", "diurnal_leak", "leak", _frame(t, y), rate, None))

        t = _times(rng, max(hours, 12), interval)
        step_h = rng.uniform(0.5, 2.0)
        step = level * rng.uniform(0.005, 0.02)
        y = level + step * np.floor(t / HOUR / step_h) + rng.normal(0, 0.001 * level, len(t))
        out.append(CorpusSeries(f"staircase_leak_{i}", "staircase_leak", "leak", _frame(t, y),
                                step / step_h, None))

        # --- no leak ------------------------------------------------------------------------
        t = _times(rng, hours, interval)
        y = level + rng.normal(0, rng.uniform(0.001, 0.02) * level, len(t))
        out.append(CorpusSeries(f"white_{i}", "white_noise", "ok", _frame(t, y), 0.0, level))

        phi = pick(0.9, 0.95, 0.98, 0.995)
        t = _times(rng, hours, interval)
        y = level + ar1(len(t), phi, rng.uniform(0.002, 0.01) * level, rng)
        out.append(CorpusSeries(f"ar{phi}_{i}", "ar_noise", "ok", _frame(t, y), 0.0, level))

        t = _times(rng, hours, interval)
        teeth = sawtooth(t, rng.uniform(120, 1800), level * rng.uniform(0.02, 0.2), rng.uniform())
        y = level + teeth + rng.normal(0, 0.002 * level, len(t))
        out.append(CorpusSeries(f"sawtooth_{i}", "sawtooth", "ok", _frame(t, y), 0.0, None))

        t = _times(rng, max(hours, 12), interval)
        tau_h = rng.uniform(0.2, max(hours, 12) / 10)
        warm = level * rng.uniform(0.1, 0.8) * (1 - np.exp(-t / HOUR / tau_h))
        y = level + warm + ar1(len(t), 0.8, 0.003 * level, rng)
        out.append(CorpusSeries(f"warmup_flat_{i}", "warmup_flat", "ok", _frame(t, y), 0.0, None))

        t = _times(rng, hours, interval)
        fill_end = rng.uniform(0.1, 0.4) * t[-1]
        fill = level * rng.uniform(0.1, 0.5) * np.minimum(t / fill_end, 1.0)
        y = level + fill + ar1(len(t), 0.8, 0.003 * level, rng)
        out.append(CorpusSeries(f"cache_fill_{i}", "cache_fill", "ok", _frame(t, y), 0.0, None))

        t = _times(rng, hours, interval)
        at = rng.uniform(0.2, 0.6) * t[-1]
        y = level + (t > at) * level * rng.uniform(0.05, 0.3) + ar1(len(t), 0.8, 0.003 * level, rng)
        out.append(CorpusSeries(f"single_step_{i}", "single_step", "ok", _frame(t, y), 0.0, None))

        t = _times(rng, max(hours, 12), interval)
        n_steps = int(rng.integers(3, 6))
        edges = np.sort(rng.uniform(0.05, 0.5, n_steps)) * t[-1]
        stairs = (t[:, None] > edges[None, :]).sum(axis=1) * level * rng.uniform(0.02, 0.08)
        y = level + stairs + rng.normal(0, 0.002 * level, len(t))
        out.append(CorpusSeries(f"staircase_stops_{i}", "staircase_stops", "ok", _frame(t, y), 0.0, None))

        t = _times(rng, pick(48, 72, 96), pick(30, 60))
        diurnal = level * rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * t / (24 * HOUR) + rng.uniform(0, 6.3))
        y = level + diurnal + ar1(len(t), 0.9, 0.003 * level, rng)
        out.append(CorpusSeries(f"diurnal_{i}", "diurnal", "ok", _frame(t, y), 0.0, None))

        period_h = pick(3, 4, 6, 8)
        t = _times(rng, pick(24, 36, 48), interval)
        seg = np.floor(t / HOUR / period_h)
        since = t - seg * period_h * HOUR
        warm = level * rng.uniform(0.1, 0.4) * (1 - np.exp(-since / HOUR / rng.uniform(0.1, 0.4)))
        y = level + warm + ar1(len(t), 0.8, 0.003 * level, rng)
        out.append(CorpusSeries(f"restarts_ok_{i}", "restarts_ok", "ok",
                                _frame(t, y, pid=1000 + seg, create_time=T0 + seg * period_h * HOUR), 0.0, None))
    # A separate stream, so that the families above are the same series whatever is added here.
    short_rng = np.random.default_rng([seed, 1])
    for i in range(per_family):
        out.extend(_short_runs(short_rng, i))
    return out


MIB = 1024.0 * 1024.0
PAGE = 4096.0


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
    out.append(CorpusSeries(f"short_alloc_steps_{i}", "short_alloc_steps", "ok", _frame(t, y), 0.0, None))

    # --- no leak: a slow saturating warm-up of 0.3-2 % of the level (time constant 0.2-1 × the run)
    t = short_times()
    level = rng.uniform(20, 2048) * MIB
    tau = rng.uniform(0.2, 1.0) * t[-1]
    warm = rng.uniform(0.003, 0.02) * level * (1 - np.exp(-t / tau))
    y = np.round((level + warm + ar1(len(t), 0.5, 0.0005 * level, rng)) / PAGE) * PAGE
    out.append(CorpusSeries(f"short_warmup_{i}", "short_warmup", "ok", _frame(t, y), 0.0, None))

    # --- no leak: file descriptors ramping 3-10 → 8-40 in the first 1-5 % of the run (connections
    # opening), then flat with an occasional extra connection for a sample or two
    t = short_times()
    base = float(rng.integers(3, 11))
    top = base + float(rng.integers(5, 31))
    ramp_s = rng.uniform(0.01, 0.05) * t[-1]
    fds = np.round(base + (top - base) * np.minimum(t / ramp_s, 1.0))
    fds += (rng.uniform(size=len(t)) < rng.uniform(0.0, 0.05)) * rng.integers(1, 3, len(t))
    out.append(CorpusSeries(f"short_fd_ramp_{i}", "short_fd_ramp", "ok", _frame(t, fds, metric="num_fds"),
                            0.0, None, metric="num_fds"))

    # --- no leak: CPU at 5-60 % in psutil's 2-point steps, drifting by at most 1.5 points as the
    # load settles (up or down)
    t = short_times()
    level = rng.uniform(5, 60)
    drift = rng.uniform(-1.5, 1.5) * (1 - np.exp(-t / (rng.uniform(0.3, 1.0) * t[-1])))
    cpu = np.clip(np.round((level + drift + rng.normal(0, rng.uniform(0.5, 3.0), len(t))) / 2) * 2, 0, None)
    out.append(CorpusSeries(f"short_cpu_{i}", "short_cpu", "ok", _frame(t, cpu, metric="cpu_percent"), 0.0, None,
                            metric="cpu_percent"))

    # --- leak: a stub keeping 10-80 KiB per request at 2-20 requests/s on 20-60 MiB (the demo's
    # leak: 40 KiB at ~13 requests/s, 1.8 GiB/h), page-rounded, with the allocator's 128 KiB steps
    t = short_times()
    level = rng.uniform(20, 60) * MIB
    rate = rng.uniform(10, 80) * 1024 * rng.uniform(2, 20) * HOUR  # bytes per hour
    kept = np.floor(rate * t / HOUR / (128 * 1024)) * 128 * 1024
    y = np.round((level + kept + rng.normal(0, 2 * PAGE, len(t))) / PAGE) * PAGE
    out.append(CorpusSeries(f"short_big_leak_{i}", "short_big_leak", "leak", _frame(t, y), rate,
                            level + rate * 168))

    # --- leak: a descriptor per 2-30 s never closed, after the same start-up ramp as above
    t = short_times()
    base = float(rng.integers(3, 11))
    top = base + float(rng.integers(5, 31))
    every_s = rng.uniform(2, 30)
    fds = np.round(base + (top - base) * np.minimum(t / (0.03 * t[-1]), 1.0)) + np.floor(t / every_s)
    out.append(CorpusSeries(f"short_fd_leak_{i}", "short_fd_leak", "leak", _frame(t, fds, metric="num_fds"),
                            HOUR / every_s, None, metric="num_fds"))
    return out


def leak_series(rate_pct_per_hour: float, hours: float, noise_pct: float, phi: float,
                interval_s: float = 30.0, seed: int = 0, level: float = 1e9):
    """One linear leak in AR(1) noise (for detection-limit tables): a samples DataFrame."""
    rng = np.random.default_rng(seed)
    t = _times(rng, hours, interval_s)
    y = level * (1 + rate_pct_per_hour / 100 * t / HOUR) + ar1(len(t), phi, noise_pct / 100 * level, rng)
    return _frame(t, y)
