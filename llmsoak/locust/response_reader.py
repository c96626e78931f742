"""A model's response, streamed or whole, read into a :class:`~llmsoak.locust.results.RequestResult`.

:func:`read_stream_chunks` takes a ``read_chunk()`` callable (the body bytes that arrived,
``b""`` at the end), splits them into events (llmsoak.locust.streams), decodes each with the
flavour (llmsoak.locust.apis) and timestamps the content-bearing ones: TTFT, ITL and E2E in
milliseconds from ``t_sent`` (``time.perf_counter`` based). :func:`read_body` does the same for
a complete JSON body. Every way a response can fail is classified into one of
``FAILURE_CLASSES`` (llmsoak.locust.results), never raised.

Nothing here imports Locust or touches a socket: the Locust user hands in
``llmsoak.locust.internals.body_reader(response)``; tests hand in lists of bytes.
"""

from __future__ import annotations

from time import perf_counter

from llmsoak.locust.apis import Flavour
from llmsoak.locust.fast_json import ContentShortcut, parse_json
from llmsoak.locust.results import RequestResult, ServerError, classify_exception
from llmsoak.locust.streams import DONE, NDJSONStream, SSEStream


def read_stream_chunks(read_chunk, flavour: Flavour, result: RequestResult, t_sent: float) -> RequestResult:
    """Consume a streamed body read by ``read_chunk()``, timestamping content-bearing chunks.

    ``read_chunk()`` returns the body bytes that have arrived (waiting for at least one byte) or
    ``b""`` at the end of the body; ``t_sent`` is the perf_counter value when the request was
    sent. Exceptions are classified, never raised. The whole body is read even after a
    failure-free end marker so the connection can be reused.

    One timestamp per read, taken as it returns: the first content-bearing event sets TTFT, and
    a later read that brought k content events gives k ITL values of (its gap since the previous
    content read) / k, so a read carrying several events has no spurious 0 gaps (docs/metrics.md;
    events that came with the first are spread over the second read's gap: n events, n − 1
    values, summing to the time from the first to the last). When the server's usage reports more tokens
    than events, each ITL is then made per token (RequestResult.spread_itl_over_tokens). How the
    stream ended is classified by RequestResult.end_stream. Per read: one split and one ``perf_counter``. Per
    event: a prefix/suffix comparison and a string scan (:class:`ContentShortcut`) for content
    events after the first, else a full JSON parse and the flavour's ``decode_event``.
    """
    events = SSEStream() if flavour.stream_format == "sse" else NDJSONStream()
    decode = flavour.decode_event
    shortcut = ContentShortcut()
    parts: list[str] = []
    append = parts.append
    itl = result.itl_ms
    last = 0.0
    carried = 0
    seen_done_marker = False
    error: BaseException | None = None
    try:
        while True:
            chunk = read_chunk()
            now = perf_counter()
            payloads = events.feed(chunk) if chunk else events.finish()
            if payloads:
                before = len(parts)
                for payload in payloads:
                    if shortcut.prefix is not None and (text := shortcut.text(payload)) is not None:
                        append(text)
                        continue
                    if payload == DONE:
                        seen_done_marker = True
                        continue
                    text = decode(parse_json(payload), result)
                    if text:
                        if shortcut.prefix is None and not parts:
                            shortcut.learn(payload, text, flavour)
                        append(text)
                arrived = len(parts) - before
                if arrived:
                    if result.ttft_ms is None:
                        result.ttft_ms = (now - t_sent) * 1000.0
                        carried = arrived - 1  # came with the first token: spread over the next gap
                    elif arrived == 1 and not carried:
                        itl.append((now - last) * 1000.0)
                    else:  # the gap delivered them all: spread it over them
                        arrived += carried
                        carried = 0
                        itl.extend([(now - last) * 1000.0 / arrived] * arrived)
                    last = now
            if not chunk:
                break
    except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes
        error = exc
    result.e2e_ms = (perf_counter() - t_sent) * 1000.0
    result.content_chunks = len(parts)
    result.text = "".join(parts)
    result.end_stream(content_events=len(parts), done_marker=seen_done_marker, error=error)
    result.spread_itl_over_tokens()
    return result


def read_stream(readline, flavour: Flavour, result: RequestResult, t_sent: float) -> RequestResult:
    """:func:`read_stream_chunks` over ``readline(sep)`` (one line per read; geventhttpclient's
    ``response.stream.readline`` contract: a line including ``sep``, ``b""`` at the end)."""
    return read_stream_chunks(lambda: readline(b"\n"), flavour, result, t_sent)


def read_body(body: bytes | None, flavour: Flavour, result: RequestResult, t_sent: float) -> RequestResult:
    """Interpret a complete (non-streamed) JSON body."""
    result.e2e_ms = (perf_counter() - t_sent) * 1000.0
    if not body or not body.strip():
        return result.fail("empty", "empty body")
    try:
        text = flavour.decode_body(parse_json(body), result)
    except Exception as exc:  # noqa: BLE001
        if isinstance(exc, ServerError):
            result.server_reason = exc.reason[:1000]
        return result.fail(*classify_exception(exc))
    if not text:
        return result.fail("empty", "no content in the response")
    result.text = text
    result.ttft_ms = result.e2e_ms
    result.content_chunks = 1
    return result
