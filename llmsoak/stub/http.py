"""A small HTTP/1.1 server layer on asyncio: keep-alive, Content-Length bodies, chunked responses.

Hand-written instead of a framework so the stub stays dependency-free and fast: one
``asyncio.Protocol`` per connection parses requests from the byte stream and runs one handler
task at a time (pipelined requests wait their turn). Handlers answer through a :class:`Responder`
that can send a whole response, stream chunked data with flow control, or break the connection
on purpose (the fault injector needs resets and truncated bodies).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from llmsoak.stub.timings import request_id_of

MAX_HEADER_BYTES = 64 * 1024
"""Largest request head (request line + headers) accepted; larger → 431 and close."""
MAX_BODY_BYTES = 64 * 1024 * 1024
"""Largest request body accepted; larger → 413 and close."""
MAX_PIPELINED = 32
"""Parsed requests queued per connection before reading pauses."""

REASONS = {
    200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
    411: "Length Required", 413: "Payload Too Large", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    503: "Service Unavailable", 505: "HTTP Version Not Supported",
}


@dataclass
class Request:
    """One parsed HTTP request. ``headers`` keys are lower-case; ``body`` is raw bytes."""

    method: str
    path: str
    query: dict[str, list[str]]
    version: str
    headers: dict[str, str]
    body: bytes = b""
    keep_alive: bool = True
    error: tuple[int, str] | None = field(default=None)
    """Set when the request could not be parsed: (status, message); the connection closes after."""
    received_s: float = 0.0
    """Event-loop clock (s) when the whole request (head and body) had arrived."""


Handler = Callable[[Request, "Responder"], Awaitable[None]]


class Responder:
    """Writes the response to one request; knows whether headers went out and with which status."""

    __slots__ = ("_conn", "_keep_alive", "_http10", "status", "chunked", "finished", "request_id",
                 "received_s", "extra_headers")

    def __init__(self, conn: HttpProtocol, keep_alive: bool, http10: bool = False,
                 request_id: str | None = None, received_s: float = 0.0) -> None:
        self._conn = conn
        self._keep_alive = keep_alive
        self._http10 = http10  # HTTP/1.0 has no chunked encoding: stream until close instead
        self.status: int | None = None
        """Status code of the headers sent, None until then."""
        self.chunked = False
        self.finished = False
        self.request_id = request_id
        """The client's ``x-llmsoak-request-id`` (llmsoak.stub.timings), or None."""
        self.received_s = received_s
        """Event-loop clock (s) when the request had arrived."""
        self.extra_headers: tuple[tuple[str, str], ...] = ()
        """Headers added to whichever head this responder sends (the stub's timing headers)."""

    @property
    def closed(self) -> bool:
        """True once the client went away or the connection was closed."""
        return self._conn.closed

    def _head(self, status: int, content_type: str, length: int | None,
              extra: tuple[tuple[str, str], ...]) -> bytes:
        self.status = status
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}", "Server: llmsoak-stub"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        if length is None:
            if not self._http10:
                lines.append("Transfer-Encoding: chunked")
        else:
            lines.append(f"Content-Length: {length}")
        lines.append("Connection: keep-alive" if self._keep_alive else "Connection: close")
        lines.extend(f"{k}: {v}" for k, v in extra)
        lines.extend(f"{k}: {v}" for k, v in self.extra_headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send(self, status: int, body: bytes = b"", content_type: str = "application/json",
             extra_headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Send a complete response with a Content-Length body."""
        if status == 204:
            head = self._head(status, "", 0, extra_headers)
            body = b""
        else:
            head = self._head(status, content_type, len(body), extra_headers)
        self._conn.write(head + body)
        self.finished = True

    def start_body(self, status: int, content_type: str, length: int) -> None:
        """Send headers announcing a ``length``-byte body; the caller writes it with write_raw."""
        self._conn.write(self._head(status, content_type, length, ()))

    def start_stream(self, status: int, content_type: str) -> None:
        """Send headers for a chunked (streamed) body (HTTP/1.0: a body that ends at close)."""
        self.chunked = not self._http10
        if self._http10:
            self._keep_alive = False
        self._conn.write(self._head(status, content_type, None, (("Cache-Control", "no-cache"),)))

    def write(self, text: str) -> None:
        """Write ``text`` (UTF-8) as one chunk of a streamed body."""
        data = text.encode()
        if data:
            self._conn.write(b"%x\r\n%b\r\n" % (len(data), data) if self.chunked else data)

    def write_raw(self, data: bytes) -> None:
        """Write bytes as they are (body of a Content-Length response, or a deliberate mess)."""
        self._conn.write(data)

    def end_stream(self) -> None:
        """Finish a streamed body cleanly (HTTP/1.0: the connection closes after it)."""
        if self.chunked:
            self._conn.write(b"0\r\n\r\n")
        self.finished = True

    async def drain(self) -> None:
        """Wait while the client reads slower than we write (transport buffer above its high mark)."""
        await self._conn.drain()

    def close(self) -> None:
        """Close the connection after what was written (an unfinished body looks truncated)."""
        self._keep_alive = False
        self._conn.close()

    def reset(self) -> None:
        """Reset the TCP connection (RST, no FIN): the client sees 'connection reset by peer'."""
        self._keep_alive = False
        self._conn.reset()

    @property
    def keep_alive(self) -> bool:
        return self._keep_alive and self.finished


class HttpProtocol(asyncio.Protocol):
    """One client connection: parses requests and runs the handler for each, in order."""

    def __init__(self, handler: Handler, connections: set[HttpProtocol]) -> None:
        self._handler = handler
        self._connections = connections
        self._buf = bytearray()
        self._pending: deque[Request] = deque()
        self._task: asyncio.Task | None = None
        self._broken = False  # stop parsing after an unrecoverable framing error
        self._continued = False  # "100 Continue" already sent for the request being read
        self._paused_reading = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False

    # -- asyncio callbacks ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._connections.discard(self)
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        if self._task is not None:
            self._task.cancel()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._broken:
            return
        self._buf += data
        loop = asyncio.get_running_loop()
        while not self._broken:
            request = self._parse_one()
            if request is None:
                break
            request.received_s = loop.time()
            self._pending.append(request)
        if self._pending and self._task is None:
            self._task = loop.create_task(self._serve())
        if len(self._pending) >= MAX_PIPELINED and not self._paused_reading and self.transport:
            self._paused_reading = True
            self.transport.pause_reading()

    # -- parsing ---------------------------------------------------------------------------------
    def _fail(self, status: int, message: str) -> Request:
        self._broken = True
        return Request("GET", "/", {}, "HTTP/1.1", {}, b"", False, (status, message))

    def _parse_one(self) -> Request | None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEADER_BYTES:
                return self._fail(431, "request head too large")
            return None
        if end > MAX_HEADER_BYTES:
            return self._fail(431, "request head too large")
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return self._fail(400, "malformed request line")
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            return self._fail(505, "only HTTP/1.0 and HTTP/1.1 are supported")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                return self._fail(400, "malformed header line")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._fail(411, "chunked request bodies are not supported; send Content-Length")
        try:
            length = int(headers.get("content-length", "0"))
            if length < 0:
                raise ValueError
        except ValueError:
            return self._fail(400, "invalid Content-Length")
        if length > MAX_BODY_BYTES:
            return self._fail(413, "request body too large")
        total = end + 4 + length
        if len(buf) < total:
            if not self._continued and "100-continue" in headers.get("expect", "").lower():
                self._continued = True  # curl waits a second for this before sending a large body
                self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        self._continued = False
        body = bytes(buf[end + 4:total])
        del buf[:total]
        conn = headers.get("connection", "").lower()
        keep_alive = (conn != "close") if version == "HTTP/1.1" else (conn == "keep-alive")
        split = urlsplit(target)
        return Request(method.upper(), unquote(split.path) or "/", parse_qs(split.query), version,
                       headers, body, keep_alive)

    # -- serving ---------------------------------------------------------------------------------
    async def _serve(self) -> None:
        try:
            while self._pending and not self.closed:
                request = self._pending.popleft()
                if self._paused_reading and len(self._pending) < MAX_PIPELINED // 2 and self.transport:
                    self._paused_reading = False
                    self.transport.resume_reading()
                responder = Responder(self, request.keep_alive and request.error is None,
                                      request.version == "HTTP/1.0", request_id_of(request.headers),
                                      request.received_s)
                if request.error is not None:
                    status, message = request.error
                    responder.send(status, json.dumps({"error": message}).encode())
                else:
                    await self._handler(request, responder)
                if not responder.keep_alive:
                    self.close()
                    return
        except asyncio.CancelledError:
            pass  # client went away mid-request: nothing to tell anyone
        except Exception as err:  # a bug in a handler must not take the server down
            print(f"llmsoak stub: internal error: {type(err).__name__}: {err}", file=sys.stderr,
                  flush=True)
            self.reset()
        finally:
            self._task = None

    # -- output ----------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        if self._write_paused and not self.closed:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def reset(self) -> None:
        if self.transport is None or self.closed:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:  # linger 0: close() sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.transport.abort()
