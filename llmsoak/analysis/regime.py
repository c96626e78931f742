"""Finding the current regime of a segment: the longest recent stretch that one straight line explains.

Warm-up, cache fill, a single step and an allocator staircase that stopped all make the whole
window look "increasing". Here the segment's reduced series is tried from several start points
(0%, 10%, ... 50% of the segment, and just after the largest level shift); the regime is the
earliest suffix in which splitting the line in two (at 1/3, 1/2 or 2/3) does not explain much
more than the noise does. The noise scale is measured once per segment, around a rolling median,
with its AR(1) variance factor, so a step or a bend cannot inflate its own yardstick.

A *leading ramp* (connections 7 → 15 in the first seconds, a heap filling in the first minute)
is cut first: when a level shift ending in the first ``LEADING_RAMP_FRACTION`` of the segment
explains more than ``SETTLED_THRESHOLD`` noise variances of the rest, the regime cannot start
before it. The noise is then measured on the rest only: with integer counts that are flat after
the ramp, the whole-segment yardstick is made of the ramp itself and let it through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from llmsoak.analysis.envelope import rolling_median_centered
from llmsoak.analysis.trend import lag1_autocorr, ols_slope, ols_sse

START_FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
SPLITS = (1 / 3, 1 / 2, 2 / 3)
# A split must explain this many noise variances before the suffix counts as "not one line".
SETTLED_THRESHOLD = 150.0
MIN_SUFFIX_POINTS = 12
MIN_SHIFT_TAIL_FRACTION = 0.15
LEADING_RAMP_FRACTION = 0.1  # a warm-up that ends in the first 10 % of a segment is cut
MIN_RAMP_POINTS = 3
FLOOR_SD_FRACTION = 0.5  # the robust noise scale is at least this fraction of the standard deviation
WOBBLE_RATIO = 0.5  # two growing pieces within this ratio of each other are one regime


@dataclass(frozen=True)
class Regime:
    """The chosen suffix ``[start_idx:]`` of a reduced series and how clearly it is one line."""

    start_idx: int
    settled: bool
    """True when one straight line explains the suffix (no bend or step left in it)."""
    bend_score: float
    """Best two-piece improvement over one line, in noise variances (lower = straighter)."""


def noise_scale(y: np.ndarray, robust: bool = True) -> tuple[float, float]:
    """(sigma, AR(1) variance factor) of ``y`` around its centered rolling median.

    ``robust``: sigma from the median absolute deviation (the standard deviation when that is 0);
    otherwise the standard deviation, which is larger on a lower envelope, where a rolling minimum
    leaves plateaus and so many residuals of exactly 0 that the median deviation understates the noise.
    """
    n = len(y)
    k = max(5, (n // 20) | 1)
    r = y - rolling_median_centered(y, k)
    sd = float(np.std(r))
    # The median deviation alone collapses on a lower envelope (plateaus of a rolling minimum,
    # barely tilted by a removed daily cycle, leave most residuals near 0: a 2 MiB/h leak under
    # a GC sawtooth measured 0.05 MiB of "noise" instead of 2 MiB, and every split looked like a
    # bend). Half the standard deviation bounds it from below; a step inflates the standard
    # deviation only a little (its residuals are local), so it still cannot hide itself.
    sigma = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), FLOOR_SD_FRACTION * sd) if robust else sd
    rho = lag1_autocorr(r)
    return sigma, (1 + rho) / (1 - rho)


def bend_score(t: np.ndarray, y: np.ndarray, noise_var: float, direction: int = 1) -> float:
    """How much better two separate lines fit than one, in units of ``noise_var``.

    A split whose two pieces both grow (in ``direction``), the slower at least ``WOBBLE_RATIO`` of
    the faster, is no change of regime: a leak that follows the load grows faster and slower as
    the load wobbles, and on a smooth lower envelope that wobble is many noise variances.
    """
    n = len(t)
    one = ols_sse(t, y)
    best = 0.0
    for frac in SPLITS:
        k = int(round(frac * n))
        if k < 4 or n - k < 4:
            continue
        a, b = direction * ols_slope(t[:k], y[:k]), direction * ols_slope(t[k:], y[k:])
        if a > 0 and b > 0 and min(a, b) >= WOBBLE_RATIO * max(a, b):
            continue
        gain = one - ols_sse(t[:k], y[:k]) - ols_sse(t[k:], y[k:])
        best = max(best, gain)
    if noise_var <= 0:
        return 0.0 if best <= 0 else float("inf")
    return best / noise_var


def largest_shift_index(t: np.ndarray, y: np.ndarray) -> int | None:
    """Index where a two-piece (discontinuous) line fit of the whole series gains most."""
    n = len(t)
    if n < 2 * MIN_SUFFIX_POINTS:
        return None
    best_gain, best_k = 0.0, None
    one = ols_sse(t, y)
    for k in np.linspace(MIN_SUFFIX_POINTS, n - MIN_SUFFIX_POINTS, num=min(60, n - 2 * MIN_SUFFIX_POINTS + 1)).astype(int):
        gain = one - ols_sse(t[:k], y[:k]) - ols_sse(t[k:], y[k:])
        if gain > best_gain:
            best_gain, best_k = gain, int(k)
    return best_k


def leading_ramp_end(t_h: np.ndarray, y: np.ndarray) -> int:
    """Index just after a warm-up ramp or shift in the first LEADING_RAMP_FRACTION of the series (0: none).

    The split point k maximises the gain of two separate lines ([:k] and [k:]) over one; it counts
    when that gain exceeds SETTLED_THRESHOLD noise variances of ``y[k:]`` (the part after it),
    measured by the standard deviation: cutting is the exception, so the larger yardstick.
    """
    n = len(t_h)
    if n < 2 * MIN_SUFFIX_POINTS:
        return 0
    last = int(np.searchsorted(t_h, t_h[0] + LEADING_RAMP_FRACTION * (t_h[-1] - t_h[0]), side="right"))
    last = min(last, n - MIN_SUFFIX_POINTS)
    if last < MIN_RAMP_POINTS:
        return 0
    one = ols_sse(t_h, y)
    gains = [(one - ols_sse(t_h[:k], y[:k]) - ols_sse(t_h[k:], y[k:]), k) for k in range(MIN_RAMP_POINTS, last + 1)]
    gain, k = max(gains)
    if gain <= 0:
        return 0
    sigma, inflation = noise_scale(y[k:], robust=False)
    noise_var = sigma * sigma * inflation
    return k if noise_var <= 0 or gain / noise_var > SETTLED_THRESHOLD else 0


def find_regime(t_h: np.ndarray, y: np.ndarray, reject: Callable[[int], bool] | None = None,
                direction: int = 1) -> Regime:
    """The current regime of one segment's reduced series (``t_h`` hours, sorted).

    ``reject(start)`` may turn down a straight suffix (the verdict rejects one whose growth slows
    down: a warm-up's tail); the search then goes on to later starts, and comes back to the first
    rejected one only when no later suffix is both straight and accepted.
    """
    n = len(t_h)
    if n < 2 * MIN_SUFFIX_POINTS:
        return Regime(0, True, 0.0)
    sigma, inflation = noise_scale(y)
    noise_var = sigma * sigma * inflation
    span = t_h[-1] - t_h[0]
    ramp = leading_ramp_end(t_h, y)
    candidates = {max(int(np.searchsorted(t_h, t_h[0] + f * span)), ramp) for f in START_FRACTIONS}
    shift = largest_shift_index(t_h, y)
    if shift is not None and (t_h[-1] - t_h[shift]) >= MIN_SHIFT_TAIL_FRACTION * span:
        candidates.add(shift)
    scored = []
    first_rejected = None
    for start in sorted(candidates):
        if n - start < MIN_SUFFIX_POINTS:
            continue
        score = bend_score(t_h[start:], y[start:], noise_var, direction)
        if score <= SETTLED_THRESHOLD:
            if reject is not None and reject(start):
                first_rejected = first_rejected or Regime(start, True, score)
                continue
            return Regime(start, True, score)
        scored.append((score, start))
    if first_rejected is not None:
        return first_rejected
    if not scored:
        return Regime(0, False, float("inf"))
    score, start = min(scored)
    return Regime(start, False, score)
