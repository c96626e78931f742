"""Counters behind ``GET /_stub/stats`` (reset by ``POST /_stub/reset``)."""

from __future__ import annotations

import os
import time
from collections import Counter


def rss_bytes() -> int:
    """Resident set size of this process in bytes (0 if it cannot be read)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        try:
            import psutil

            return int(psutil.Process().memory_info().rss)
        except Exception:
            return 0


class StubStats:
    """What the stub served and injected since start (or the last reset)."""

    def __init__(self) -> None:
        self.started_s = time.time()
        self.reset()

    def reset(self) -> None:
        self.requests_total = 0
        """Model-serving requests (not /_stub/*, /v1/models or /api/tags)."""
        self.requests_by_endpoint: Counter[str] = Counter()
        self.responses_by_status: Counter[str] = Counter()
        self.tokens_streamed = 0
        """Tokens written in streamed responses."""
        self.tokens_generated = 0
        """Tokens produced for any response, streamed or not."""
        self.prompt_tokens = 0
        self.faults_injected: Counter[str] = Counter()
        self.rejected_queue_full = 0

    def request(self, endpoint: str) -> None:
        self.requests_total += 1
        self.requests_by_endpoint[endpoint] += 1

    def to_json(self, *, active: int, queued: int, sessions: int, leaked_bytes: int,
                in_flight_bytes: int, faults: dict[str, float]) -> dict:
        return {
            "requests_total": self.requests_total,
            "requests_by_endpoint": dict(self.requests_by_endpoint),
            "responses_by_status": dict(self.responses_by_status),
            "tokens_streamed": self.tokens_streamed,
            "tokens_generated": self.tokens_generated,
            "prompt_tokens": self.prompt_tokens,
            "faults_injected": dict(self.faults_injected),
            "rejected_queue_full": self.rejected_queue_full,
            "active_requests": active,
            "queued_requests": queued,
            "active_sessions": sessions,
            "rss_bytes": rss_bytes(),
            "in_flight_buffer_bytes": in_flight_bytes,
            "leaked_bytes": leaked_bytes,
            "uptime_s": round(time.time() - self.started_s, 3),
            "fault_rates": faults,
        }
