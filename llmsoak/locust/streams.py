"""Incremental parsers for streamed LLM responses: Server-Sent Events and NDJSON.

Two layers:

* **Chunk splitters** (the hot path): :class:`SSEStream` and :class:`NDJSONStream` take whatever
  bytes arrived in one socket read (``feed(chunk)``) and return every payload completed by them,
  in one go. For the shape every LLM server sends (``data: {...}\\n\\n`` with ``\\n`` line ends,
  one JSON document per NDJSON line) that is one ``bytes.split`` per read plus a slice per event:
  no Python work per line. Anything else (comments, ``event:``/``id:`` fields, multi-line data,
  ``\\r\\n`` line ends, ``data:`` without the space) goes through the line parsers below, so the
  result is the same for any way the stream is cut into chunks.
* **Line parsers**: :class:`SSEParser` follows the WHATWG event-stream rules that matter for LLM
  servers: ``data:`` lines (one space after the colon is optional), multi-line data joined with
  ``\\n``, comments (``:``) and other fields (``event:``, ``id:``, ``retry:``) ignored, an empty
  line dispatches the event. :class:`NDJSONParser` yields one payload per non-empty line.

``data: [DONE]`` is reported as :data:`DONE`. Payloads are returned as ``bytes`` so the caller
decides when JSON decoding is worth its cost. No I/O here, and no more than one partial event
(bounded to 16 MiB) is kept in memory.
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


class SSEStream:
    """SSE payloads from arbitrary byte chunks: ``feed(chunk)`` → the events those bytes completed.

    Fast path: while the stream uses ``\\n`` line ends, the buffered bytes are split on the blank
    line (``\\n\\n``) in one call, and an event that is a single ``data: `` line is its payload
    sliced off, with no per-line work; when every event in a read is such a line, one split on
    ``\\n\\ndata: `` yields all the payloads. Any other event block is replayed line by line through an
    :class:`SSEParser`; the first ``\\r`` switches the stream to line mode for good (a ``\\r\\n``
    pair may straddle two chunks). ``finish()`` returns what a server that closes without the
    final blank line left behind.
    """

    __slots__ = ("_rest", "_parser", "_lines")

    def __init__(self) -> None:
        self._rest = b""
        self._parser = SSEParser()
        self._lines: LineSplitter | None = None
        """Set once a ``\\r`` was seen: every later byte goes through LineSplitter + SSEParser."""

    def feed(self, chunk: bytes) -> list[bytes]:
        """Payloads completed by ``chunk`` (possibly none), in order."""
        if self._lines is not None:
            return self._feed_lines(chunk)
        data = self._rest + chunk if self._rest else chunk
        if b"\r" in data:
            self._rest = b""
            self._lines = LineSplitter()
            return self._feed_lines(data)
        if data.startswith(b"data: "):
            # Fastest: every complete event in data is one 'data: ' line. Then data up to its
            # last blank line, minus the first 'data: ', splits on '\n\ndata: ' into exactly the
            # payloads; the newline count proves it (each separator holds two, so any other
            # newline -- a blank-line run, a second line in an event -- sends us the slow way).
            if data.endswith(b"\n\n"):  # the read ended at an event boundary (the usual case)
                payloads = data[6:-2].split(b"\n\ndata: ")
                if data.count(b"\n") == 2 * len(payloads):
                    self._rest = b""
                    return payloads
            else:
                end = data.rfind(b"\n\n")
                if end >= 0:
                    complete = data[:end]
                    payloads = complete[6:].split(b"\n\ndata: ")
                    if complete.count(b"\n") == 2 * len(payloads) - 2:
                        return self._keep(data[end + 2:], payloads)
        blocks = data.split(b"\n\n")
        out = self._keep(blocks.pop(), [])
        for block in blocks:
            if block[:6] == b"data: " and b"\n" not in block:
                out.append(block[6:])  # the common case: one 'data: ' line, nothing else
            elif block:
                self._replay(block, out)
                if (payload := self._parser.feed_line(b"")) is not None:  # the blank line
                    out.append(payload)
        return out

    def _keep(self, rest: bytes, out: list[bytes]) -> list[bytes]:
        """Hold ``rest`` (the start of the next event) for the next feed; return ``out``."""
        if len(rest) > _MAX_EVENT_BYTES:
            raise StreamTooLarge(f"SSE event larger than {_MAX_EVENT_BYTES} bytes")
        self._rest = rest
        return out

    def finish(self) -> list[bytes]:
        """Payload of an event left without its blank line when the stream ended (or [])."""
        out: list[bytes] = []
        if self._lines is not None:
            rest = self._lines.finish()
            if rest and (payload := self._parser.feed_line(rest)) is not None:
                out.append(payload)
        elif self._rest:
            rest, self._rest = self._rest, b""
            self._replay(rest, out)
        if (payload := self._parser.finish()) is not None:
            out.append(payload)
        return out

    def _replay(self, block: bytes, out: list[bytes]) -> None:
        feed = self._parser.feed_line
        for line in block.split(b"\n"):
            if (payload := feed(line)) is not None:
                out.append(payload)

    def _feed_lines(self, data: bytes) -> list[bytes]:
        feed, out = self._parser.feed_line, []
        for line in self._lines.feed(data):
            if (payload := feed(line)) is not None:
                out.append(payload)
        return out


class NDJSONStream:
    """NDJSON payloads from arbitrary byte chunks: one split per chunk, blank lines skipped."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        """Payloads of the lines completed by ``chunk``, whitespace stripped, in order."""
        data = self._rest + chunk if self._rest else chunk
        lines = data.split(b"\n")
        rest = lines.pop()
        if len(rest) > _MAX_EVENT_BYTES:
            raise StreamTooLarge(f"NDJSON line larger than {_MAX_EVENT_BYTES} bytes")
        self._rest = rest
        return [stripped for line in lines if (stripped := line.strip())]

    def finish(self) -> list[bytes]:
        """The last line when the stream ended without its newline (or [])."""
        rest, self._rest = self._rest.strip(), b""
        return [rest] if rest else []


def parse_sse(chunks) -> list[bytes]:
    """All payloads of an SSE byte stream given as an iterable of chunks (tests, non-streamed bodies)."""
    stream, out = SSEStream(), []
    for chunk in chunks:
        out += stream.feed(chunk)
    return out + stream.finish()


def parse_ndjson(chunks) -> list[bytes]:
    """All payloads of an NDJSON byte stream given as an iterable of chunks."""
    stream, out = NDJSONStream(), []
    for chunk in chunks:
        out += stream.feed(chunk)
    return out + stream.finish()
