"""Reducing a long series to a few hundred windows before any statistics (cost linear in rows).

Memory is summarised by the windowed minimum (the lower envelope: the level after garbage
collection, so GC sawtooth disappears); latency, CPU and counts by the windowed median (robust to
bursts); rates of rare events by the windowed mean.
"""

from __future__ import annotations

import numpy as np

REDUCERS = ("min", "median", "mean", "max")


def window_width_s(duration_s: float, interval_s: float, max_windows: int) -> float:
    """Window width (s): at least one sampling interval, at most ``max_windows`` over the duration."""
    if max_windows < 1:
        raise ValueError(f"max_windows must be >= 1, got {max_windows}")
    return max(float(interval_s), float(duration_s) / max_windows, 1e-9)


def reduce_windows(t: np.ndarray, y: np.ndarray, width_s: float, how: str = "min", *,
                   merge_partial_last: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-window (time, value, count) of sorted ``t`` (s) and ``y``; windows without data are absent.

    The time of a window is the mean time of its samples, so irregular sampling and gaps do not
    shift the trend. NaN values in ``y`` are ignored. With ``merge_partial_last`` a last window
    holding fewer than half the typical (median) number of samples is merged into the window
    before it: a window cut short by the end of the data is the minimum (or median) of a few
    samples only, which for memory sits high on the GC sawtooth and made the end tick upward.
    """
    if how not in REDUCERS:
        raise ValueError(f"how must be one of {REDUCERS}, got {how!r}")
    if width_s <= 0:
        raise ValueError(f"width_s must be > 0, got {width_s}")
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y) & np.isfinite(t)
    t, y = t[ok], y[ok]
    if len(t) == 0:
        empty = np.empty(0)
        return empty, empty, np.empty(0, dtype=np.int64)
    bins = np.floor((t - t[0]) / width_s).astype(np.int64)
    # t is sorted, so bins are non-decreasing: group boundaries are where the bin changes.
    starts = np.concatenate([[0], np.flatnonzero(np.diff(bins)) + 1])
    counts = np.diff(np.concatenate([starts, [len(t)]]))
    if merge_partial_last and len(starts) >= 3 and 2 * counts[-1] < np.median(counts[:-1]):
        starts = starts[:-1]
        counts = np.diff(np.concatenate([starts, [len(t)]]))
    tw = np.add.reduceat(t, starts) / counts
    if how == "min":
        yw = np.minimum.reduceat(y, starts)
    elif how == "max":
        yw = np.maximum.reduceat(y, starts)
    elif how == "mean":
        yw = np.add.reduceat(y, starts) / counts
    else:
        group = np.repeat(np.arange(len(starts)), counts)
        order = np.lexsort((y, group))
        ys = y[order]
        lo = starts + (counts - 1) // 2
        hi = starts + counts // 2
        yw = 0.5 * (ys[lo] + ys[hi])
    return tw, yw, counts


def rolling_min_centered(y: np.ndarray, k: int, *, full_edges: bool = False) -> np.ndarray:
    """Centered rolling minimum over ``k`` points (odd). O(n·k), for small k.

    At the edges the window shrinks, or with ``full_edges`` the first and last ``k // 2`` points
    take the minimum of the nearest full window: a shrunken window at the end of a run covers less
    than a GC cycle and would lift the envelope's last points onto the sawtooth.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    y = np.asarray(y, dtype=float)
    if k == 1 or len(y) == 0:
        return y.copy()
    half = k // 2
    padded = np.pad(y, half, mode="constant", constant_values=np.inf)
    out = padded[: len(y)].copy()
    for j in range(1, 2 * half + 1):
        np.minimum(out, padded[j: j + len(y)], out=out)
    if full_edges and len(y) > 2 * half:
        out[:half] = y[: 2 * half + 1].min()
        out[len(y) - half:] = y[len(y) - 2 * half - 1:].min()
    return out


def rolling_median_centered(y: np.ndarray, k: int) -> np.ndarray:
    """Centered rolling median over ``k`` points (edges use the nearest full window)."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n == 0 or k <= 1:
        return y.copy()
    k = min(k, n)
    view = np.lib.stride_tricks.sliding_window_view(y, k)
    med = np.median(view, axis=1)
    half = k // 2
    out = np.empty(n)
    out[half: half + len(med)] = med
    out[:half] = med[0]
    out[half + len(med):] = med[-1]
    return out
