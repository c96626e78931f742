"""The stub's own per-request timings, for measuring what a load generator adds to TTFT.

A client that sends ``x-llmsoak-request-id: ID`` on a model request gets the id echoed and
``x-llmsoak-stub-queued-ms`` in the response headers, and when the response completes the stub
keeps ``{queued_ms, ttft_ms, e2e_ms, tokens}`` for that id, all in milliseconds from the moment
the whole request had arrived (its head and body parsed). ``GET /_stub/timings`` returns them.
Client TTFT minus the stub's TTFT is what the client side added: sending, the network stack,
waking up, reading and parsing (docs/stub.md, "Per-request timings").

Memory is bounded: at most :data:`MAX_RECORDS` ids are kept, the oldest dropped first (counted
in ``dropped``); requests without the header are never recorded.
"""

from __future__ import annotations

from collections import OrderedDict

REQUEST_ID_HEADER = "x-llmsoak-request-id"
"""Request header (lower-case) carrying the client's id for a request."""
QUEUED_MS_HEADER = "x-llmsoak-stub-queued-ms"
"""Response header: ms from the request's arrival to its admission (time in the stub's queue)."""
MAX_REQUEST_ID_CHARS = 128
"""Longer ids are ignored (not echoed, not recorded)."""
MAX_RECORDS = 50_000
"""Most ids kept at once (about 10 MB); the oldest go first."""


def request_id_of(headers: dict[str, str]) -> str | None:
    """The client's request id from lower-cased request headers, or None (absent, empty, too long)."""
    value = headers.get(REQUEST_ID_HEADER)
    if not value or len(value) > MAX_REQUEST_ID_CHARS:
        return None
    return value


class RequestTimings:
    """Completed requests' stub-side timings by client request id (bounded, oldest dropped)."""

    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        self.max_records = max_records
        self._records: OrderedDict[str, dict] = OrderedDict()
        self.dropped = 0
        """Records dropped to stay within ``max_records`` since start or the last clear."""

    def record(self, request_id: str, *, queued_ms: float, ttft_ms: float, e2e_ms: float,
               tokens: int) -> None:
        records = self._records
        records.pop(request_id, None)  # a reused id: the latest request wins, newest position
        records[request_id] = {"queued_ms": round(queued_ms, 3), "ttft_ms": round(ttft_ms, 3),
                               "e2e_ms": round(e2e_ms, 3), "tokens": tokens}
        while len(records) > self.max_records:
            records.popitem(last=False)
            self.dropped += 1

    def clear(self) -> None:
        self._records.clear()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._records)

    def to_json(self) -> dict:
        return {"max_records": self.max_records, "dropped": self.dropped,
                "requests": dict(self._records)}
