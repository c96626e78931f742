"""Why a metric got its verdict, as data: a reason code plus the figures a sentence needs.

The statistics (``verdict.py``) return a ``Reason``; the reporters turn it into words through
``wording.py`` (verdict.json's ``reason``, the CLI, summary.md, report.html, the web UI). verdict.json
carries the code as ``reason_code`` beside the sentence (docs/formats.md). This module imports
nothing heavy, so the wording can be used where numpy is not loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_EXTRAPOLATION = 20.0
"""No figure is carried further beyond its data than this many times the data's length: no 7-day
projection from less than 1/20 of its reach (8.4 h of regime for a fresh process), no weekly growth
from less, and no rate per hour as a headline from less than 3 minutes."""

# Reason codes (verdict.json ``reason_code``), by verdict.
TOO_FEW_SAMPLES = "too_few_samples"
"""inconclusive: fewer samples than a trend needs."""
TOO_SHORT_TO_FIT = "too_short_to_fit"
"""inconclusive: the current run of the target is too short to fit a line."""
GROWING = "growing"
"""leak: the slope's interval excludes 0 and the growth persists through the regime."""
RULED_OUT = "ruled_out"
"""ok: the data rules out growth at the practical threshold."""
CHANGES_COURSE = "changes_course"
"""inconclusive: no single straight line explains the regime (a bend or a step is left in it)."""
UNDECIDED = "undecided"
"""inconclusive: the interval holds both "no growth" and the practical threshold."""
TOO_LITTLE_CHANGE = "too_little_change"
"""inconclusive: growth is real but the total seen is below the minimum a leak verdict needs."""
TOO_SHORT_TO_RULE_OUT = "too_short_to_rule_out"
"""inconclusive: a leak at the threshold would not have moved the metric by 2 resolutions yet."""
UTILISATION_SETTLING = "utilisation_settling"
"""inconclusive: a utilisation (CPU, GPU) drifted over less than its minimum trend duration."""
WARMING_UP = "warming_up"
"""inconclusive: the growth slows down through the run (a warm-up that has not levelled off yet)."""

CODES = (TOO_FEW_SAMPLES, TOO_SHORT_TO_FIT, GROWING, RULED_OUT, CHANGES_COURSE, UNDECIDED,
         TOO_LITTLE_CHANGE, TOO_SHORT_TO_RULE_OUT, UTILISATION_SETTLING, WARMING_UP)


@dataclass(frozen=True)
class Reason:
    """The reason for one metric's verdict: ``code`` (one of ``CODES``) and the figures behind it.

    Values are in the metric's ``unit`` (rates per hour), durations in hours. Fields a code does
    not use stay None.
    """

    code: str
    metric: str
    unit: str
    kind: str
    """The metric's kind (metric_specs: memory, count, cpu, latency, rate, throughput, other)."""
    direction: int = 1
    """+1 when growth is bad, -1 when a fall is bad."""
    samples: int | None = None
    min_samples: int | None = None
    slope_per_hour: float | None = None
    slope_lo: float | None = None
    slope_hi: float | None = None
    growth_pct_per_hour: float | None = None
    threshold_per_hour: float | None = None
    level: float | None = None
    regime_hours: float | None = None
    """Length of the current regime (summed over runs between restarts when pooled)."""
    warmup_hours: float | None = None
    """Hours of the segment before the current regime (warm-up or a level shift cut off)."""
    pooled_runs: int = 0
    """Runs between restarts whose slopes were pooled (0: not pooled)."""
    pooled_growing: float | None = None
    """Fraction of the pooled runs that grow persistently."""
    projected_7d: float | None = None
    hours_to_limit: float | None = None
    limit: float | None = None
    hours_needed: float | None = None
    observed_change: float | None = None
    min_change: float | None = None
    resolution: float | None = None
    min_trend_hours: float | None = None
    severity: str | None = None
    """For a leak: slow, moderate, fast or critical (from the time to the limit, else growth per week)."""
    projected_interval_7d: tuple[float, float] | None = None
    extrapolation: float | None = None
    """How far the 7-day projection reaches beyond the regime, in regime lengths."""
    warmup_thirds_per_hour: tuple[float, float, float] | None = None
    warmup_thirds_falling: bool | None = None
    """Each later third of the warm-up grew less than the one before."""
    warmup_start_slope_per_hour: float | None = None
    warmup_end_slope_per_hour: float | None = None
    warmup_fit_gain: float | None = None
    """How many times better a levelling-off curve fits than a straight line."""
    warmup_level_off: float | None = None
    """Where the levelling-off curve ends up."""
    warmup_hours_seen: float | None = None
    """Hours of the warm-up in view."""
