"""The SLO gate: the profile's SLOs decide ``llmsoak run``'s exit code (for CI pipelines).

Checks (each skipped when its SLO is not set):

- ``ttft_p95_ms``: the run's TTFT p95 = the request-weighted mean of the per-minute p95 of the
  ``all`` rows of llm_timeseries.csv; breached when above.
- ``e2e_p95_ms``: the same for the full-reply time (``e2e_p95_ms`` column).
- ``error_rate``: failed / all requests over the run (llm_timeseries.csv, else Locust's totals).
- ``memory_limit_bytes``: breached when the target's largest RSS sample reached it;
  ``memory_warn_bytes`` only warns (an ``alert`` event, exit code unchanged).
- ``fail_on_leak``: the analysis' verdict ``leak`` is a breach; ``inconclusive`` gives exit 3.

Exit codes: 0 pass · 1 an SLO breached or a leak · 2 bad input/profile · 3 leak verdict
inconclusive while ``fail_on_leak`` (and nothing breached) · 4 target unavailable · 5 I/O error.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from llmsoak.errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK
from llmsoak.formatting import format_bytes
from llmsoak.profile import SloConfig


@dataclass(frozen=True)
class Check:
    """One SLO check: ``status`` is "pass", "breach", "warn", "inconclusive" or "no data"."""

    name: str
    status: str
    observed: float | str | None
    threshold: float | str | None
    detail: str

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "observed": self.observed,
                "threshold": self.threshold, "detail": self.detail}


def _num(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


LATENCY_SLOS = ("ttft_p95_ms", "e2e_p95_ms")
"""SLOs on a per-minute p95 column of llm_timeseries.csv (same name in the profile's slo section)."""


def load_totals(llm_timeseries: Path, locust_totals: tuple[float, float] | None = None) -> dict:
    """Requests, failures and the request-weighted TTFT and E2E p95 (ms) from the ``all`` rows of
    the LLM series (streamed: a week of minutes is fine)."""
    requests = failures = 0.0
    weighted = dict.fromkeys(LATENCY_SLOS, 0.0)
    weight = dict.fromkeys(LATENCY_SLOS, 0.0)
    try:
        with open(llm_timeseries, newline="", errors="replace") as fh:
            for row in csv.DictReader(fh):
                if row.get("pattern") != "all":
                    continue
                n = _num(row.get("requests")) or 0.0
                requests += n
                failures += _num(row.get("failures")) or 0.0
                for column in LATENCY_SLOS:
                    p95 = _num(row.get(column))
                    if p95 is not None and n > 0:
                        weighted[column] += p95 * n
                        weight[column] += n
    except OSError:
        pass
    if requests == 0 and locust_totals:
        requests, failures = locust_totals
    return {"requests": requests, "failures": failures,
            **{c: weighted[c] / weight[c] if weight[c] else None for c in LATENCY_SLOS}}


def max_rss_bytes(samples: Path) -> float | None:
    """The largest ``rss_bytes`` in a samples CSV (streamed: a week of samples is fine)."""
    best = None
    try:
        with open(samples, newline="", errors="replace") as fh:
            for row in csv.DictReader(fh):
                value = _num(row.get("rss_bytes"))
                if value is not None and (best is None or value > best):
                    best = value
    except OSError:
        return None
    return best


def evaluate(slo: SloConfig, totals: dict, max_rss: float | None, verdict: dict | None) -> list[Check]:
    """The checks the profile asks for, in a fixed order."""
    checks: list[Check] = []
    for name, label in zip(LATENCY_SLOS, ("TTFT", "E2E"), strict=True):
        limit_ms = getattr(slo, name)
        if limit_ms is None:
            continue
        observed = totals.get(name)
        if observed is None:
            checks.append(Check(name, "no data", None, limit_ms, f"no {label} measured"))
        else:
            ok = observed <= limit_ms
            checks.append(Check(name, "pass" if ok else "breach", round(observed, 1), limit_ms,
                                f"{label} p95 {observed:.0f} ms {'≤' if ok else '>'} {limit_ms:g} ms"))
    if slo.error_rate is not None:
        requests, failures = totals.get("requests") or 0, totals.get("failures") or 0
        if not requests:
            checks.append(Check("error_rate", "no data", None, slo.error_rate, "no requests"))
        else:
            rate = failures / requests
            ok = rate <= slo.error_rate
            checks.append(Check("error_rate", "pass" if ok else "breach", round(rate, 5), slo.error_rate,
                                f"{failures:.0f} of {requests:.0f} requests failed ({rate:.2%}, SLO {slo.error_rate:.2%})"))
    if slo.memory_limit_bytes is not None:
        if max_rss is None:
            checks.append(Check("memory_limit_bytes", "no data", None, slo.memory_limit_bytes, "no RSS samples"))
        else:
            ok = max_rss < slo.memory_limit_bytes
            checks.append(Check("memory_limit_bytes", "pass" if ok else "breach", max_rss, slo.memory_limit_bytes,
                                f"peak RSS {format_bytes(max_rss)} vs limit {format_bytes(slo.memory_limit_bytes)}"))
    if slo.memory_warn_bytes is not None and max_rss is not None:
        ok = max_rss < slo.memory_warn_bytes
        checks.append(Check("memory_warn_bytes", "pass" if ok else "warn", max_rss, slo.memory_warn_bytes,
                            f"peak RSS {format_bytes(max_rss)} vs warning {format_bytes(slo.memory_warn_bytes)}"))
    if slo.fail_on_leak:
        v = (verdict or {}).get("verdict")
        status = {"leak": "breach", "ok": "pass"}.get(v or "", "inconclusive")
        checks.append(Check("leak", status, v, "no leak", f"leak verdict: {v or 'none (analysis failed)'}"))
    return checks


def exit_code(checks: list[Check]) -> int:
    """0 pass, 1 any breach, 3 only an inconclusive leak verdict stands in the way."""
    if any(c.status == "breach" for c in checks):
        return EXIT_FAILED
    if any(c.status == "inconclusive" for c in checks):
        return EXIT_INCONCLUSIVE
    return EXIT_OK
