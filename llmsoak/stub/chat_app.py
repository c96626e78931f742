"""A minimal chat application on top of the "model": POST /chat, DELETE /chat/{session_id}.

Each session keeps its history (user messages and replies) in memory, like a chat backend that
sends the whole conversation to its model on every turn: the prompt of turn k is the whole
history plus the new message, so prompt tokens (and prefill time) grow turn by turn. Sessions
expire after ``--session-idle-s`` without a request; history and session count are bounded so a
week-long soak cannot grow them without limit.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmsoak.stub.engine import Generation, Result, serve_generation
from llmsoak.stub.generation import count_tokens, plan_output_tokens

if TYPE_CHECKING:
    from llmsoak.stub.http import Request, Responder
    from llmsoak.stub.server import StubApp

MAX_TURNS_KEPT = 200
"""Turns of history kept per session; older turns drop out (like a context window)."""
MAX_SESSIONS = 100_000
"""Sessions kept at once; the least recently used is dropped beyond this."""


@dataclass
class Session:
    """One conversation: (user message, reply) turns and its running token count."""

    turns: list[tuple[str, str]] = field(default_factory=list)
    turn_count: int = 0
    history_tokens: int = 0
    last_used_s: float = field(default_factory=time.monotonic)


class SessionStore:
    """Sessions by id, least recently used first."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def get_or_create(self, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = Session()
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(session_id)
        session.last_used_s = time.monotonic()
        return session

    def record_turn(self, session: Session, message: str, reply: str) -> None:
        """Append a finished turn; the history's token count follows (count_tokens of each text)."""
        session.turns.append((message, reply))
        session.history_tokens += count_tokens(message) + count_tokens(reply)
        while len(session.turns) > MAX_TURNS_KEPT:
            old_message, old_reply = session.turns.pop(0)
            session.history_tokens -= count_tokens(old_message) + count_tokens(old_reply)

    def delete(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    def expire(self) -> int:
        """Drop sessions idle longer than ``idle_s``; returns how many went."""
        cutoff = time.monotonic() - self.idle_s
        gone = 0
        while self._sessions:
            session_id, session = next(iter(self._sessions.items()))
            if session.last_used_s >= cutoff:
                break
            del self._sessions[session_id]
            gone += 1
        return gone


class ChatFormat:
    """The chat app's wire format: plain JSON, SSE (``data: {"delta": ...}``) or NDJSON."""

    body_content_type = "application/json"

    def __init__(self, mode: str, session_id: str, turn: int) -> None:
        self.mode = mode  # "sse" or "ndjson" (ignored for non-stream bodies)
        self.session_id, self.turn = session_id, turn
        if mode == "sse":
            self.stream_content_type = "text/event-stream; charset=utf-8"
            self._pre, self._suf = 'data: {"delta":"', '"}\n\n'
        else:
            self.stream_content_type = "application/x-ndjson"
            self._pre, self._suf = '{"delta":"', '"}\n'

    def head(self) -> str:
        return ""

    def events(self, tokens: list[str]) -> str:
        if not tokens:
            return ""
        return self._pre + (self._suf + self._pre).join(tokens) + self._suf

    def malformed(self) -> str:
        return self._pre + "\\u00" + ("\n\n" if self.mode == "sse" else "\n")

    @staticmethod
    def usage(result: Result) -> dict:
        return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens}

    def tail(self, result: Result) -> str:
        done = json.dumps({"done": True, "session_id": self.session_id, "turn": self.turn,
                           "usage": self.usage(result)})
        if self.mode == "sse":
            return f"data: {done}\n\ndata: [DONE]\n\n"
        return done + "\n"

    def body(self, result: Result) -> bytes:
        return json.dumps({"session_id": self.session_id, "reply": result.text, "turn": self.turn,
                           "usage": self.usage(result)}).encode()

    def error(self, status: int, message: str) -> bytes:
        return error_body(message)

    def error_event(self, message: str) -> str:
        event = json.dumps({"error": message})
        return f"data: {event}\n\n" if self.mode == "sse" else event + "\n"

    def interrupted_end(self) -> str:
        return "data: [DONE]\n\n" if self.mode == "sse" else ""


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _bad(resp: Responder, message: str) -> None:
    resp.send(400, error_body(message))


async def chat(app: StubApp, request: Request, resp: Responder) -> None:
    """POST /chat {"session_id", "message", "stream": false|"none"|true|"sse"|"ndjson", "max_tokens"?}."""
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        _bad(resp, "request body is not valid JSON")
        return
    if not isinstance(body, dict):
        _bad(resp, "request body must be a JSON object")
        return
    session_id, message = body.get("session_id"), body.get("message")
    if not isinstance(session_id, str) or not session_id:
        _bad(resp, "'session_id' is required and must be a non-empty string")
        return
    if not isinstance(message, str):
        _bad(resp, "'message' is required and must be a string")
        return
    stream = body.get("stream", False)
    if stream is True:
        stream = "sse"
    elif stream == "none":
        stream = False
    if stream not in (False, None, "sse", "ndjson"):
        _bad(resp, "'stream' must be false, true, \"none\", \"sse\" or \"ndjson\"")
        return
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens < 0):
        _bad(resp, "'max_tokens' must be a non-negative integer")
        return
    session = app.sessions.get_or_create(session_id)
    message_tokens = count_tokens(message)
    prompt_tokens = session.history_tokens + message_tokens
    n, finish = plan_output_tokens(max_tokens, app.config.output_tokens)
    fmt = ChatFormat(stream or "sse", session_id, session.turn_count + 1)
    gen = Generation(prompt_tokens, app.tokens.take(n, app.rng), finish)
    result = await serve_generation(app, resp, fmt, gen, bool(stream))
    if result is not None:
        session.turn_count += 1
        session.last_used_s = time.monotonic()
        app.sessions.record_turn(session, message, result.text)


async def delete_session(app: StubApp, request: Request, resp: Responder, session_id: str) -> None:
    """DELETE /chat/{session_id}: 204, or 404 when the session is unknown (or expired)."""
    if app.sessions.delete(session_id):
        resp.send(204)
    else:
        resp.send(404, error_body(f"session {session_id!r} not found"))
