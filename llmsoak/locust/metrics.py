"""LLM metrics: exact mergeable histograms, per-pattern windows, and recording into Locust stats.

Two sinks get every request's numbers:

1. **Locust's own stats** (web UI table, ``--csv``, ``--html``, ``--json``, merged by the master
   from worker reports with Locust's histograms). The HTTP request is an ordinary request event
   (``POST /v1/chat/completions [active]``, response time = end-to-end, failures with a
   normalised ``"<class>: <detail>"`` message). The LLM metrics are extra rows whose *type* column
   is the metric — ``TTFT``, ``ITL``, ``TPOT``, ``E2E`` (milliseconds), ``OUT_TOKENS``,
   ``IN_TOKENS`` (tokens per request) and ``TOKENS/S`` (output tokens per second per request) —
   under the same name. They are logged into their own rows (``stats.get(name, metric).log``,
   never ``stats.log_request``), so the **Aggregated row counts HTTP requests only**; workers
   serialise all entries and the master merges them like any other row. One ITL per token is
   logged in bulk (``llmsoak.locust.internals.log_many``). Locust rounds its histogram to two
   significant digits (147 → 150 ms, sub-millisecond ITL → 0 or 1).
2. **LogHistogram windows** (this module): 1 %-wide logarithmic buckets, exact under merging,
   so percentiles of sub-millisecond ITL stay right. They feed llm_timeseries.csv and
   ``get_llm_state(env).snapshot()``.
"""

from __future__ import annotations

import math
from collections import defaultdict

from llmsoak.formats import FAILURE_CLASSES
from llmsoak.locust.internals import log_many
from llmsoak.locust.results import RequestResult

METRIC_TYPES = ("TTFT", "ITL", "TPOT", "E2E", "IN_TOKENS", "OUT_TOKENS", "TOKENS/S")
"""Locust stats *type* column values used for LLM metrics; never part of the Aggregated row."""

_STEP = 1.01  # bucket width: values within 1 % share a bucket (percentile error < 0.5 %)
_LN_STEP = math.log(_STEP)
_INV_LN_STEP = 1.0 / _LN_STEP
_MIN_MS = 0.001  # 1 µs: anything smaller is reported as 1 µs


def _bucket(value_ms: float) -> int:
    if value_ms <= _MIN_MS:
        value_ms = _MIN_MS
    return round(math.log(value_ms) * _INV_LN_STEP)


_ZERO_KEY = _bucket(0.0)


def _bucket_value(key: int) -> float:
    return _STEP ** key


