"""Raw HTTP/1.1 exchanges with a real server, recorded byte for byte, read after read.

:func:`exchange` sends one request over a plain socket (keep-alive, like Locust's client) and
records every ``recv()`` as it arrives, with its time: HTTP headers, chunked-encoding framing and
all, so a transcript shows exactly how a server cut its stream into reads and how the response
ended (complete framing, or the connection closed or reset before it). :class:`Transcript`
re-reads such a recording: status, headers, the de-chunked body per read (read boundaries kept)
and the SSE events. The wire fixtures in tests/fixtures/wire/ are transcripts saved by
:func:`save_case`; their format is in tests/fixtures/wire/README.md.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ENDS = ("complete", "eof", "reset", "timeout")
"""How a recorded response ended: its HTTP framing completed; the server closed the connection
(EOF) or reset it before that; or nothing arrived for the read timeout."""


@dataclass
class Transcript:
    """One request and the response bytes as received (``reads``: (ms since sent, bytes))."""

    method: str
    path: str
    body: dict | None
    reads: list[tuple[float, bytes]] = field(default_factory=list)
    end: str = "eof"
    """One of :data:`ENDS`."""
    started_ms: float = 0.0
    """When the request was sent, ms after the first request of its case (overlapping requests)."""

    # ---------------------------------------------------------------- parsing the recording

    @property
    def raw(self) -> bytes:
        return b"".join(data for _t, data in self.reads)

    def _split_head(self) -> tuple[bytes, int]:
        raw = self.raw
        at = raw.find(b"\r\n\r\n")
        if at < 0:
            raise ValueError("no complete HTTP header in the recording")
        return raw[:at], at + 4

    @property
    def status(self) -> int:
        """The HTTP status code (0 when no header arrived)."""
        try:
            head, _ = self._split_head()
        except ValueError:
            return 0
        return int(head.split(b"\r\n", 1)[0].split()[1])

    @property
    def headers(self) -> dict[str, str]:
        """Response headers, names lower-cased (the last value of a repeated name)."""
        head, _ = self._split_head()
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return headers

    def body_reads(self) -> list[tuple[float, bytes]]:
        """The body de-chunked, one entry per read that carried body bytes (read boundaries kept)."""
        _head, body_at = self._split_head()
        chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        out: list[tuple[float, bytes]] = []
        offset = 0
        decoder = _Dechunker() if chunked else None
        for t_ms, data in self.reads:
            start, offset = max(0, body_at - offset), offset + len(data)
            piece = data[start:]
            if not piece:
                continue
            piece = decoder.feed(piece) if decoder else piece
            if piece:
                out.append((t_ms, piece))
        return out

    @property
    def body_bytes(self) -> bytes:
        return b"".join(data for _t, data in self.body_reads())

    def framing_complete(self) -> bool:
        """True when the body's HTTP framing finished (chunked terminator, or Content-Length bytes)."""
        _head, body_at = self._split_head()
        headers = self.headers
        if headers.get("transfer-encoding", "").lower() == "chunked":
            decoder = _Dechunker()
            decoder.feed(self.raw[body_at:])
            return decoder.done
        if "content-length" in headers:
            return len(self.raw) - body_at >= int(headers["content-length"])
        return self.end == "eof"  # close-delimited body

    def sse_events(self) -> list[bytes]:
        """The ``data:`` payloads of the body's SSE events, in order (``b"[DONE]"`` included)."""
        events, current = [], []
        for line in self.body_bytes.split(b"\n"):
            line = line.rstrip(b"\r")
            if line.startswith(b"data:"):
                current.append(line[5:].lstrip(b" "))
            elif not line and current:
                events.append(b"\n".join(current))
                current = []
        if current:
            events.append(b"\n".join(current))
        return events

    def sse_json(self) -> list[dict]:
        """The SSE events decoded as JSON, ``[DONE]`` left out."""
        return [json.loads(e) for e in self.sse_events() if e != b"[DONE]"]

    def json(self):
        """The whole body decoded as one JSON document."""
        return json.loads(self.body_bytes)

    # ---------------------------------------------------------------- fixture files

    def to_dict(self) -> dict:
        return {"request": {"method": self.method, "path": self.path, "body": self.body},
                "started_ms": round(self.started_ms, 3), "end": self.end,
                "reads": [{"t_ms": round(t, 3), "data": data.decode("latin-1")} for t, data in self.reads]}

    @classmethod
    def from_dict(cls, obj: dict) -> Transcript:
        req = obj["request"]
        return cls(method=req["method"], path=req["path"], body=req["body"], end=obj["end"],
                   started_ms=obj.get("started_ms", 0.0),
                   reads=[(r["t_ms"], r["data"].encode("latin-1")) for r in obj["reads"]])


