"""What one model request produced (:class:`RequestResult`), and the classes every failure falls into.

A request either succeeds or fails in exactly one of :data:`FAILURE_CLASSES`; the first cause
recorded wins (:meth:`RequestResult.fail`). :func:`classify_exception` maps whatever the HTTP
stack, the stream splitters or the JSON decoder raised to a class and a normalised detail (a
bounded set of strings: no ids, so Locust's error table stays small over a week).
:func:`classify_http_error` does the same for an error status with the server's own reason
(:func:`server_reason` pulls it out of the body, :func:`normalise_reason` strips ids, numbers and
quoted values and caps its length), and :meth:`RequestResult.end_stream` decides how a stream
that ended without an exception ended (``cut_short``, ``empty``).
The failure classes are documented in docs/metrics.md; a new class belongs here, with its
mapping in :func:`classify_exception` and a ``fail_<class>`` column in llm_timeseries.csv
(docs/formats.md).
"""

from __future__ import annotations

import errno
import json
import re
import socket
from dataclasses import dataclass, field

from llmsoak.formats import FAILURE_CLASSES  # every failed request lands in exactly one (docs/formats.md)
from llmsoak.locust.streams import StreamTooLarge

__all__ = ["FAILURE_CLASSES", "RequestResult", "ServerError", "classify_exception", "classify_http_error",
           "context_limit_in", "normalise_reason", "server_reason"]

MAX_REASON_CHARS = 160
"""Longest server reason kept in a failure message (the rest becomes ``…``)."""

CUT_SHORT_HINT = ("llama-cpp-python ends a running stream this way when another request arrives "
                  "(interrupt_requests, on by default): start it with --interrupt_requests false")
"""What is known to end a stream with ``[DONE]`` but no ``finish_reason`` (docs/engines.md)."""

_CONTEXT_WORDS = re.compile(
    r"context[ _-]?(length|window|size)|maximum context|context_length_exceeded|n_ctx|"
    r"too many tokens|prompt is too long|exceeds? (the )?(max(imum)? )?(model'?s? )?context|"
    r"input (is )?too long|maximum (input|prompt) length", re.IGNORECASE)
"""Wording of engines that refuse a prompt longer than their context (vLLM, llama.cpp, OpenAI,
Ollama, TGI, LM Studio): matched in the server's reason of a 4xx or an error event."""

_CONTEXT_LIMIT = re.compile(
    r"maximum context length is (\d+)|context window of (\d+)|context size \((\d+)|"
    r"n_ctx[^\d]{0,12}(\d+)", re.IGNORECASE)
"""The context size stated in an overflow message (``This model's maximum context length is 1024
tokens``; llama.cpp's ``exceed context window of 1024``)."""

_QUOTED = re.compile(r"`[^`\n]{1,200}`|'[^'\n]{1,200}'|\"[^\"\n]{1,200}\"")
_IDS = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|"
                  r"\b[A-Za-z]+[-_][0-9A-Za-z]{12,}\b|\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{12,}\b")
_NUMBERS = re.compile(r"\d+(?:\.\d+)?")
_SPACE = re.compile(r"\s+")


