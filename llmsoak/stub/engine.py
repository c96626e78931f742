"""The serving loop shared by every API: fault draw, admission, pacing, memory, then the writes.

Each API module supplies a :class:`WireFormat` that turns tokens into its bytes (OpenAI SSE chunks,
Ollama NDJSON lines, the chat app's events); this module decides *when* those bytes go out and
which fault breaks them.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from llmsoak.stub.admission import QueueFull
from llmsoak.stub.faults import ERROR_EVENT_MESSAGE, HTTP_FAULT_STATUS, context_overflow_message
from llmsoak.stub.timings import QUEUED_MS_HEADER, REQUEST_ID_HEADER

if TYPE_CHECKING:
    from llmsoak.stub.http import Responder
    from llmsoak.stub.server import StubApp

STREAM_BATCH_TOKENS = 512
"""Most tokens written per transport write when many are due at once (--itl-ms 0)."""


@dataclass
class Generation:
    """What one request will produce: its prompt size, its output tokens and why it stops."""

    prompt_tokens: int
    tokens: list[str]
    finish_reason: str | None


@dataclass
class Result:
    """What was produced and when (loop clock, seconds)."""

    prompt_tokens: int
    completion_tokens: int
    text: str
    finish_reason: str | None
    t_arrival: float
    t_admitted: float
    t_first: float
    t_end: float


class WireFormat(Protocol):
    """How one API family writes a response; one instance per request."""

    stream_content_type: str
    body_content_type: str

    def head(self) -> str: ...
    def events(self, tokens: list[str]) -> str: ...
    def malformed(self) -> str: ...
    def tail(self, result: Result) -> str: ...
    def body(self, result: Result) -> bytes: ...
    def error(self, status: int, message: str) -> bytes: ...
    def error_event(self, message: str) -> str: ...
    def interrupted_end(self) -> str: ...


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def serve_generation(app: StubApp, resp: Responder, fmt: WireFormat, gen: Generation,
                           stream: bool) -> Result | None:
    """Answer one model request; returns the Result when it completed without a fault."""
    loop = asyncio.get_running_loop()
    t_arrival = loop.time()
    fault = app.faults.draw()
    if fault is not None:
        app.stats.faults_injected[fault] += 1
    if fault in HTTP_FAULT_STATUS:
        status = HTTP_FAULT_STATUS[fault]
        resp.send(status, fmt.error(status, f"injected fault {fault}"))
        return None
    if fault == "context_overflow":
        resp.send(400, fmt.error(400, context_overflow_message(gen.prompt_tokens)))
        return None
    if fault == "reset_before_headers":
        resp.reset()
        return None
    try:
        await app.admission.acquire()
    except QueueFull:
        app.stats.rejected_queue_full += 1
        resp.send(429, fmt.error(429, "the server is at capacity (request queue full); retry later"))
        return None
    buf = None
    try:
        buf = app.memory.hold(gen.prompt_tokens + len(gen.tokens))
        t_admitted = loop.time()
        app.stats.prompt_tokens += gen.prompt_tokens
        received = resp.received_s or t_arrival
        if resp.request_id is not None:
            resp.extra_headers = ((REQUEST_ID_HEADER, resp.request_id),
                                  (QUEUED_MS_HEADER, f"{(t_admitted - received) * 1000.0:.3f}"))
        if stream:
            result = await _stream(app, loop, resp, fmt, gen, fault, t_arrival, t_admitted)
        else:
            result = await _whole(app, loop, resp, fmt, gen, fault, t_arrival, t_admitted)
        if result is not None and resp.request_id is not None:
            app.timings.record(resp.request_id, queued_ms=(t_admitted - received) * 1000.0,
                               ttft_ms=(result.t_first - received) * 1000.0,
                               e2e_ms=(loop.time() - received) * 1000.0,
                               tokens=result.completion_tokens)
        return result
    finally:
        if buf is not None:
            app.memory.release(buf)
        app.admission.release()
        app.memory.leak_one_request()


async def _stall(app: StubApp, resp: Responder) -> None:
    await asyncio.sleep(app.config.stall_s)
    resp.close()


async def _stream(app: StubApp, loop: asyncio.AbstractEventLoop, resp: Responder, fmt: WireFormat,
                  gen: Generation, fault: str | None, t_arrival: float,
                  t_admitted: float) -> Result | None:
    resp.start_stream(200, fmt.stream_content_type)
    if fault == "stall":
        await _stall(app, resp)
        return None
    if fault == "empty_response":
        resp.end_stream()
        return None
    tokens = gen.tokens
    n = len(tokens)
    malformed_at = n // 2 if fault == "malformed_chunk" else -1
    reset_after = min(n, max(1, n // 2)) if fault in ("reset_mid_stream", "error_event", "interrupted") else -1
    pacing, rng, admission, stats = app.pacing, app.rng, app.admission, app.stats
    deadline = t_admitted + pacing.ttft_s(gen.prompt_tokens)
    t_first = deadline
    pending = fmt.head()
    i = 0
    while i < n:
        await _sleep_until(loop, deadline)
        now = loop.time()
        if i == 0:
            t_first = now
        j = i + 1
        deadline += pacing.itl_s(admission.active, rng)
        limit = min(n, i + STREAM_BATCH_TOKENS)
        while j < limit and deadline <= now:  # tokens already due go out in the same write
            j += 1
            deadline += pacing.itl_s(admission.active, rng)
        if reset_after >= 0 and j >= reset_after:
            resp.write(pending + fmt.events(tokens[i:reset_after]))
            stats.tokens_streamed += reset_after - i
            stats.tokens_generated += reset_after - i
            await resp.drain()
            _break_stream(app, resp, fmt, fault)
            return None
        if i <= malformed_at < j:
            pending += fmt.events(tokens[i:malformed_at]) + fmt.malformed() + fmt.events(
                tokens[malformed_at:j])
        else:
            pending += fmt.events(tokens[i:j])
        resp.write(pending)
        pending = ""
        stats.tokens_streamed += j - i
        stats.tokens_generated += j - i
        i = j
        await resp.drain()
    if n == 0:
        await _sleep_until(loop, deadline)
        t_first = loop.time()
        if malformed_at == 0:
            pending += fmt.malformed()
        if reset_after == 0:
            resp.write(pending)
            _break_stream(app, resp, fmt, fault)
            return None
    result = Result(gen.prompt_tokens, n, "".join(tokens), gen.finish_reason, t_arrival, t_admitted,
                    t_first, loop.time())
    resp.write(pending + fmt.tail(result))
    resp.end_stream()
    return result


def _break_stream(app: StubApp, resp: Responder, fmt: WireFormat, fault: str | None) -> None:
    """End a stream part-way as ``fault`` says: ``reset_mid_stream`` resets the connection,
    ``error_event`` sends the API's error event and ends the body cleanly, ``interrupted`` ends
    like llama-cpp-python interrupted by another request (``[DONE]`` without a ``finish_reason``,
    then the connection closes before the body's last chunk; NDJSON: a clean end without the
    ``done`` line)."""
    if fault == "error_event":
        resp.write(fmt.error_event(ERROR_EVENT_MESSAGE.format(id=new_id(app.rng, "req-"))))
        resp.end_stream()
    elif fault == "interrupted":
        end = fmt.interrupted_end()
        if end:  # SSE: [DONE], then the connection closes without the body's last chunk
            resp.write(end)
            resp.close()
        else:  # NDJSON has no [DONE]: a clean end without the done line
            resp.end_stream()
    else:
        resp.reset()


async def _whole(app: StubApp, loop: asyncio.AbstractEventLoop, resp: Responder, fmt: WireFormat,
                 gen: Generation, fault: str | None, t_arrival: float,
                 t_admitted: float) -> Result | None:
    pacing, rng = app.pacing, app.rng
    n = len(gen.tokens)
    t_first = t_admitted + pacing.ttft_s(gen.prompt_tokens)
    deadline = t_first + sum(pacing.itl_s(app.admission.active, rng) for _ in range(max(0, n - 1)))
    if fault == "stall":
        resp.start_body(200, fmt.body_content_type, 1024)
        await _stall(app, resp)
        return None
    await _sleep_until(loop, deadline)
    app.stats.tokens_generated += n
    result = Result(gen.prompt_tokens, n, "".join(gen.tokens), gen.finish_reason, t_arrival,
                    t_admitted, t_first, loop.time())
    if fault == "empty_response":
        resp.send(200, b"", fmt.body_content_type)
        return None
    if fault == "error_event":
        resp.send(500, fmt.error(500, ERROR_EVENT_MESSAGE.format(id=new_id(app.rng, "req-"))))
        return None
    body = fmt.body(result)
    if fault in ("reset_mid_stream", "interrupted"):
        resp.start_body(200, fmt.body_content_type, len(body))
        resp.write_raw(body[: len(body) // 2])
        await resp.drain()
        resp.reset()
        return None
    if fault == "malformed_chunk":
        body = body[: max(1, len(body) // 2)]
    resp.send(200, body, fmt.body_content_type)
    return None if fault else result


def new_id(rng: random.Random, prefix: str) -> str:
    """An id like OpenAI's (``chatcmpl-`` + 24 hex digits) from the stub's seeded RNG."""
    return f"{prefix}{rng.getrandbits(96):024x}"