class _Dechunker:
    """Incremental HTTP/1.1 chunked-transfer decoder (chunk extensions and trailers ignored)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._remaining = 0  # bytes of chunk data still to come, then its CRLF
        self._in_data = False
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        while not self.done:
            if self._in_data:
                if len(self._buffer) < self._remaining + 2:
                    take = min(self._remaining, len(self._buffer))
                    out += self._buffer[:take]
                    self._buffer = self._buffer[take:]
                    self._remaining -= take
                    break
                out += self._buffer[:self._remaining]
                self._buffer = self._buffer[self._remaining + 2:]
                self._remaining = 0
                self._in_data = False
            else:
                at = self._buffer.find(b"\r\n")
                if at < 0:
                    break
                size = int(self._buffer[:at].split(b";")[0], 16)
                self._buffer = self._buffer[at + 2:]
                if size == 0:
                    self.done = True  # trailers, if any, are not body
                    break
                self._remaining, self._in_data = size, True
        return bytes(out)


def exchange(url: str, method: str, path: str, body: dict | None = None, *, read_timeout_s: float = 60.0,
             on_read=None, t0: float | None = None) -> Transcript:
    """Send one request and record the response read by read until its framing completes.

    ``on_read(transcript)`` is called after each read (e.g. to start an overlapping request once
    content arrived). ``t0`` (a ``time.perf_counter`` value) sets the origin of ``started_ms``.
    """
    parts = urlsplit(url)
    payload = json.dumps(body).encode() if body is not None else b""
    request = (f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept-Encoding: identity\r\n"
               f"Accept: */*\r\nConnection: keep-alive\r\n").encode()
    if body is not None:
        request += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n".encode()
    request += b"\r\n" + payload
    transcript = Transcript(method=method, path=path, body=body)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=read_timeout_s)
    try:
        sent = time.perf_counter()
        transcript.started_ms = (sent - (t0 if t0 is not None else sent)) * 1000.0
        sock.sendall(request)
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                transcript.end = "timeout"
                break
            except ConnectionResetError:
                transcript.end = "reset"
                break
            if not data:
                transcript.end = "eof"
                break
            transcript.reads.append(((time.perf_counter() - sent) * 1000.0, data))
            if on_read is not None:
                on_read(transcript)
            try:
                if transcript.framing_complete():
                    transcript.end = "complete"
                    break
            except ValueError:
                pass  # headers not complete yet
    finally:
        sock.close()
    return transcript


def save_case(directory: Path, case: str, *, engine: str, version: str, description: str,
              transcripts: list[Transcript]) -> Path:
    """Write ``<directory>/<case>.json`` (format: tests/fixtures/wire/README.md)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{case}.json"
    obj = {"schema": 1, "case": case, "engine": engine, "engine_version": version, "description": description,
           "exchanges": [t.to_dict() for t in transcripts]}
    tmp = path.with_suffix(".json.next")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=True) + "\n")
    tmp.replace(path)
    return path


def load_case(path: Path) -> tuple[dict, list[Transcript]]:
    """A saved case: (its metadata without the exchanges, the transcripts)."""
    obj = json.loads(Path(path).read_text())
    return ({k: v for k, v in obj.items() if k != "exchanges"},
            [Transcript.from_dict(x) for x in obj["exchanges"]])
