"""Memory the stub really uses: per-request working buffers and the optional deliberate leak.

Every in-flight request holds a buffer of ``kv_bytes_per_token`` × (prompt + output tokens),
like an inference engine's KV cache, with every page written so it counts in RSS; it is
released when the request ends, so RSS follows concurrency and stays flat over time.
``--leak-kb-per-request N`` keeps N KiB per finished model request forever, also written page by
page (zero pages from calloc would not be resident), so RSS really grows: a known leak for
testing leak detection.
"""

from __future__ import annotations

PAGE_BYTES = 4096


def touched_buffer(size_bytes: int) -> bytearray:
    """A ``size_bytes`` buffer with one byte written per page, so every page is resident."""
    buf = bytearray(size_bytes)
    if size_bytes:
        pages = range(0, size_bytes, PAGE_BYTES)
        buf[::PAGE_BYTES] = b"\x01" * len(pages)
    return buf


class MemoryModel:
    """Per-request buffers and the leak store; byte counts for /_stub/stats."""

    def __init__(self, kv_bytes_per_token: int, leak_bytes_per_request: int) -> None:
        self.kv_bytes_per_token = kv_bytes_per_token
        self.leak_bytes_per_request = leak_bytes_per_request
        self.in_flight_bytes = 0
        """Bytes currently held by in-flight request buffers."""
        self.leaked_bytes = 0
        """Bytes kept forever by the deliberate leak."""
        self._leaked: list[bytes] = []

    def hold(self, tokens: int) -> bytearray:
        """Allocate (and touch) the working buffer of a request over ``tokens`` tokens."""
        size = max(0, tokens) * self.kv_bytes_per_token
        self.in_flight_bytes += size
        return touched_buffer(size)

    def release(self, buf: bytearray) -> None:
        self.in_flight_bytes -= len(buf)

    def leak_one_request(self) -> None:
        """Keep ``leak_bytes_per_request`` bytes forever (written, so resident)."""
        if self.leak_bytes_per_request > 0:
            self._leaked.append(b"L" * self.leak_bytes_per_request)
            self.leaked_bytes += self.leak_bytes_per_request
