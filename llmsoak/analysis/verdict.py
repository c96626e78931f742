"""The per-metric leak verdict: segments → windows → current regime → warm-up test → trend → decision.

``analyze_metric`` is the entry point; its JSON is the per-metric object of verdict.json
(docs/formats.md). A metric "leaks" when its current regime's slope interval excludes zero in the
bad direction AND the slope reaches the practical threshold (``practical_threshold``: the larger of
``min_growth_pct_per_hour`` of the level and an absolute floor, lower when a limit is close) AND
the growth persists (one straight line, each third growing) without slowing down (``warmup.py``:
a warm-up is "inconclusive, still warming up") AND the growth actually observed in the regime
(slope × duration) reaches the metric's minimum change (metric_specs), so that a short run's
allocator step or unfinished warm-up is not carried over a week. A leak has a ``severity`` (from the
time to the limit, else the growth per week). It is "ok" when the interval rules out growth at the
threshold; otherwise "inconclusive", with an estimate of how many more hours would decide. With
restarts, each segment is trended and the slopes pooled, so a leak hidden by periodic restarts
still counts. No 7-day projection reaches more than ``MAX_EXTRAPOLATION`` times the regime's length
beyond the data. The reason is returned as data (``reason.Reason``); ``wording.py`` words it.
See docs/leak-statistics.md.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from llmsoak.analysis import reason as R
from llmsoak.analysis import wording
from llmsoak.analysis.envelope import reduce_windows, rolling_min_centered, window_width_s
from llmsoak.analysis.metric_specs import MetricSpec, metric_spec
from llmsoak.analysis.reason import MAX_EXTRAPOLATION, Reason
from llmsoak.analysis.regime import find_regime, leading_ramp_end
from llmsoak.analysis.segments import Segment, find_gaps, split_segments, typical_interval_s
from llmsoak.analysis.trend import TrendFit, fit_trend, ols_slope, seasonal_component
from llmsoak.analysis.warmup import WarmupEvidence, warmup_evidence
from llmsoak.errors import EXIT_BAD_INPUT, CommandError

VERDICTS = ("leak", "ok", "inconclusive")
PROJECTION_HOURS = 168.0
WINDOWS_PER_SEGMENT = 400
MAX_WINDOWS_TOTAL = 4000
ENVELOPE_SMOOTH_WINDOWS = 5  # rolling minimum over 5 windows (~1/80 of a segment) kills GC teeth
MIN_REGIME_POINTS = 12
SEASONAL_MIN_HOURS = 46.0  # fit the 24 h cycle only when (nearly) two whole days are in view
ZERO_LEVEL_FRACTION = 1e-6  # a level below a millionth of the threshold (or slope) counts as zero
LIMIT_HORIZON_H = 720.0
"""With a limit, growth that would reach it within 30 days counts as a leak however small."""
MIN_LIMIT_THRESHOLD_FRACTION = 0.1  # ... but the limit lowers the threshold at most tenfold
SEVERITY_HOURS_TO_LIMIT = (("critical", 24.0), ("fast", 168.0), ("moderate", 720.0))
SEVERITY_PCT_PER_WEEK = (("fast", 100.0), ("moderate", 16.8))
SATURATING_MAX_TAU_SPANS = 5.0  # a levelling-off fit slower than this many run lengths: no settle time
MIN_MORE_HOURS = 5 / 60.0


@dataclass(frozen=True, eq=False)
class MetricVerdict:
    """The verdict on one metric plus what charts need. Times are Unix seconds, rates per hour."""

    metric: str
    verdict: str
    unit: str
    slope_per_hour: float | None
    slope_interval_per_hour: tuple[float, float] | None
    growth_pct_per_hour: float | None
    projected_7d: float | None
    projected_interval_7d: tuple[float, float] | None
    hours_to_limit: float | None
    restarts: int
    why: Reason | None
    """Why this verdict, as data (a code and its figures); ``reason`` is its sentence."""
    threshold_per_hour: float | None = None
    """The practical threshold applied (metric unit per hour)."""
    level: float | None = None
    """Median of the current regime's envelope (metric unit)."""
    hours_needed: float | None = None
    """For "inconclusive": about how many more hours of data would decide."""
    too_short: bool = False
    """True when "inconclusive" only because the regime is too short for a leak at the threshold to
    have moved the metric by two measurement resolutions (``MetricSpec.resolution``): nothing
    suspicious was seen, the run just could not have shown it yet."""
    observed_change: float | None = None
    """The regime's fitted change (slope × duration, summed over runs between restarts; metric unit)."""
    min_change: float | None = None
    """The observed change a leak verdict needs (metric_specs ``min_change_*``; metric unit)."""
    regime_start: float | None = None
    severity: str | None = None
    """For a leak: "slow", "moderate", "fast" or "critical" (``severity``); else None."""
    regime_hours: float | None = None
    """Length of the current regime (hours; summed over runs between restarts when pooled)."""
    extrapolation: float | None = None
    """How far a 7-day projection reaches beyond the regime, in regime lengths; above
    ``MAX_EXTRAPOLATION`` there is no projection (null)."""
    warmup: WarmupEvidence | None = None
    """For "inconclusive, still warming up": the evidence (slowing growth, levelling-off fit)."""
    segments: tuple[Segment, ...] = ()
    gaps: tuple[tuple[float, float], ...] = ()
    samples: int = 0
    envelope_t: np.ndarray = field(default_factory=lambda: np.empty(0))
    """Window times (Unix s) of the reduced series, all segments."""
    envelope_y: np.ndarray = field(default_factory=lambda: np.empty(0))
    """Window minimum (memory) or median/mean (others) at ``envelope_t``."""
    fitted_y: np.ndarray = field(default_factory=lambda: np.empty(0))
    """The series the trend is fitted on, at ``envelope_t``: for memory the window minima smoothed by
    a rolling minimum over 5 windows (per segment, so GC teeth vanish); else ``envelope_y``. Charts
    draw this line as "lower envelope"."""
    trend_t: np.ndarray = field(default_factory=lambda: np.empty(0))
    """Start and end (Unix s) of the current regime's fitted line."""
    trend_y: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def reason(self) -> str:
        """The one sentence a person can act on (``wording.reason_sentence``)."""
        return wording.reason_sentence(self.why) if self.why is not None else ""

    @property
    def reason_code(self) -> str | None:
        """The machine-readable reason (``reason.CODES``)."""
        return self.why.code if self.why is not None else None

    def to_json(self) -> dict:
        """The per-metric dict of verdict.json (docs/formats.md)."""
        return {
            "verdict": self.verdict, "unit": self.unit,
            "slope_per_hour": _num(self.slope_per_hour),
            "slope_interval_per_hour": _pair(self.slope_interval_per_hour),
            "growth_pct_per_hour": _num(self.growth_pct_per_hour),
            "projected_7d": _num(self.projected_7d),
            "projected_interval_7d": _pair(self.projected_interval_7d),
            "hours_to_limit": _num(self.hours_to_limit),
            "restarts": self.restarts, "reason": self.reason, "reason_code": self.reason_code,
            "min_growth_per_hour": _num(self.threshold_per_hour), "level": _num(self.level),
            "hours_needed": _num(self.hours_needed), "too_short": self.too_short,
            "regime_start": _num(self.regime_start), "regime_hours": _num(self.regime_hours),
            "severity": self.severity, "extrapolation": _num(self.extrapolation),
            "warmup": None if self.warmup is None else {
                "thirds_per_hour": [_num(x) for x in self.warmup.thirds_per_hour],
                "start_slope_per_hour": _num(self.warmup.start_slope_per_hour),
                "end_slope_per_hour": _num(self.warmup.end_slope_per_hour),
                "fit_gain": _num(self.warmup.fit_gain), "level_off": _num(self.warmup.level_off)},
            "observed_change": _num(self.observed_change), "min_change": _num(self.min_change),
            "samples": self.samples, "gaps": len(self.gaps),
            "segments": [s.to_json() for s in self.segments],
        }


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _pair(p: tuple[float, float] | None) -> list | None:
    return None if p is None else [_num(p[0]), _num(p[1])]


