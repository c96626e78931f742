"""What one model request produced (:class:`RequestResult`), and the classes every failure falls into.

A request either succeeds or fails in exactly one of :data:`FAILURE_CLASSES`; the first cause
recorded wins (:meth:`RequestResult.fail`). :func:`classify_exception` maps whatever the HTTP
stack, the stream splitters or the JSON decoder raised to a class and a normalised detail (a
bounded set of strings: no ids, so Locust's error table stays small over a week).
The failure classes are documented in docs/metrics.md; a new class belongs here, with its
mapping in :func:`classify_exception` and a ``fail_<class>`` column in llm_timeseries.csv
(docs/formats.md).
"""

from __future__ import annotations

import errno
import json
import socket
from dataclasses import dataclass, field

from llmsoak.formats import FAILURE_CLASSES  # every failed request lands in exactly one (docs/formats.md)
from llmsoak.locust.streams import StreamTooLarge

__all__ = ["FAILURE_CLASSES", "RequestResult", "classify_exception"]


@dataclass(slots=True)
class RequestResult:
    """What one HTTP request to the model produced. Times are milliseconds from sending it."""

    status: int = 0
    """HTTP status code; 0 when no response headers arrived."""
    ttft_ms: float | None = None
    """Time to the first content-bearing chunk (non-streamed: to the complete body)."""
    e2e_ms: float = 0.0
    """Time to the last byte (or to the failure)."""
    itl_ms: list[float] = field(default_factory=list)
    """Gaps between consecutive content-bearing chunks (streamed only)."""
    content_chunks: int = 0
    """Content-bearing chunks received (the approximate output token count)."""
    input_tokens: int | None = None
    """Prompt tokens reported by the server (usage / prompt_eval_count), None when not reported."""
    output_tokens: int | None = None
    """Completion tokens reported by the server (usage / eval_count), None when not reported."""
    text: str = ""
    """The reply text (appended to the conversation history)."""
    failure_class: str | None = None
    """One of FAILURE_CLASSES, or None for a success."""
    failure_detail: str = ""
    """Normalised one-line description (no ids, bounded set of values)."""
    finished: bool = False
    """The stream's end marker ([DONE], done: true) or a complete JSON body was seen."""

    @property
    def ok(self) -> bool:
        return self.failure_class is None

    @property
    def tokens_approximate(self) -> bool:
        """True when output_tokens is not from the server (counted chunks instead)."""
        return self.output_tokens is None

    @property
    def output_token_count(self) -> int:
        """Server-reported completion tokens, else the number of content chunks."""
        return self.output_tokens if self.output_tokens is not None else self.content_chunks

    @property
    def tpot_ms(self) -> float | None:
        """Time per output token after the first: (e2e − ttft) / (tokens − 1); None for < 2 tokens."""
        n = self.output_token_count
        if self.ttft_ms is None or n < 2 or not self.itl_ms:
            return None
        return (self.e2e_ms - self.ttft_ms) / (n - 1)

    def fail(self, failure_class: str, detail: str) -> RequestResult:
        if self.failure_class is None:  # the first cause wins
            self.failure_class = failure_class
            self.failure_detail = detail
        return self

    @property
    def failure_message(self) -> str:
        """``"<class>: <detail>"``, the text Locust's error table shows (bounded set of values)."""
        return f"{self.failure_class}: {self.failure_detail}"


def classify_exception(exc: BaseException) -> tuple[str, str]:
    """Failure class and normalised detail for an exception raised while talking to the target."""
    name = type(exc).__name__
    if isinstance(exc, (TimeoutError, socket.timeout)) or name == "Timeout":
        return "timeout", "no data within the network timeout"
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError, StreamTooLarge)):
        return "malformed", "invalid JSON"
    if name in ("HTTPParseError", "HTTPConnectionClosed", "IncompleteRead", "RemoteDisconnected"):
        return "disconnect", "connection closed before the response was complete"
    if isinstance(exc, ConnectionRefusedError):
        return "disconnect", "connection refused"
    if isinstance(exc, (ConnectionError, OSError)):
        if getattr(exc, "errno", None) in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED) or \
                isinstance(exc, ConnectionError):
            return "disconnect", "connection reset"
        return "other", f"{name}"
    if isinstance(exc, ValueError):
        return "malformed", "unexpected JSON structure"
    return "other", name
