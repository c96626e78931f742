"""Incremental parsers for streamed LLM responses: Server-Sent Events and NDJSON.

Both parsers are fed raw lines (``bytes``, with or without the trailing newline) as they arrive
from the socket, so the caller can timestamp each content-bearing event at its arrival. They do
no I/O and keep no more than one partial event in memory.

* :class:`SSEParser` follows the WHATWG event-stream rules that matter for LLM servers:
  ``data:`` lines (one space after the colon is optional), multi-line data joined with ``\\n``,
  comments (``:``) and other fields (``event:``, ``id:``, ``retry:``) ignored, an empty line
  dispatches the event. ``data: [DONE]`` is reported as :data:`DONE`.
* :class:`NDJSONParser` yields one payload per non-empty line.

Payloads are returned as ``bytes`` so the caller decides when JSON decoding is worth its cost.
"""

from __future__ import annotations

DONE = b"[DONE]"
"""The OpenAI end-of-stream sentinel (``data: [DONE]``), returned as a payload by SSEParser."""

_MAX_EVENT_BYTES = 16 * 1024 * 1024  # one event larger than this is not an LLM token stream


class StreamTooLarge(ValueError):
    """A single event/line exceeded the parser's bound (16 MiB)."""


class SSEParser:
    """Turns SSE lines into event payloads (the joined ``data`` of each event), as bytes.

    ``feed_line(line)`` returns the completed event's data when ``line`` is the blank line that
    ends an event with data, else ``None``. ``finish()`` returns a last event left without its
    blank line (a server that closes right after ``data: ...\\n``).
    """

    __slots__ = ("_data", "_size")

    def __init__(self) -> None:
        self._data: list[bytes] = []
        self._size = 0

    def feed_line(self, line: bytes) -> bytes | None:
        """Feed one line (trailing ``\\n``/``\\r\\n`` allowed); return a completed payload or None."""
        # Fast path for the common 'data: {...}\n' line of LLM servers.
        if line[:6] == b"data: ":
            self._append(line[6:].rstrip(b"\r\n"))
            return None
        stripped = line.rstrip(b"\r\n")
        if not stripped:
            return self._dispatch()
        if stripped[:1] == b":":
            return None  # comment / keep-alive
        field, sep, value = stripped.partition(b":")
        if field == b"data":
            if value[:1] == b" ":
                value = value[1:]
            self._append(value if sep else b"")
        return None  # event:, id:, retry: and unknown fields carry no content here

    def finish(self) -> bytes | None:
        """Payload of a trailing event the server did not terminate with a blank line."""
        return self._dispatch()

    def _append(self, value: bytes) -> None:
        self._size += len(value) + 1
        if self._size > _MAX_EVENT_BYTES:
            raise StreamTooLarge(f"SSE event larger than {_MAX_EVENT_BYTES} bytes")
        self._data.append(value)

    def _dispatch(self) -> bytes | None:
        if not self._data:
            return None
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        self._data = []
        self._size = 0
        return data


class NDJSONParser:
    """Turns NDJSON lines into payloads: one per non-blank line, whitespace stripped."""

    __slots__ = ()

    def feed_line(self, line: bytes) -> bytes | None:
        """Feed one line; return its payload, or None for a blank line."""
        if len(line) > _MAX_EVENT_BYTES:
            raise StreamTooLarge(f"NDJSON line larger than {_MAX_EVENT_BYTES} bytes")
        payload = line.strip()
        return payload or None

    def finish(self) -> bytes | None:
        """NDJSON keeps no partial state between lines."""
        return None


class LineSplitter:
    """Splits arbitrary byte chunks into ``\\n``-terminated lines (for chunk-based sources).

    ``feed(chunk)`` returns the complete lines in order; ``finish()`` returns the unterminated
    rest (or ``b""``). Used by tests and by any transport that yields chunks instead of lines.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._buffer + chunk
        parts = data.split(b"\n")
        self._buffer = parts.pop()
        if len(self._buffer) > _MAX_EVENT_BYTES:
            raise StreamTooLarge(f"line larger than {_MAX_EVENT_BYTES} bytes")
        return [p + b"\n" for p in parts]

    def finish(self) -> bytes:
        rest, self._buffer = self._buffer, b""
        return rest


def parse_sse(chunks) -> list[bytes]:
    """All payloads of an SSE byte stream given as an iterable of chunks (tests, non-streamed bodies)."""
    splitter, parser, out = LineSplitter(), SSEParser(), []
    for chunk in chunks:
        for line in splitter.feed(chunk):
            if (payload := parser.feed_line(line)) is not None:
                out.append(payload)
    rest = splitter.finish()
    if rest and (payload := parser.feed_line(rest)) is not None:
        out.append(payload)
    if (payload := parser.finish()) is not None:
        out.append(payload)
    return out


def parse_ndjson(chunks) -> list[bytes]:
    """All payloads of an NDJSON byte stream given as an iterable of chunks."""
    splitter, parser, out = LineSplitter(), NDJSONParser(), []
    for chunk in chunks:
        for line in splitter.feed(chunk):
            if (payload := parser.feed_line(line)) is not None:
                out.append(payload)
    rest = splitter.finish()
    if rest and (payload := parser.feed_line(rest)) is not None:
        out.append(payload)
    return out