@dataclass
class _SegmentFit:
    segment: Segment
    t_h: np.ndarray  # window times, hours since segment start
    z: np.ndarray  # series the trend is fitted on
    regime_idx: int
    settled: bool
    fit: TrendFit | None
    thirds: tuple[float, float, float] = (0.0, 0.0, 0.0)  # slopes of the regime's thirds (per hour)
    warmup: WarmupEvidence | None = None
    """Set when the regime's growth slows down (a warm-up): the evidence the reason quotes."""
    warmup_from_h: float = 0.0
    """Segment hour the warm-up evidence starts at (``warmup.settle_h`` counts from there)."""


def analyze_metric(df, metric: str = "rss_bytes", *, limit: float | None = None,
                   min_growth_pct_per_hour: float | None = None, unit: str | None = None,
                   seed: int = 0) -> MetricVerdict:
    """Verdict on ``df[metric]`` over ``df["timestamp"]`` (Unix s); see the module docstring.

    ``limit`` (metric unit) enables ``hours_to_limit``; ``min_growth_pct_per_hour`` overrides the
    metric's practical threshold (metric_specs.METRICS); ``seed`` fixes the bootstrap.
    """
    spec = metric_spec(metric, unit)
    if min_growth_pct_per_hour is not None:
        if min_growth_pct_per_hour < 0:
            raise CommandError(f"min growth must be >= 0 %/h, got {min_growth_pct_per_hour}", EXIT_BAD_INPUT)
        spec = dataclasses.replace(spec, min_growth_pct_per_hour=float(min_growth_pct_per_hour))
    if "timestamp" not in df.columns:
        raise CommandError("no 'timestamp' column in the samples", EXIT_BAD_INPUT)
    if metric not in df.columns:
        have = ", ".join(c for c in df.columns if c not in ("timestamp", "pid", "create_time"))
        raise CommandError(f"no {metric!r} column in the samples (have: {have or 'none'})", EXIT_BAD_INPUT)
    t = np.asarray(df["timestamp"], dtype=float)
    y = np.asarray(df[metric], dtype=float)
    ids = {c: np.asarray(df[c], dtype=float) for c in ("pid", "create_time") if c in df.columns}
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    ids = {c: v[ok] for c, v in ids.items()}
    if len(t) > 1 and bool((np.diff(t) < 0).any()):
        order = np.argsort(t, kind="stable")
        t, y = t[order], y[order]
        ids = {c: v[order] for c, v in ids.items()}

    segments = split_segments(t, ids.get("pid"), ids.get("create_time"))
    restarts = max(len(segments) - 1, 0)
    base = dict(metric=metric, unit=spec.unit, restarts=restarts, segments=tuple(segments), samples=len(t))
    about = dict(metric=metric, unit=spec.unit, kind=spec.kind, direction=spec.direction)
    if len(t) < MIN_REGIME_POINTS:
        return MetricVerdict(verdict="inconclusive", slope_per_hour=None, slope_interval_per_hour=None,
                             growth_pct_per_hour=None, projected_7d=None, projected_interval_7d=None,
                             hours_to_limit=None, why=Reason(R.TOO_FEW_SAMPLES, samples=len(t),
                                                             min_samples=MIN_REGIME_POINTS, **about),
                             **base)
    interval_s = typical_interval_s(t)
    total_s = float(t[-1] - t[0])
    fits: list[_SegmentFit] = []
    env_t, env_y = [], []
    for k, seg in enumerate(segments):
        sf = _fit_segment(t[seg.start_idx:seg.end_idx], y[seg.start_idx:seg.end_idx], seg, spec,
                          interval_s, total_s, seed + k, env_t, env_y)
        fits.append(sf)
    fitted = [f.z for f in fits]
    usable = [f for f in fits if f.fit is not None]
    common = dict(base, gaps=tuple(find_gaps(t, interval_s)),
                  envelope_t=np.concatenate(env_t) if env_t else np.empty(0),
                  envelope_y=np.concatenate(env_y) if env_y else np.empty(0),
                  fitted_y=np.concatenate(fitted) if fitted else np.empty(0))
    if not usable:
        hours = max(segments[-1].duration_h, 0.0)
        return MetricVerdict(verdict="inconclusive", slope_per_hour=None, slope_interval_per_hour=None,
                             growth_pct_per_hour=None, projected_7d=None, projected_interval_7d=None,
                             hours_to_limit=None, hours_needed=max(1.0 - hours, 0.5),
                             why=Reason(R.TOO_SHORT_TO_FIT, regime_hours=hours, **about), **common)
    return _decide(metric, spec, usable, limit, restarts, common)