class LogHistogram:
    """Counts of values (ms) in 1 %-wide log buckets; mergeable exactly, bounded (~2,000 keys max)."""

    __slots__ = ("buckets", "count")

    def __init__(self, buckets: dict[int, int] | None = None) -> None:
        self.buckets: dict[int, int] = defaultdict(int)
        self.count = 0
        if buckets:
            self.merge(buckets)

    def add(self, value_ms: float) -> None:
        self.buckets[_bucket(value_ms)] += 1
        self.count += 1

    def add_many(self, values_ms: list[float]) -> None:
        """``add(v)`` for every value (one ITL per token). Exact zeros (a stub at ``--itl-ms 0``,
        a clock that did not move) are counted in one C call."""
        buckets = self.buckets
        zeros = values_ms.count(0.0)
        if zeros:
            buckets[_ZERO_KEY] += zeros
        if zeros < len(values_ms):
            for v in filter(None, values_ms):  # the non-zero values only
                buckets[round(math.log(v if v > _MIN_MS else _MIN_MS) * _INV_LN_STEP)] += 1
        self.count += len(values_ms)

    def merge(self, buckets: dict) -> None:
        """Add another histogram's ``buckets`` (as serialised: keys may be str after JSON)."""
        for key, n in buckets.items():
            self.buckets[int(key)] += n
            self.count += n

    def percentile(self, q: float) -> float | None:
        """Value (ms) at quantile ``q`` (0 ≤ q ≤ 1), None when empty; relative error < 0.5 %."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within [0, 1], got {q}")
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                return _bucket_value(key)
        return _bucket_value(max(self.buckets))

    def serialize(self) -> dict[int, int]:
        return dict(self.buckets)


class Window:
    """Everything counted for one pattern over one span (a minute, or the whole run)."""

    __slots__ = ("requests", "failures", "ttft", "itl", "tpot", "e2e", "input_tokens",
                 "output_tokens", "approx_output_requests")

    def __init__(self) -> None:
        self.requests = 0
        self.failures: dict[str, int] = {c: 0 for c in FAILURE_CLASSES}
        self.ttft = LogHistogram()
        self.itl = LogHistogram()
        self.tpot = LogHistogram()
        self.e2e = LogHistogram()
        self.input_tokens = 0
        self.output_tokens = 0
        self.approx_output_requests = 0
        """Successful requests whose output tokens were counted chunks (no server usage)."""

    def add_result(self, result: RequestResult) -> None:
        self.requests += 1
        if result.failure_class is not None:
            self.failures[result.failure_class] += 1
            return
        if result.ttft_ms is not None:
            self.ttft.add(result.ttft_ms)
        if result.itl_ms:
            self.itl.add_many(result.itl_ms)
        tpot = result.tpot_ms
        if tpot is not None:
            self.tpot.add(tpot)
        self.e2e.add(result.e2e_ms)
        self.input_tokens += result.input_tokens or 0
        self.output_tokens += result.output_token_count
        if result.output_tokens is None:
            self.approx_output_requests += 1

    @property
    def failures_total(self) -> int:
        return sum(self.failures.values())

    def merge(self, data: dict) -> None:
        """Merge a :meth:`serialize` dict (from a worker, or another window)."""
        self.requests += data["requests"]
        for cls, n in data["failures"].items():
            self.failures[cls if cls in self.failures else "other"] += n
        for name in ("ttft", "itl", "tpot", "e2e"):
            getattr(self, name).merge(data[name])
        self.input_tokens += data["input_tokens"]
        self.output_tokens += data["output_tokens"]
        self.approx_output_requests += data.get("approx_output_requests", 0)

    def serialize(self) -> dict:
        return {"requests": self.requests, "failures": dict(self.failures),
                "ttft": self.ttft.serialize(), "itl": self.itl.serialize(),
                "tpot": self.tpot.serialize(), "e2e": self.e2e.serialize(),
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "approx_output_requests": self.approx_output_requests}

    def summary(self, span_s: float) -> dict:
        """Percentiles (ms), counts and throughput; ``span_s`` is the window's length for tokens/s."""
        p = _round_or_none
        return {
            "requests": self.requests, "failures": self.failures_total,
            "failures_by_class": dict(self.failures),
            "ttft_p50_ms": p(self.ttft.percentile(0.5)), "ttft_p95_ms": p(self.ttft.percentile(0.95)),
            "ttft_p99_ms": p(self.ttft.percentile(0.99)),
            "itl_p50_ms": p(self.itl.percentile(0.5)), "itl_p95_ms": p(self.itl.percentile(0.95)),
            "tpot_p50_ms": p(self.tpot.percentile(0.5)),
            "e2e_p50_ms": p(self.e2e.percentile(0.5)), "e2e_p95_ms": p(self.e2e.percentile(0.95)),
            "e2e_p99_ms": p(self.e2e.percentile(0.99)),
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "tokens_per_s": round(self.output_tokens / span_s, 3) if span_s > 0 else None,
            "output_tokens_approximate": self.approx_output_requests > 0,
        }


def _round_or_none(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def log_llm_metrics(stats, name: str, result: RequestResult) -> None:
    """Log one successful request's LLM metrics as extra Locust stats rows named ``name``.

    Through ``stats.get(name, metric)``, not ``stats.log_request``: the Aggregated row
    (``stats.total``) must count HTTP requests only.
    """
    if result.failure_class is not None:
        return
    row = stats.get
    if result.ttft_ms is not None:
        row(name, "TTFT").log(result.ttft_ms, 0)
    if result.itl_ms:
        log_many(row(name, "ITL"), result.itl_ms)
    tpot = result.tpot_ms
    if tpot is not None:
        row(name, "TPOT").log(tpot, 0)
    row(name, "E2E").log(result.e2e_ms, 0)
    out_tokens = result.output_token_count
    row(name, "OUT_TOKENS").log(out_tokens, 0)
    if result.input_tokens is not None:
        row(name, "IN_TOKENS").log(result.input_tokens, 0)
    if result.e2e_ms > 0:
        row(name, "TOKENS/S").log(out_tokens * 1000.0 / result.e2e_ms, 0)
