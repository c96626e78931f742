"""Telling a warm-up from a leak: does the growth of a regime slow down as it goes?

A server warming its caches, an allocator settling or a load generator starting grows fast at
first and then more and more slowly; a leak keeps growing at the same rate. Two pieces of evidence
are weighed on the reduced series of a segment after its leading ramp (times in hours):

- **curvature**: a parabola ``a + b x + c x^2`` over the regime (x from -1 to 1) with a 95 % block
  bootstrap interval for ``c`` (the residuals of a lower envelope are strongly autocorrelated);
  the growth slows down when ``c`` is significantly negative, the slope at the end is at most
  ``MAX_END_SLOPE_RATIO`` of the slope at the start, and each third grows at most
  ``MAX_THIRD_RATIO`` of the third before it or the first third ``FRONT_LOADED_RATIO`` times the
  rest (a warm-up slows all along or grows mostly first; a leak whose load dipped at the end does
  neither);
- **levelling off**: a saturating curve ``A - B exp(-(t - t0) / tau)`` fitted over a grid of
  ``tau``; how much better it fits than the straight line, where it levels off (``A``) and when
  the rise still to come drops under a tolerance (``settle_h``).

``slowing_growth`` is the decision the verdict uses; the rest is the evidence its sentence quotes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmsoak.analysis.trend import block_bootstrap_indices, block_length, lag1_autocorr, ols_slope

MAX_END_SLOPE_RATIO = 0.8
"""Growth "slows down" when the slope at the end of the regime is at most this fraction of the slope
at its start (a parabola through the regime), and the curvature is significant."""
MAX_THIRD_RATIO = 0.95
"""... and each third of the regime grows at most this fraction of the one before it."""
FRONT_LOADED_RATIO = 2.0
"""... or the first third grows at least this many times the mean of the other two."""
MIN_POINTS = 12
BOOTSTRAP_REPS = 300
TAU_GRID = 40


@dataclass(frozen=True)
class WarmupEvidence:
    """What the shape of a regime says about a warm-up; rates per hour in the metric's unit."""

    slowing: bool
    """True when the growth slows down significantly and materially (see the module docstring)."""
    thirds_per_hour: tuple[float, float, float]
    """Least-squares slopes of the first, middle and last third of the regime."""
    thirds_falling: bool
    """Each later third grows less than the one before."""
    start_slope_per_hour: float
    end_slope_per_hour: float
    """Slopes of the parabola at the regime's start and end."""
    curvature_hi: float
    """Upper end of the 95 % interval of the parabola's ``c`` (< 0: significantly concave)."""
    curvature_lo: float
    """Lower end of that interval."""
    slope_lo_per_hour: float
    """Lower end of the 95 % interval of the parabola's mean slope (in the bad direction)."""
    fit_gain: float
    """Residual sum of squares of the straight line over that of the levelling-off curve (>= 1)."""
    level_off: float | None
    """Where the levelling-off curve ends up (``A``, metric unit); None without a usable fit."""
    tau_h: float | None
    """Time constant of the levelling-off curve (hours)."""
    settle_h: float | None
    """Hours from the regime's start until the rise still to come is under ``tolerance``."""
    curve: tuple[float, float, float, float] | None = None
    """The levelling-off curve (A, B, tau_h, t0_h) in the bad direction: A - B exp(-(t - t0) / tau)."""

    def explains(self, t_h: np.ndarray, later: WarmupEvidence) -> bool:
        """Whether this warm-up, carried on, explains a later stretch ``t_h`` with evidence ``later``.

        The later stretch is a leak after the warm-up only if it is clearly straighter than the
        warm-up curve would be there (its curvature interval lies above the curve's), or grows
        clearly faster than the curve still would (more than twice its slope there).
        """
        if self.curve is None or len(t_h) < MIN_POINTS:
            return True
        a, b, tau, t0 = self.curve
        pred = a - b * np.exp(-(np.asarray(t_h, dtype=float) - t0) / tau)
        half = (t_h[-1] - t_h[0]) / 2
        x = (t_h - t_h[0]) / half - 1.0
        c_pred = float(np.polyfit(x, pred, 2)[0])
        slope_pred = ols_slope(t_h, pred)
        straighter = later.curvature_lo > c_pred
        faster = later.slope_lo_per_hour > 2.0 * max(slope_pred, 0.0)
        return not (later.curvature_hi >= 0 and (straighter or faster))


