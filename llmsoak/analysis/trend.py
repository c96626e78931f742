"""Linear trend of a reduced series with a 95% interval that respects autocorrelation.

The slope is least squares on the reduced (enveloped) points, refitted once without gross
outliers; with ``seasonal=True`` a 24 h and a 12 h harmonic are fitted alongside, so a diurnal
load cycle does not read as a trend. The interval is a moving-block bootstrap of the residuals
(blocks longer than the residuals' correlation time), never narrower than the least-squares
interval inflated by the AR(1) variance factor (1 + r) / (1 - r).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY_H = 24.0
BOOTSTRAP_REPS = 400


@dataclass(frozen=True)
class TrendFit:
    """A fitted line ``level(t_h) = intercept + slope_per_hour * (t_h - t_ref_h)`` (times in hours)."""

    slope_per_hour: float
    intercept: float
    t_ref_h: float
    slope_lo: float
    slope_hi: float
    slope_se: float
    residual_sd: float
    lag1_autocorr: float
    n: int
    seasonal: bool

    def level_at(self, t_h: float | np.ndarray) -> float | np.ndarray:
        return self.intercept + self.slope_per_hour * (np.asarray(t_h) - self.t_ref_h)


def design_matrix(t_h: np.ndarray, t_ref_h: float, seasonal: bool) -> np.ndarray:
    """Columns: 1, t - t_ref (h), and with ``seasonal`` sin/cos of the 24 h and 12 h cycles."""
    cols = [np.ones_like(t_h), t_h - t_ref_h]
    if seasonal:
        for period_h in (DAY_H, DAY_H / 2):
            w = 2 * np.pi * t_h / period_h
            cols += [np.sin(w), np.cos(w)]
    return np.column_stack(cols)


def lag1_autocorr(r: np.ndarray) -> float:
    """Lag-1 autocorrelation of ``r`` (0 when undefined), clipped to [0, 0.99]."""
    r = np.asarray(r, dtype=float)
    if len(r) < 3:
        return 0.0
    r = r - r.mean()
    den = float(np.dot(r, r))
    if den <= 0:
        return 0.0
    return float(np.clip(np.dot(r[:-1], r[1:]) / den, 0.0, 0.99))


def block_length(n: int, rho: float) -> int:
    """Moving-block length: about the residuals' correlation time, at least n^(1/3), at most n/3."""
    corr_time = (1 + rho) / (1 - rho)
    return int(max(2, min(max(n // 3, 2), np.ceil(max(n ** (1 / 3), 2 * corr_time)))))


def block_bootstrap_indices(n: int, block: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """(reps, n) indices built from random contiguous blocks of length ``block`` (moving-block bootstrap)."""
    if n < 1 or block < 1 or reps < 1:
        raise ValueError("n, block and reps must be >= 1")
    block = min(block, n)
    n_blocks = int(np.ceil(n / block))
    starts = rng.integers(0, n - block + 1, size=(reps, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)).reshape(reps, -1)
    return idx[:, :n]


def fit_trend(t_h: np.ndarray, y: np.ndarray, *, seasonal: bool = False, seed: int = 0,
              reps: int = BOOTSTRAP_REPS, robust: bool = True) -> TrendFit:
    """Fit the trend of ``y`` against ``t_h`` (hours) with a 95% block-bootstrap slope interval."""
    t_h = np.asarray(t_h, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(t_h)
    if n < 3:
        raise ValueError(f"need at least 3 points to fit a trend, got {n}")
    t_ref = float(0.5 * (t_h[0] + t_h[-1]))
    X = design_matrix(t_h, t_ref, seasonal)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    if robust and n >= 10:
        mad = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
        keep = np.abs(resid) <= 6 * mad if mad > 0 else np.ones(n, dtype=bool)
        if keep.sum() >= max(3, 0.8 * n) and not keep.all():
            t_h, y, X = t_h[keep], y[keep], X[keep]
            n = len(t_h)
            beta, *_ = np.linalg.lstsq(X, y, rcond=None)
            resid = y - X @ beta
    fitted = X @ beta
    rho = lag1_autocorr(resid)
    dof = max(n - X.shape[1], 1)
    sigma = float(np.sqrt(np.dot(resid, resid) / dof))
    xtx_inv = np.linalg.pinv(X.T @ X)
    se_ols = sigma * float(np.sqrt(max(xtx_inv[1, 1], 0.0)))
    se_ar = se_ols * float(np.sqrt((1 + rho) / (1 - rho)))

    rng = np.random.default_rng(seed)
    proj = xtx_inv @ X.T  # (k, n): beta* = proj @ y*
    idx = block_bootstrap_indices(n, block_length(n, rho), reps, rng)
    centered = resid - resid.mean()
    ystar = fitted[None, :] + centered[idx]
    slopes = ystar @ proj[1]
    lo_b, hi_b = np.percentile(slopes, [2.5, 97.5])
    slope = float(beta[1])
    half = max(float(hi_b - lo_b) / 2, 1.96 * se_ar)
    se = max(float(np.std(slopes)), se_ar)
    return TrendFit(slope_per_hour=slope, intercept=float(beta[0]), t_ref_h=t_ref,
                    slope_lo=slope - half, slope_hi=slope + half, slope_se=se,
                    residual_sd=sigma, lag1_autocorr=rho, n=n, seasonal=seasonal)


def ols_sse(t: np.ndarray, y: np.ndarray) -> float:
    """Residual sum of squares of a straight-line least-squares fit (0 for fewer than 3 points)."""
    if len(t) < 3:
        return 0.0
    tc = t - t.mean()
    yc = y - y.mean()
    stt = float(np.dot(tc, tc))
    b = float(np.dot(tc, yc)) / stt if stt > 0 else 0.0
    r = yc - b * tc
    return float(np.dot(r, r))


def ols_slope(t: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of ``y`` on ``t`` (0 for fewer than 2 distinct times)."""
    tc = t - t.mean()
    stt = float(np.dot(tc, tc))
    return float(np.dot(tc, y - y.mean())) / stt if stt > 0 else 0.0


def seasonal_component(t_h: np.ndarray, y: np.ndarray, lag_h: float = 3.0) -> np.ndarray:
    """The 24 h + 12 h harmonic part of ``y``, estimated so that steps and trends do not leak into it.

    The harmonics are fitted to lagged differences ``y(t) - y(t - lag_h)`` (a trend becomes a
    constant, a smoothly bending trend a slow polynomial, a single step a short burst that the
    trimmed refit drops), then integrated back.
    """
    t_h = np.asarray(t_h, dtype=float)
    y = np.asarray(y, dtype=float)
    H = design_matrix(t_h, 0.0, seasonal=True)[:, 2:]
    j = np.searchsorted(t_h, t_h - lag_h, side="right") - 1
    ok = j >= 0
    if ok.sum() < 20:
        return np.zeros_like(y)
    i = np.flatnonzero(ok)
    j = j[ok]
    dy = y[i] - y[j]
    # Lagged differences of t and t^2 absorb a trend whose rate changes steadily (a slow
    # warm-up over two days), which the harmonics would otherwise partly take for a daily cycle.
    span = max(float(t_h[-1] - t_h[0]), 1e-9)
    u = (t_h - t_h[0]) / span
    poly = np.column_stack([u[i] ** p - u[j] ** p for p in (1, 2)])
    X = np.column_stack([poly, H[i] - H[j]])
    keep = np.ones(len(dy), dtype=bool)
    for _ in range(3):
        beta, *_ = np.linalg.lstsq(X[keep], dy[keep], rcond=None)
        r = dy - X @ beta
        mad = 1.4826 * float(np.median(np.abs(r[keep] - np.median(r[keep]))))
        if mad <= 0:
            break
        new_keep = np.abs(r) <= 4 * mad
        if new_keep.sum() < 0.5 * len(dy) or (new_keep == keep).all():
            break
        keep = new_keep
    return H @ beta[2:]