class ServerError(Exception):
    """The server reported an error inside a response that began well (an ``error`` event in a
    200 SSE stream, an Ollama ``{"error": ...}`` line). ``reason`` is its own text, ``status`` the
    code it gave (0 when none)."""

    def __init__(self, reason: str, status: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def normalise_reason(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` as one bounded line: quoted values become ``'…'``, ids ``<id>``, numbers ``N``,
    whitespace one space, at most ``limit`` characters. Over a week of failures the set of
    distinct messages (Locust's error table keys) stays small."""
    text = _QUOTED.sub(lambda m: m.group(0)[0] + "…" + m.group(0)[-1], text)
    text = _IDS.sub("<id>", text)
    text = _NUMBERS.sub("N", text)
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[:limit - 1].rstrip() + "…"
    return text


def server_reason(body: bytes | str | None) -> str:
    """The server's own words in an error body: OpenAI ``error.message``, Ollama and chat apps'
    ``error`` string, ``message``/``detail`` (FastAPI), else the body's first line. Raw (not
    normalised); ``""`` for an empty body."""
    if not body:
        return ""
    if isinstance(body, bytes):
        body = body[:65536].decode("utf-8", "replace")
    text = body.strip()
    try:
        obj = json.loads(text)
    except ValueError:
        return text.splitlines()[0] if text else ""
    reason = _reason_in(obj)
    return reason if reason is not None else text.splitlines()[0][:1000]


def _reason_in(obj) -> str | None:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, list) and obj:
        return _reason_in(obj[0])
    if not isinstance(obj, dict):
        return None
    for key in ("error", "message", "detail", "msg", "reason"):
        if key in obj:
            found = _reason_in(obj[key])
            if found is not None:
                return found
    return None


def is_context_overflow(reason: str) -> bool:
    """True when ``reason`` is an engine refusing a prompt longer than its context."""
    return bool(_CONTEXT_WORDS.search(reason))


def context_limit_in(reason: str) -> int | None:
    """The context size (tokens) an overflow message states, or None."""
    match = _CONTEXT_LIMIT.search(reason)
    if match is None:
        return None
    return int(next(g for g in match.groups() if g))


def classify_http_error(status: int, reason: str) -> tuple[str, str]:
    """Failure class and detail for an error status with the server's ``reason`` (raw text).

    429 → ``rate_limited``, 5xx → ``server_error``, a 4xx whose reason speaks of the context
    length → ``context_overflow``, any other status ≥ 400 → ``http``. The detail is
    ``HTTP <status>: <normalised reason>`` (or just ``HTTP <status>`` without a body)."""
    detail = f"HTTP {status}"
    if reason:
        detail += ": " + normalise_reason(reason)
    if status == 429:
        return "rate_limited", detail
    if status >= 500:
        return "server_error", detail
    if is_context_overflow(reason):
        return "context_overflow", detail
    return "http", detail


def classify_server_error(exc: ServerError) -> tuple[str, str]:
    """Class and detail of an error the server reported inside a 200 response."""
    reason = normalise_reason(exc.reason) or "no reason given"
    if is_context_overflow(exc.reason):
        return "context_overflow", f"error in the stream: {reason}"
    if exc.status == 429 or "rate limit" in exc.reason.lower():
        return "rate_limited", f"error in the stream: {reason}"
    if 400 <= exc.status < 500:
        return "http", f"error in the stream (code {exc.status}): {reason}"
    return "server_error", f"error in the stream: {reason}"


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
    """Inter-token latencies (streamed only): one per content-bearing event after the first, a
    read's gap spread over the events it brought, per token when usage says chunks carried
    several (docs/metrics.md)."""
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
    server_reason: str = ""
    """The server's own words for a failure, as sent (not normalised; not in the error table)."""
    finished: bool = False
    """The stream's end marker ([DONE], done: true) or a complete JSON body was seen."""
    finish_reason: str | None = None
    """Why the model stopped, as the server said (OpenAI ``finish_reason``, Ollama ``done_reason``
    or ``"done"``); None while a stream has not said it finished."""

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

    def end_stream(self, *, content_events: int, done_marker: bool, error: BaseException | None) -> None:
        """Classify how a stream ended (called once, after the last read).

        ``error`` is what reading raised (or None). After ``[DONE]``, any error (the connection
        closed before the HTTP response was complete) is ``cut_short``, as is a stream that ended
        without saying it finished (no ``finish_reason``/``done``), or ``[DONE]`` without a
        ``finish_reason`` before any content. A stream with no content that finished is ``empty``."""
        if error is not None:
            if isinstance(error, ServerError):
                self.server_reason = error.reason[:1000]
            failure = classify_exception(error)
            if done_marker and failure[0] in ("disconnect", "timeout"):
                hint = "" if self.finish_reason else "; " + CUT_SHORT_HINT
                self.fail("cut_short", "connection closed after [DONE] before the response was complete" + hint)
            else:
                self.fail(*failure)
        if done_marker or self.finish_reason is not None:
            self.finished = True
        if self.failure_class is not None:
            return
        if not content_events:
            if done_marker and self.finish_reason is None:  # interrupted before its first token
                self.fail("cut_short", "[DONE] before any content, without a finish_reason; " + CUT_SHORT_HINT)
            elif done_marker or self.finish_reason is not None:
                self.fail("empty", "no content in the response")
            else:  # not even an end marker
                self.fail("empty", "stream ended without content or end marker (llama-cpp-python "
                          "answers a prompt past its n_ctx so: set target.context_tokens)")
        elif self.finish_reason is None:
            if done_marker:
                self.fail("cut_short", "[DONE] without a finish_reason; " + CUT_SHORT_HINT)
            else:
                self.fail("cut_short", "stream ended without its end marker")

    def spread_itl_over_tokens(self) -> None:
        """When the server reports more output tokens than content events arrived (vLLM packs
        several tokens into one chunk under load), make each ITL value per token: divide by the
        tokens each event carried on average ((tokens − 1) / (events − 1))."""
        n, c = self.output_tokens, self.content_chunks
        if n is None or c < 2 or n <= c or not self.itl_ms:
            return
        factor = (c - 1) / (n - 1)
        self.itl_ms[:] = [v * factor for v in self.itl_ms]

    @property
    def failure_message(self) -> str:
        """``"<class>: <detail>"``, the text Locust's error table shows (bounded set of values)."""
        return f"{self.failure_class}: {self.failure_detail}"


def classify_exception(exc: BaseException) -> tuple[str, str]:
    """Failure class and normalised detail for an exception raised while talking to the target."""
    name = type(exc).__name__
    if isinstance(exc, ServerError):
        return classify_server_error(exc)
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
