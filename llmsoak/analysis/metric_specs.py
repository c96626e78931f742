"""Per-metric defaults in one table: how to reduce, what growth matters, which direction is bad.

``min_growth_pct_per_hour`` is the practical threshold relative to the metric's level and
``min_abs_per_hour`` an absolute floor in the metric's unit; the larger of the two applies, so a
verdict needs growth that matters, not just growth that is statistically visible.

``min_change_pct`` / ``min_change_abs`` bound what was *observed*: a leak verdict also needs the
current regime's fitted rise (slope × its duration) to reach the larger of the two. A short run
of a healthy process rises a little (allocator steps, a warm-up that has not levelled off, a
connection pool filling) at a rate that, carried over a week, looks like a leak; below this
total change the verdict is "inconclusive" instead.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

MIB = 1024.0 * 1024.0
MEMORY_MIN_CHANGE_PCT = 1.5
MEMORY_MIN_CHANGE_BYTES = 4 * MIB


@dataclass(frozen=True)
class MetricSpec:
    """How one metric is analysed. ``reducer``: min (lower envelope), median or mean per window."""

    kind: str  # memory | count | cpu | latency | rate | throughput
    reducer: str
    unit: str
    min_growth_pct_per_hour: float
    min_abs_per_hour: float
    direction: int = 1
    """+1 when growth is bad (memory, latency), -1 when a fall is bad (tokens per second)."""
    lower_bound: float | None = 0.0
    """Physical floor of the metric (projections are clamped to it); None when it can be negative."""
    upper_bound: float | None = None
    """Physical ceiling (1.0 for a fraction such as ``error_rate``); None when unbounded."""
    min_change_pct: float = 0.0
    """Smallest observed change, in % of the level, that a leak verdict needs."""
    min_change_abs: float = 0.0
    """Smallest observed change in the metric's unit that a leak verdict needs."""
    resolution: float = 0.0
    """Measurement resolution in the metric's unit (a memory page, one count, 0.1 CPU point). "ok"
    needs a leak at the practical threshold to have changed the metric by >= 2 resolutions over
    the analysed regime; otherwise the data could not have shown it. 0 disables the rule."""
    min_trend_hours: float = 0.0
    """Shortest regime (hours) on which a "leak" (drift) verdict is allowed: CPU and GPU
    utilisation drift for minutes while the load settles, so a 40-s rise is no trend."""
    projects: bool = True
    """False for utilisations (percent of a core or device): a load level, not a stock that
    accumulates, so a 7-day straight line is meaningless; ``projected_7d`` is then null."""


# Observed-change minimums (last two fields), why each:
# memory: allocator steps (pymalloc arenas of 1 MiB, glibc heap top-ups) and warm-ups of a few
#   % of the level are normal in a healthy process's first minutes to hours;
# counts: a connection pool or thread pool opens a few more under a burst;
# CPU: psutil's cpu_percent over a 0.5-1 s interval moves in steps of 1-2 points;
# latency and throughput: queues and caches settle by a few % after the load starts.
# CPU/GPU utilisation: a "leak" (drift) verdict needs >= 30 min of regime (the load settles for
#   minutes), and no 7-day projection (a load level, not a stock: null in verdict.json).
CPU_MIN_TREND_HOURS = 0.5
# Resolutions: memory 4096 B (a page); counts 1; CPU/GPU 0.1 point (one decimal); latency 0.001 ms;
# tokens/s 0.01; error_rate 0.0001.
PAGE_BYTES = 4096.0
_MEMORY = MetricSpec("memory", "min", "bytes", 0.01, 0.25 * MIB, min_change_pct=MEMORY_MIN_CHANGE_PCT,
                     min_change_abs=MEMORY_MIN_CHANGE_BYTES, resolution=PAGE_BYTES)
_COUNT = MetricSpec("count", "median", "count", 0.1, 0.25, min_change_pct=1.0, min_change_abs=3.0, resolution=1.0)
_LATENCY = MetricSpec("latency", "median", "ms", 0.2, 0.1, min_change_pct=5.0, min_change_abs=1.0, resolution=0.001)
_UTILISATION = MetricSpec("cpu", "median", "percent", 0.5, 0.1, min_change_pct=5.0, min_change_abs=2.0,
                          min_trend_hours=CPU_MIN_TREND_HOURS, projects=False, resolution=0.1)

METRICS: dict[str, MetricSpec] = {
    "rss_bytes": _MEMORY, "uss_bytes": _MEMORY, "vms_bytes": _MEMORY, "swap_bytes": _MEMORY,
    "cgroup_memory_bytes": _MEMORY, "gpu_memory_bytes": _MEMORY, "rss_bytes_min": _MEMORY,
    "num_threads": _COUNT, "num_fds": _COUNT, "num_procs": _COUNT,
    "cpu_percent": _UTILISATION, "gpu_util_percent": _UTILISATION,
    # error_rate = failures / requests per minute (a fraction): rare events, so the window mean.
    "error_rate": MetricSpec("rate", "mean", "ratio", 0.0, 0.0005, upper_bound=1.0, min_change_abs=0.005, resolution=0.0001),
    "tokens_per_s": MetricSpec("throughput", "median", "tokens/s", 0.2, 0.01, direction=-1, min_change_pct=5.0,
                               min_change_abs=0.1, resolution=0.01),
    "host_available_bytes": MetricSpec("memory", "min", "bytes", 0.1, 0.25 * MIB, direction=-1,
                                       min_change_pct=MEMORY_MIN_CHANGE_PCT, min_change_abs=MEMORY_MIN_CHANGE_BYTES, resolution=PAGE_BYTES),
}


def metric_spec(metric: str, unit: str | None = None) -> MetricSpec:
    """The spec for ``metric``: from the table, else inferred from its unit suffix."""
    spec = METRICS.get(metric)
    if spec is None:
        if metric.endswith("_bytes"):
            spec = _MEMORY
        elif metric.endswith("_ms"):
            spec = _LATENCY
        elif metric.endswith("_percent"):
            spec = METRICS["cpu_percent"]
        elif metric.startswith("num_") or metric.endswith("_count"):
            spec = _COUNT
        elif metric.endswith("_rate"):
            spec = METRICS["error_rate"]
        else:
            spec = MetricSpec("other", "median", "", 0.2, 0.0, lower_bound=None, min_change_pct=2.0)
    if unit is not None and unit != spec.unit:
        spec = dataclasses.replace(spec, unit=unit)
    return spec
