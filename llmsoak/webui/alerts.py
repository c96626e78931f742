"""Threshold alerts for the Soak page: the profile's SLO against what the run shows right now.

``check_thresholds`` is a pure function (values in, alert list out). ``AlertLog`` remembers which
alerts are active, logs each crossing once (and its clearing once), appends an ``alert`` event to
the run's ``events.csv`` when its path is known, and keeps a bounded list of recent crossings.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import asdict, dataclass

from llmsoak.events import append_event
from llmsoak.formatting import format_bytes

logger = logging.getLogger(__name__)

RECENT_MAX = 100


@dataclass(frozen=True)
class Alert:
    """One threshold crossed. ``value`` and ``threshold`` are in the unit named by ``unit``."""

    key: str
    """Stable identity: ``memory_limit``, ``memory_warn``, ``ttft_p95``, ``error_rate``."""
    severity: str
    """``"critical"`` or ``"warning"``."""
    value: float
    threshold: float
    unit: str
    message: str

    def to_json(self) -> dict:
        return asdict(self)


def check_thresholds(slo, *, rss_bytes: float | None = None, ttft_p95_ms: float | None = None,
                     error_rate: float | None = None, requests: int = 0, min_requests: int = 20) -> list[Alert]:
    """Alerts for every SLO threshold that ``slo`` sets and the current values cross.

    ``slo`` is the profile's ``SloConfig`` (or anything with the same attributes; None → no alerts).
    Memory above the limit reports only ``memory_limit`` (not also ``memory_warn``). Latency and
    error-rate checks wait for ``min_requests`` so the first request cannot raise an alarm alone.
    """
    if slo is None:
        return []
    alerts: list[Alert] = []
    limit = getattr(slo, "memory_limit_bytes", None)
    warn = getattr(slo, "memory_warn_bytes", None)
    if rss_bytes is not None:
        if limit is not None and rss_bytes >= limit:
            alerts.append(Alert("memory_limit", "critical", float(rss_bytes), float(limit), "bytes",
                                f"target memory {format_bytes(rss_bytes)} reached the limit {format_bytes(limit)}"))
        elif warn is not None and rss_bytes >= warn:
            alerts.append(Alert("memory_warn", "warning", float(rss_bytes), float(warn), "bytes",
                                f"target memory {format_bytes(rss_bytes)} is above the warning level {format_bytes(warn)}"))
    enough = requests >= min_requests
    ttft_slo = getattr(slo, "ttft_p95_ms", None)
    if enough and ttft_slo is not None and ttft_p95_ms is not None and ttft_p95_ms > ttft_slo:
        alerts.append(Alert("ttft_p95", "warning", float(ttft_p95_ms), float(ttft_slo), "ms",
                            f"TTFT p95 {ttft_p95_ms:.0f} ms is above the SLO {ttft_slo:.0f} ms"))
    rate_slo = getattr(slo, "error_rate", None)
    if enough and rate_slo is not None and error_rate is not None and error_rate > rate_slo:
        alerts.append(Alert("error_rate", "critical", float(error_rate), float(rate_slo), "fraction",
                            f"error rate {error_rate:.2%} is above the SLO {rate_slo:.2%}"))
    return alerts


class AlertLog:
    """Active alerts plus a bounded history of crossings; logs and records each crossing once."""

    def __init__(self, events_path=None, *, clock=time.time) -> None:
        self.events_path = events_path
        self._clock = clock
        self.active: dict[str, dict] = {}
        self.recent: deque[dict] = deque(maxlen=RECENT_MAX)

    def update(self, alerts: list[Alert]) -> list[dict]:
        """Record ``alerts`` as the current set; returns the newly crossed ones."""
        now = self._clock()
        new = []
        current = {a.key: a for a in alerts}
        for key, alert in current.items():
            if key not in self.active:
                entry = {**alert.to_json(), "since": now}
                self.active[key] = entry
                self.recent.append({**entry, "state": "crossed", "timestamp": now})
                new.append(entry)
                logger.warning("llmsoak alert: %s", alert.message)
                self._record(f"{alert.severity}: {alert.message}")
            else:
                self.active[key].update(value=alert.value, message=alert.message)
        for key in [k for k in self.active if k not in current]:
            entry = self.active.pop(key)
            self.recent.append({**entry, "state": "cleared", "timestamp": now})
            logger.info("llmsoak alert cleared: %s", entry["key"])
            self._record(f"cleared: {entry['key']}")
        return new

    def _record(self, detail: str) -> None:
        if not self.events_path:
            return
        try:
            append_event(self.events_path, "alert", detail)
        except OSError as err:  # a full disk must not take the web UI down; say so once per crossing
            logger.error("llmsoak: could not append alert to %s: %s", self.events_path, err)

    def to_json(self) -> dict:
        return {"active": list(self.active.values()), "recent": list(self.recent)[-20:]}