def _fit_segment(t, y, seg, spec, interval_s, total_s, seed, env_t, env_y) -> _SegmentFit:
    width = window_width_s(seg.end_s - seg.start_s, interval_s, WINDOWS_PER_SEGMENT)
    width = max(width, total_s / MAX_WINDOWS_TOTAL)
    tw, yw, _ = reduce_windows(t, y, width, spec.reducer)
    env_t.append(tw)
    env_y.append(yw)
    z = rolling_min_centered(yw, ENVELOPE_SMOOTH_WINDOWS, full_edges=True) if spec.reducer == "min" else yw
    t_h = (tw - seg.start_s) / 3600.0
    if len(z) < MIN_REGIME_POINTS:
        return _SegmentFit(seg, t_h, z, 0, False, None)
    seasonal_seg = (t_h[-1] - t_h[0]) >= SEASONAL_MIN_HOURS
    zd = z - seasonal_component(t_h, z) if seasonal_seg else z
    warm_at: dict[int, WarmupEvidence] = {}

    def evidence(start: int) -> WarmupEvidence:
        if start not in warm_at:
            level = float(np.median(z[start:]))
            tolerance = 0.5 * max(spec.min_change_pct / 100.0 * abs(level), spec.min_change_abs)
            warm_at[start] = warmup_evidence(t_h[start:], zd[start:], sign=spec.direction,
                                             tolerance=tolerance, seed=seed)
        return warm_at[start]

    # A straight stretch whose growth slows down is a warm-up's tail, not the current regime:
    # look for a later one (a warm-up, then a leak), else judge it as a warm-up. A later stretch
    # is a leak after the warm-up only if it is clearly straighter or faster than the warm-up
    # curve carried on (a shorter piece of the same curve looks straighter, not less curved).
    # Only a segment that slows down as a whole (after its leading ramp) is warming up: a leak's
    # rate wobbles with the load, and a short late stretch can slow down by chance.
    ramp = leading_ramp_end(t_h, zd)
    whole = evidence(ramp)

    def warm_tail(start: int) -> bool:
        return start <= ramp or whole.explains(t_h[start:], evidence(start))

    regime = find_regime(t_h, zd, reject=warm_tail if whole.slowing else None, direction=spec.direction)
    r = regime.start_idx
    seasonal_fit = (t_h[-1] - t_h[r]) >= SEASONAL_MIN_HOURS
    fit = fit_trend(t_h[r:], z[r:] if seasonal_fit else zd[r:], seasonal=seasonal_fit, seed=seed)
    warming = whole.slowing and (warm_tail(r) or not regime.settled)
    return _SegmentFit(seg, t_h, z, r, regime.settled, fit, _thirds(t_h[r:], zd[r:]),
                       whole if warming else None, float(t_h[ramp]))