def _parabola(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, tuple[float, float], float]:
    """Coefficients (a, b, c) of ``a + b x + c x^2``, the 95 % interval of ``c`` and the 2.5th
    percentile of ``b`` (block bootstrap, never narrower than least squares with AR(1) residuals)."""
    X = np.column_stack([np.ones_like(x), x, x * x])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    n = len(x)
    rho = lag1_autocorr(resid)
    proj = np.linalg.pinv(X)  # (3, n)
    rng = np.random.default_rng(seed)
    idx = block_bootstrap_indices(n, block_length(n, rho), BOOTSTRAP_REPS, rng)
    centered = resid - resid.mean()
    cs = (X @ beta)[None, :] + centered[idx]
    c_star, b_star = cs @ proj[2], cs @ proj[1]
    # Never narrower than least squares inflated for AR(1) residuals (as the slope interval).
    dof = max(n - 3, 1)
    sigma = float(np.sqrt(resid @ resid / dof))
    xtx_inv = np.linalg.pinv(X.T @ X)
    inflate = float(np.sqrt((1 + rho) / (1 - rho)))
    se_c = sigma * float(np.sqrt(max(xtx_inv[2, 2], 0.0))) * inflate
    se_b = sigma * float(np.sqrt(max(xtx_inv[1, 1], 0.0))) * inflate
    lo = min(float(np.percentile(c_star, 2.5)), float(beta[2]) - 1.96 * se_c)
    hi = max(float(np.percentile(c_star, 97.5)), float(beta[2]) + 1.96 * se_c)
    b_lo = min(float(np.percentile(b_star, 2.5)), float(beta[1]) - 1.96 * se_b)
    return beta, (lo, hi), b_lo


def _saturating(t: np.ndarray, y: np.ndarray, sign: int) -> tuple[float, float, float, float] | None:
    """Best ``A - B exp(-(t - t0) / tau)`` over a log grid of tau: (A, B, tau, sse), rising in ``sign``."""
    t0 = t[0]
    span = max(t[-1] - t0, 1e-12)
    best = None
    for tau in span * np.logspace(-1.5, 1.0, TAU_GRID):
        e = np.exp(-(t - t0) / tau)
        X = np.column_stack([np.ones_like(t), e])
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        a, minus_b = float(beta[0]), float(beta[1])
        b = -minus_b
        if sign * b <= 0:  # falling towards the bad direction is not a warm-up
            continue
        r = y - X @ beta
        sse = float(r @ r)
        if best is None or sse < best[3]:
            best = (a, b, float(tau), sse)
    return best


def warmup_evidence(t_h: np.ndarray, y: np.ndarray, *, sign: int = 1, tolerance: float = 0.0,
                    seed: int = 0) -> WarmupEvidence:
    """Evidence of a warm-up in one regime (``t_h`` hours, sorted; ``sign`` +1 when growth is bad).

    ``tolerance`` (metric unit): the rise still to come under which the warm-up counts as settled.
    """
    t_h = np.asarray(t_h, dtype=float)
    y = sign * np.asarray(y, dtype=float)  # work in the bad direction: growth is positive
    n = len(t_h)
    none = WarmupEvidence(False, (0.0, 0.0, 0.0), False, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, None, None, None)
    if n < MIN_POINTS or t_h[-1] <= t_h[0]:
        return none
    edges = t_h[0] + (t_h[-1] - t_h[0]) * np.array([0, 1 / 3, 2 / 3, 1 + 1e-12])
    cut = np.searchsorted(t_h, edges)
    thirds = tuple(ols_slope(t_h[a:b], y[a:b]) if b - a >= 3 else 0.0 for a, b in zip(cut[:-1], cut[1:], strict=True))
    half = (t_h[-1] - t_h[0]) / 2
    x = (t_h - t_h[0]) / half - 1.0
    (_a, b, c), (c_lo, c_hi), b_lo = _parabola(x, y, seed)
    start, end = (b - 2 * c) / half, (b + 2 * c) / half
    falling = thirds[0] > thirds[1] > thirds[2]
    # A warm-up slows down all along (each third grows clearly less than the one before), or does
    # most of its growing first (the first third at least twice the rest, as an allocator's
    # staircase levels off in uneven steps). A leak whose load dipped near the end (steady for
    # two thirds, then slower) is neither.
    spread = ((thirds[1] <= MAX_THIRD_RATIO * thirds[0] and thirds[2] <= MAX_THIRD_RATIO * thirds[1])
              or thirds[0] >= FRONT_LOADED_RATIO * max(0.5 * (thirds[1] + thirds[2]), 0.0))
    slowing = bool(c_hi < 0 and start > 0 and end <= MAX_END_SLOPE_RATIO * start and spread)
    line_sse = float(np.sum((y - (np.mean(y) + ols_slope(t_h, y) * (t_h - t_h.mean()))) ** 2))
    sat = _saturating(t_h, y, 1)
    level_off = tau = settle = curve = None
    gain = 1.0
    if sat is not None:
        a_sat, b_sat, tau, sse = sat
        gain = line_sse / sse if sse > 0 else float("inf")
        level_off = sign * a_sat
        curve = (a_sat, b_sat, tau, float(t_h[0]))
        # The rise still to come at time t is B exp(-(t - t0) / tau): under the tolerance after
        # tau * ln(B / tolerance) hours from the regime's start.
        settle = tau * float(np.log(b_sat / tolerance)) if tolerance > 0 and b_sat > tolerance else 0.0
    return WarmupEvidence(slowing, tuple(sign * s for s in thirds), falling, sign * start, sign * end, c_hi, c_lo,
                          b_lo / half, gain, level_off, tau, settle, curve)
