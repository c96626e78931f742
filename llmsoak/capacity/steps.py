"""One measured step of a sweep: from the recorded requests to rates, percentiles, goodput, SLO.

Pure functions over rows of ``requests-<pid>.csv`` (llmsoak.capacity.locust_side) and the
per-process phase windows; no I/O but :func:`read_records`.

Definitions (docs/capacity.md):

- A request *belongs* to a step when it was scheduled (open loop) or sent (closed loop) inside a
  process's measured window; its latencies count wherever it ends.
- *Achieved* req/s: requests that ended inside the window (any outcome) / window length, summed
  over processes. Output tokens/s likewise.
- *Good* request: succeeded, TTFT ≤ ``slo.ttft_p95_ms`` and E2E ≤ ``slo.e2e_p95_ms`` (those
  set). Goodput share = good / (belonging + dropped); goodput rate = good / window.
- A step *meets the SLOs* when the p95s are within ``slo.ttft_p95_ms``/``slo.e2e_p95_ms``, the
  error rate within ``slo.error_rate`` (1 % when unset), and, open loop, the generator dropped
  at most 1 % and the achieved rate is at least 90 % of the offered one.
"""

from __future__ import annotations

import collections
import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_ERROR_RATE = 0.01
"""Error-rate SLO of a step when the profile's ``slo.error_rate`` is unset."""
MAX_DROPPED_SHARE = 0.01
MIN_ACHIEVED_SHARE = 0.9
PERCENTILES = (50, 90, 95, 99)
GENERATOR_LAG_WARN_MS = 50.0
"""A step whose schedule → send lag p95 exceeds this (or that dropped late arrivals) is marked
``generator_behind``: its latencies may describe the load generator, not the server."""


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0–100, linear interpolation) of ``values``; None when empty."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


@dataclass(frozen=True)
class Window:
    """One process's measured window of a step (Unix seconds) and its generator counts."""

    pid: int
    start: float
    end: float
    scheduled: int = 0
    sent: int = 0
    dropped: int = 0
    """Arrivals not sent: the in-flight bound was full, or they were reached too late."""
    late: int = 0
    """Of ``dropped``: reached more than ``max_lag_s`` late (the generator was saturated)."""
    lag_max_ms: float = 0.0


@dataclass
class Step:
    """What one step measured. Latencies in milliseconds, rates per second."""

    kind: str
    """``rate`` (open loop, ``load`` = offered req/s), ``concurrency`` (closed loop, ``load`` =
    requests in flight) or ``users`` (the profile's users, ``load`` = number of users)."""
    load: float
    window_s: float
    requests: int
    failures: int
    dropped: int
    achieved_rps: float
    output_tokens_per_s: float
    error_rate: float | None
    good: int
    goodput_share: float | None
    goodput_rps: float
    latency_ms: dict[str, dict[str, float | None]]
    """``{"ttft": {"p50": …, "p90": …, "p95": …, "p99": …}, "itl": …, "tpot": …, "e2e": …}``."""
    lag_ms: dict[str, float | None]
    """Schedule → send lag: p50, p95, max (open loop; 0 closed loop)."""
    failure_reasons: dict[str, int] = field(default_factory=dict)
    """The most frequent failure messages of the step (``<class>: <detail>`` → count, top 3)."""
    meets_slo: bool = False
    reasons: list[str] = field(default_factory=list)
    """Why the step misses the SLOs (empty when it meets them)."""
    generator_behind: bool = False
    """The generator fell behind its schedule (lag p95 > GENERATOR_LAG_WARN_MS, or late drops):
    add ``--processes`` before trusting this step."""
    superseded: bool = False
    """Measured again (role ``retry``) because its generator fell behind: the knee ignores it."""
    role: str = "sweep"
    """``synchronous``, ``throughput``, ``sweep``, ``probe``, ``refine``, ``retry`` or ``users``."""

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def read_records(folder: Path) -> list[dict]:
    """Every row of every ``requests-*.csv`` in ``folder`` (numbers as floats, blanks as None)."""
    rows: list[dict] = []
    for path in sorted(folder.glob("requests-*.csv")):
        pid = int(path.stem.split("-", 1)[1])
        with open(path, newline="") as fh:
            for raw in csv.DictReader(fh):
                row: dict = {"pid": pid, "pattern": raw.get("pattern"), "failure_class": raw.get("failure_class"),
                             "failure": raw.get("failure") or raw.get("failure_class") or ""}
                for key in ("phase", "t_sched", "lag_ms", "t_end", "ok", "status", "ttft_ms", "e2e_ms",
                            "tpot_ms", "itl_ms", "output_tokens", "input_tokens", "turn"):
                    value = raw.get(key)
                    try:
                        row[key] = float(value) if value not in (None, "") else None
                    except ValueError:
                        row[key] = None
                if row["t_sched"] is not None and row["t_end"] is not None:
                    rows.append(row)
    return rows