def _thirds(t_h: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares slopes of the first, middle and last third (by time) of a regime."""
    edges = t_h[0] + (t_h[-1] - t_h[0]) * np.array([0, 1 / 3, 2 / 3, 1 + 1e-12])
    cut = np.searchsorted(t_h, edges)
    return tuple(ols_slope(t_h[a:b], y[a:b]) if b - a >= 3 else 0.0 for a, b in zip(cut[:-1], cut[1:], strict=True))


def _persistent(sf: _SegmentFit, sign: int) -> bool:
    """Growth in every third of the regime (each at least 30% of the whole slope): no step, no bend."""
    s = sign * sf.fit.slope_per_hour
    return s > 0 and all(sign * x >= 0.3 * s for x in sf.thirds)


def _uptime_origin_h(seg: Segment) -> float:
    """Hours from the segment's first sample back to the process start (<= 0)."""
    ct = seg.create_time_s
    if ct is not None and seg.start_s - 400 * 86400 <= ct <= seg.start_s + 1.0:
        return (ct - seg.start_s) / 3600.0
    return 0.0


def _pool(usable: list[_SegmentFit], sign: int, level: float, spec: MetricSpec):
    """Inverse-variance pooled slope of the runs between restarts: (slope, lo, hi, agree, span_h)."""
    slopes = np.array([u.fit.slope_per_hour for u in usable])
    # A run that is exactly constant has a standard error of 0: floor it at a resolution far
    # below any threshold so the weights stay finite (no 1/0) and such runs still count.
    se_floor = 1e-12 * max(abs(level), spec.min_abs_per_hour, 1e-12)
    ses = np.maximum([u.fit.slope_se for u in usable], se_floor)
    w = (ses.min() / ses) ** 2  # relative inverse-variance weights: never overflow
    s = float(np.sum(w * slopes) / np.sum(w))
    q = float(np.sum(w * (slopes - s) ** 2))
    se = float(ses.min() * np.sqrt(1.0 / np.sum(w) * max(1.0, q / (len(usable) - 1) / ses.min() ** 2)))
    # Pooling needs growth that persists within most runs: a warm-up tail in short runs
    # between restarts slopes up too, but fades within each run.
    agree = float(np.mean([_persistent(u, sign) for u in usable]))
    span_h = float(sum(u.t_h[-1] - u.t_h[u.regime_idx] for u in usable))
    return s, s - 1.96 * se, s + 1.96 * se, agree, span_h


def practical_threshold(spec: MetricSpec, level: float, limit: float | None) -> float:
    """The smallest growth per hour called a leak (and that "ok" must rule out), in the metric's unit.

    The larger of ``min_growth_pct_per_hour`` of the level and the absolute floor; with a limit,
    never more than the growth that would reach it within ``LIMIT_HORIZON_H`` (a process close to
    its limit leaks dangerously at a rate that is small against its level).
    """
    threshold = max(spec.min_growth_pct_per_hour / 100.0 * abs(level), spec.min_abs_per_hour)
    if limit is not None:
        headroom = (limit - level) * spec.direction
        threshold = max(min(threshold, headroom / LIMIT_HORIZON_H), threshold * MIN_LIMIT_THRESHOLD_FRACTION)
    return threshold


def severity(growth_pct_per_hour: float | None, hours_to_limit: float | None) -> str | None:
    """How bad a leak is: from the time to the limit when one is known, else from growth per week.

    With a limit: "critical" within a day, "fast" within a week, "moderate" within 30 days, else
    "slow". Without: "fast" from +100 % of the level a week, "moderate" from +17 % (0.1 %/h),
    else "slow"; None when the level is 0 (no percentage).
    """
    if hours_to_limit is not None:
        for name, hours in SEVERITY_HOURS_TO_LIMIT:
            if hours_to_limit <= hours:
                return name
        return "slow"
    if growth_pct_per_hour is None:
        return None
    per_week = abs(growth_pct_per_hour) * PROJECTION_HOURS
    for name, pct in SEVERITY_PCT_PER_WEEK:
        if per_week >= pct:
            return name
    return "slow"


def _warmup_hours_needed(cur: _SegmentFit, now_h: float) -> float:
    """More hours until a warm-up would have levelled off and stayed flat as long again."""
    w = cur.warmup
    elapsed = max(now_h - cur.warmup_from_h, 1e-9)
    if w.settle_h is None or w.tau_h is None or w.tau_h >= SATURATING_MAX_TAU_SPANS * elapsed:
        return max(now_h, MIN_MORE_HOURS)  # no usable levelling-off fit: as long again
    settle_at = cur.warmup_from_h + w.settle_h
    return max(2.0 * settle_at - now_h, 0.5 * now_h, MIN_MORE_HOURS)


def _decide(metric, spec, usable, limit, restarts, common) -> MetricVerdict:
    cur = usable[-1]
    fit = cur.fit
    sign = spec.direction
    regime_h = float(cur.t_h[-1] - cur.t_h[cur.regime_idx])
    level = float(np.median(cur.z[cur.regime_idx:]))
    s, lo, hi = fit.slope_per_hour, fit.slope_lo, fit.slope_hi
    settled = cur.settled or _persistent(cur, sign)
    pooled_runs, pooled_growing = 0, None
    span_h = regime_h
    if len(usable) >= 2:
        s, lo, hi, pooled_growing, span_h = _pool(usable, sign, level, spec)
        settled = pooled_growing >= 0.75
        pooled_runs = len(usable)
    threshold = practical_threshold(spec, level, limit)
    bad_s, bad_lo, bad_hi = (s, lo, hi) if sign > 0 else (-s, -hi, -lo)
    # Growth in % of a zero (or numerically zero) level is undefined: null, and the reason says why.
    growth_pct = 100.0 * s / abs(level) if abs(level) > ZERO_LEVEL_FRACTION * max(threshold, abs(s), 1e-300) else None

    # What the regime actually showed (in the bad direction), and what a leak verdict needs seen:
    # a short run's allocator step or unfinished warm-up has a steep rate but a small total.
    observed = s * span_h
    min_change = max(spec.min_change_pct / 100.0 * abs(level), spec.min_change_abs)
    too_small = sign * observed < min_change
    proven = bad_lo > 0 and bad_s >= threshold and settled
    now_h = float(cur.t_h[-1])

    code, hours_needed = None, None
    if proven and too_small:
        # Growth is real and fast, but too little of it has been seen: never "ok", never a
        # projection; the hours until the trend would have produced the minimum change.
        verdict, code = "inconclusive", R.TOO_LITTLE_CHANGE
        hours_needed = max(0.5, min_change / bad_s - span_h)
    elif proven:
        verdict, code = "leak", R.GROWING
    elif bad_hi < threshold or bad_hi <= 0:  # growth that counts as a leak (or any growth) ruled out
        verdict, code = "ok", R.RULED_OUT
    else:
        verdict = "inconclusive"
        code = R.UNDECIDED if settled else R.CHANGES_COURSE
        half = max((bad_hi - bad_lo) / 2, 1e-300)
        target = max(threshold - bad_s, bad_s, threshold * 0.25, 1e-300)
        factor = (half / target) ** (2.0 / 3.0) if half > target else 1.0
        hours_needed = max(0.5, span_h * (factor - 1.0)) if settled else max(0.5, span_h * 0.5)

    # A utilisation (CPU, GPU) drifts for minutes while the load settles: no "leak" (drift)
    # verdict on a regime shorter than the spec's minimum, whatever its rate.
    if (verdict == "leak" or (verdict == "inconclusive" and too_small and bad_lo > 0)) \
            and span_h < spec.min_trend_hours:
        verdict, code = "inconclusive", R.UTILISATION_SETTLING
        hours_needed = spec.min_trend_hours - span_h
    # Growth that slows down through the run is a warm-up until it has levelled off: not a leak,
    # not "ok" either while it still rises.
    elif len(usable) == 1 and cur.warmup is not None and bad_s > 0 and verdict != "ok":
        verdict, code = "inconclusive", R.WARMING_UP
        hours_needed = _warmup_hours_needed(cur, now_h)

    # "ok" claims a leak at the threshold is ruled out: only if such a leak would have moved the
    # metric by two measurement resolutions (a memory page, one count) within the regime.
    unresolved = verdict == "ok" and spec.resolution > 0 and threshold * span_h < 2.0 * spec.resolution
    if unresolved:
        verdict, code = "inconclusive", R.TOO_SHORT_TO_RULE_OUT
        hours_needed = 2.0 * spec.resolution / threshold - span_h

    origin_h = _uptime_origin_h(cur.segment)
    dt = origin_h + PROJECTION_HOURS - fit.t_ref_h
    level_now = fit.intercept + s * (now_h - fit.t_ref_h)
    # How far a 7-day projection reaches beyond the data it comes from (in regime lengths).
    extrapolation = max(origin_h + PROJECTION_HOURS - now_h, 0.0) / max(span_h, 1e-9)
    projected = projected_interval = None
    if spec.projects and extrapolation <= MAX_EXTRAPOLATION:
        # The interval: the wider of the slope's 95 % interval and the slopes the regime's thirds
        # showed, carried as far: far beyond its data, a trend may keep any rate it has had.
        thirds = cur.thirds if len(usable) == 1 else ()
        slope_lo, slope_hi = min((lo, *thirds)), max((hi, *thirds))
        projected = fit.intercept + s * dt
        p_lo, p_hi = sorted((fit.intercept + slope_lo * dt, fit.intercept + slope_hi * dt))
        # A straight line carried 7 days can cross a physical bound (CPU falling to -534 %): clamp.
        projected, p_lo, p_hi = (_clamp(x, spec) for x in (projected, p_lo, p_hi))
        projected_interval = (p_lo, p_hi)
    hours_to_limit = None
    if limit is not None and bad_lo > 0 and bad_s > 0:
        gap = (limit - level_now) * sign
        hours_to_limit = 0.0 if gap <= 0 else gap / bad_s
    sev = severity(growth_pct, hours_to_limit) if verdict == "leak" else None

    t0 = cur.segment.start_s
    regime_start = t0 + 3600.0 * float(cur.t_h[cur.regime_idx])
    w = cur.warmup if code == R.WARMING_UP else None
    why = Reason(code, metric=metric, unit=spec.unit, kind=spec.kind, direction=sign, slope_per_hour=s,
                 slope_lo=lo, slope_hi=hi, growth_pct_per_hour=growth_pct, threshold_per_hour=threshold,
                 level=level, pooled_runs=pooled_runs, pooled_growing=pooled_growing, hours_needed=hours_needed,
                 regime_hours=span_h, warmup_hours=float(cur.t_h[cur.regime_idx]) if pooled_runs == 0 else 0.0,
                 observed_change=observed, min_change=min_change, resolution=spec.resolution,
                 min_trend_hours=spec.min_trend_hours, severity=sev, limit=limit,
                 hours_to_limit=hours_to_limit if verdict == "leak" else None,
                 projected_7d=projected if verdict == "leak" else None,
                 projected_interval_7d=projected_interval if verdict == "leak" else None,
                 extrapolation=extrapolation if spec.projects else None,
                 warmup_thirds_per_hour=w.thirds_per_hour if w else None,
                 warmup_thirds_falling=w.thirds_falling if w else None,
                 warmup_start_slope_per_hour=w.start_slope_per_hour if w else None,
                 warmup_end_slope_per_hour=w.end_slope_per_hour if w else None,
                 warmup_fit_gain=w.fit_gain if w else None, warmup_level_off=w.level_off if w else None,
                 warmup_hours_seen=now_h - cur.warmup_from_h if w else None)
    return MetricVerdict(
        verdict=verdict, slope_per_hour=s, slope_interval_per_hour=(lo, hi),
        growth_pct_per_hour=growth_pct, projected_7d=projected, projected_interval_7d=projected_interval,
        hours_to_limit=hours_to_limit, why=why, threshold_per_hour=threshold, level=level,
        hours_needed=hours_needed, too_short=unresolved, regime_start=regime_start, observed_change=observed,
        min_change=min_change, severity=sev, regime_hours=span_h, extrapolation=extrapolation,
        warmup=w, trend_t=np.array([regime_start, t0 + 3600.0 * now_h]),
        trend_y=np.array([fit.level_at(cur.t_h[cur.regime_idx]), level_now]), **common)


def _clamp(v: float, spec: MetricSpec) -> float:
    """``v`` within the metric's physical bounds (``spec.lower_bound``/``upper_bound``)."""
    if spec.lower_bound is not None:
        v = max(v, spec.lower_bound)
    if spec.upper_bound is not None:
        v = min(v, spec.upper_bound)
    return v


def overall_verdict(verdicts) -> str:
    """"leak" if any metric leaks, else "inconclusive" if any is undecided (or none given), else "ok"."""
    words = [v.verdict for v in verdicts]
    if "leak" in words:
        return "leak"
    if not words or "inconclusive" in words:
        return "inconclusive"
    return "ok"


def decided_by(named, overall: str, counted) -> list[str]:
    """The metrics that decided ``overall``: those among ``counted`` whose own verdict is it, sorted.

    ``named`` is ``(metric, MetricVerdict)`` pairs; ``counted`` the verdicts that made up the overall
    one (after ``set_aside_too_short``). A leak is decided by the leaking metrics alone, not by the
    counts that were merely inconclusive beside it.
    """
    counted_ids = {id(v) for v in counted}
    return sorted({m for m, v in named if id(v) in counted_ids and v.verdict == overall})


def set_aside_too_short(verdicts) -> tuple[list, list]:
    """Split ``verdicts`` into those that decide the headline and count verdicts set aside.

    Memory is the primary question: once a memory metric has an answer ("ok" or "leak"), a count
    metric (threads, fds, processes) that is inconclusive only because the run is too short for
    its resolution (``too_short``: one count at 0.25/h needs 8 h) does not make the headline
    inconclusive; its own verdict stays "inconclusive" with its reason. A count "leak" still
    decides, and a too-short memory metric is never set aside. Returns (deciding, set_aside).
    """
    verdicts = list(verdicts)
    memory_decided = any(metric_spec(v.metric).kind == "memory" and v.verdict in ("ok", "leak")
                         for v in verdicts)
    if not memory_decided:
        return verdicts, []
    aside = [v for v in verdicts if v.verdict == "inconclusive" and getattr(v, "too_short", False)
             and metric_spec(v.metric).kind == "count"]
    return [v for v in verdicts if not any(v is a for a in aside)], aside


def too_short_note(v) -> str:
    """The verdict.json note for a count verdict set aside by ``set_aside_too_short``."""
    return wording.too_short_note(v.metric, v.unit, v.threshold_per_hour, metric_spec(v.metric).resolution)
