"""Splitting a sampled series at restarts of the target, and finding gaps in the sampling.

A restart is a change of ``pid`` or ``create_time`` (docs/formats.md, "Samples CSV"): trends are never
fitted across one. A gap (no sample for much longer than the usual interval) does not split a
segment: the process kept running, and the fits below work on irregular timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A gap is a pause longer than this many typical intervals (and at least GAP_MIN_S).
GAP_FACTOR = 10.0
GAP_MIN_S = 60.0


@dataclass(frozen=True)
class Segment:
    """One uninterrupted run of the target: rows ``[start_idx, end_idx)`` of the sorted series."""

    start_idx: int
    end_idx: int
    start_s: float
    """First sample time (Unix s)."""
    end_s: float
    """Last sample time (Unix s)."""
    pid: int | None
    create_time_s: float | None
    """The process start time (Unix s) when sampled; the uptime origin of the segment."""

    @property
    def duration_h(self) -> float:
        return (self.end_s - self.start_s) / 3600.0

    def to_json(self) -> dict:
        return {"start": self.start_s, "end": self.end_s, "pid": self.pid,
                "create_time": self.create_time_s, "samples": self.end_idx - self.start_idx}


def typical_interval_s(t: np.ndarray) -> float:
    """Median spacing of sorted timestamps ``t`` in seconds (1.0 when fewer than two)."""
    if len(t) < 2:
        return 1.0
    d = np.diff(t)
    d = d[d > 0]
    return float(np.median(d)) if len(d) else 1.0


def split_segments(t: np.ndarray, pid: np.ndarray | None = None,
                   create_time: np.ndarray | None = None) -> list[Segment]:
    """Segments of sorted timestamps ``t`` split where ``pid`` or ``create_time`` changes.

    Missing identifiers (NaN) never split: they are carried from the previous known value.
    """
    n = len(t)
    if n == 0:
        return []
    change = np.zeros(n, dtype=bool)
    for ident in (pid, create_time):
        if ident is None:
            continue
        v = np.asarray(ident, dtype=float)
        known = np.isfinite(v)
        if known.sum() < 2:
            continue
        kv = v[known]
        # create_time jitters by a few ms between reads on some systems: ignore < 1 s changes.
        jumps = np.abs(np.diff(kv)) > (0.5 if ident is pid else 1.0)
        idx = np.flatnonzero(known)[1:][jumps]
        change[idx] = True
    starts = np.concatenate([[0], np.flatnonzero(change)])
    ends = np.concatenate([starts[1:], [n]])
    segments = []
    for s, e in zip(starts, ends, strict=True):
        p = _first_known(pid, s, e)
        ct = _first_known(create_time, s, e)
        segments.append(Segment(int(s), int(e), float(t[s]), float(t[e - 1]),
                                int(p) if p is not None else None, ct))
    return segments


def _first_known(values: np.ndarray | None, s: int, e: int) -> float | None:
    if values is None:
        return None
    v = np.asarray(values[s:e], dtype=float)
    known = v[np.isfinite(v)]
    return float(known[0]) if len(known) else None


def find_gaps(t: np.ndarray, interval_s: float | None = None) -> list[tuple[float, float]]:
    """(start, end) Unix-s pairs where sorted ``t`` has no sample for > GAP_FACTOR intervals."""
    if len(t) < 2:
        return []
    interval_s = interval_s or typical_interval_s(t)
    d = np.diff(t)
    idx = np.flatnonzero(d > max(GAP_FACTOR * interval_s, GAP_MIN_S))
    return [(float(t[i]), float(t[i + 1])) for i in idx]