def _good(row: dict, slo) -> bool:
    if not row["ok"]:
        return False
    if slo.ttft_p95_ms is not None and (row["ttft_ms"] is None or row["ttft_ms"] > slo.ttft_p95_ms):
        return False
    return not (slo.e2e_p95_ms is not None and (row["e2e_ms"] is None or row["e2e_ms"] > slo.e2e_p95_ms))


def measure(kind: str, load: float, rows: Iterable[dict], windows: Sequence[Window], slo, *,
            role: str = "sweep") -> Step:
    """The :class:`Step` of the requests ``rows`` (one phase) within the processes' ``windows``."""
    by_pid = {w.pid: w for w in windows}
    window_s = max((w.end - w.start for w in windows), default=0.0)
    belonging: list[dict] = []
    ended = tokens = 0.0
    for row in rows:
        w = by_pid.get(row["pid"])
        if w is None:
            continue
        if w.start <= row["t_sched"] < w.end:
            belonging.append(row)
        if w.start <= row["t_end"] < w.end:
            ended += 1
            tokens += row["output_tokens"] or 0
    dropped = sum(w.dropped for w in windows)
    requests = len(belonging)
    failures = sum(1 for r in belonging if not r["ok"])
    good = sum(1 for r in belonging if _good(r, slo))
    latency: dict[str, dict[str, float | None]] = {}
    for name in ("ttft", "itl", "tpot", "e2e"):
        values = [r[f"{name}_ms"] for r in belonging if r["ok"] and r[f"{name}_ms"] is not None]
        latency[name] = {f"p{p}": _round(percentile(values, p)) for p in PERCENTILES}
    lags = [r["lag_ms"] or 0.0 for r in belonging]
    step = Step(kind=kind, load=load, window_s=round(window_s, 3), requests=requests, failures=failures,
                dropped=dropped, achieved_rps=_round(ended / window_s if window_s else 0.0, 4),
                output_tokens_per_s=_round(tokens / window_s if window_s else 0.0, 2),
                error_rate=_round(failures / requests, 5) if requests else None, good=good,
                goodput_share=_round(good / (requests + dropped), 4) if requests + dropped else None,
                goodput_rps=_round(good / window_s if window_s else 0.0, 4),
                latency_ms=latency,
                lag_ms={"p50": _round(percentile(lags, 50)), "p95": _round(percentile(lags, 95)),
                        "max": _round(max([w.lag_max_ms for w in windows] + lags, default=0.0))},
                role=role)
    counts = collections.Counter(r.get("failure") or "failed" for r in belonging if not r["ok"])
    step.failure_reasons = dict(counts.most_common(3))
    late = sum(w.late for w in windows)
    step.generator_behind = bool(late) or (step.lag_ms["p95"] or 0.0) > GENERATOR_LAG_WARN_MS
    judge(step, slo)
    return step


def judge(step: Step, slo) -> Step:
    """Set ``meets_slo`` and ``reasons`` of ``step`` against the profile's ``slo``."""
    reasons = []
    if step.requests == 0:
        reasons.append("no request measured")
    for name, limit in (("ttft", slo.ttft_p95_ms), ("e2e", slo.e2e_p95_ms)):
        p95 = step.latency_ms[name]["p95"]
        if limit is not None and step.requests:
            if p95 is None:
                reasons.append(f"no successful request to measure {name.upper()}")
            elif p95 > limit:
                reasons.append(f"{name.upper()} p95 {p95:.0f} ms > {limit:g} ms")
    max_errors = slo.error_rate if slo.error_rate is not None else DEFAULT_ERROR_RATE
    if step.error_rate is not None and step.error_rate > max_errors:
        top = ", ".join(f"{n}× {reason}" for reason, n in step.failure_reasons.items())
        reasons.append(f"error rate {step.error_rate:.1%} > {max_errors:.1%}" + (f" ({top})" if top else ""))
    if step.kind == "rate":
        offered = step.requests + step.dropped
        if offered and step.dropped / offered > MAX_DROPPED_SHARE:
            reasons.append(f"{step.dropped} of {offered} arrivals dropped (in-flight bound or generator lag)")
        if step.achieved_rps < MIN_ACHIEVED_SHARE * step.load:
            reasons.append(f"achieved {step.achieved_rps:.2f} req/s < {MIN_ACHIEVED_SHARE:.0%} of {step.load:.2f} offered")
    step.reasons = reasons
    step.meets_slo = not reasons
    return step


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)
