"""Protocol clients: request bodies and response/stream readers for each target flavour.

A *flavour* knows one wire format: how to build a request body from a conversation, which path
to POST to, and how to pull the text delta, end marker and token usage out of each decoded
stream event or full JSON body. :func:`read_stream` and :func:`read_body` turn raw bytes into a
:class:`RequestResult` with timings (milliseconds, ``time.perf_counter`` based) and token counts,
classifying every way a request can fail into one of :data:`llmsoak.formats.FAILURE_CLASSES`.

Flavours (``target.flavour`` / ``target.endpoint`` in the profile):

* ``openai`` ``chat`` → ``POST /v1/chat/completions`` (SSE, ``stream_options.include_usage``)
* ``openai`` ``completions`` → ``POST /v1/completions`` (SSE, prompt = rendered history)
* ``ollama`` ``chat`` → ``POST /api/chat``; ``ollama`` ``generate`` → ``POST /api/generate`` (NDJSON)
* ``chat`` → a chat application: templated JSON body, reply at a dotted path, optional SSE/NDJSON
  streaming (``{"delta": ...}`` events, ``{"done": true, "usage": {...}}``), server-kept history.

Nothing here imports Locust: :func:`read_stream_chunks` takes a ``read_chunk()`` callable (the
bytes that arrived, ``b""`` at the end) and :func:`read_stream` a ``readline(sep)`` one, so they
are tested without a server and used by the Locust users unchanged.
"""

from __future__ import annotations

import errno
import json
import socket
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from llmsoak.locust.streams import DONE, NDJSONStream, SSEStream, StreamTooLarge

_loads = json.loads
_scan_once = json.JSONDecoder().scan_once  # the C scanner behind json.loads (json.scanner.c_make_scanner)


def parse_json(payload: bytes) -> Any:
    """``json.loads(payload)``, minus its Python-level overhead for the common case.

    Each stream event is one small JSON document, so most of ``json.loads``' cost is its Python
    layers (encoding detection, ``decode`` → ``raw_decode``, two whitespace regex matches), not
    the C scanner. A payload that is UTF-8 and one complete JSON value from its first to its last
    byte is scanned directly; anything else (leading/trailing whitespace, other encodings, and
    every invalid document) goes to ``json.loads``, which returns or raises exactly as before.
    So *malformed* keeps its meaning: not valid JSON by ``json.loads``' rules.
    """
    try:
        text = payload.decode()
        obj, end = _scan_once(text, 0)
        if end == len(text):
            return obj
    except (StopIteration, ValueError):  # ValueError covers JSONDecodeError and UnicodeDecodeError
        pass
    return _loads(payload)


_scanstring = json.decoder.scanstring  # C: (JSON string body after its opening quote, index) → (str, end)
_PROBE_TEXT = "\x01llmsoak-probe\x02"
_PROBE = json.dumps(_PROBE_TEXT).encode()


class ContentShortcut:
    """Reads the text of a stream's content events without building their JSON objects.

    Within one response, the content events of LLM servers are byte-identical except for the
    text: ``{"id":"chatcmpl-1",...,"delta":{"content":"<TEXT>"},...}``. After the first content
    event was parsed the normal way, :meth:`learn` splits it into ``prefix`` + the text's JSON
    string literal + ``suffix``, and accepts that template only if it is unambiguous: the literal
    occurs once, and the flavour's own ``decode_event`` applied to ``prefix + probe + suffix``
    returns exactly the probe text and records nothing else (no usage, no end marker).

    :meth:`text` then takes an event that starts with ``prefix`` and ends with ``suffix`` and
    returns its middle if the middle is exactly one valid JSON string literal (checked by
    json's C ``scanstring``, strict like ``json.loads``) with non-empty text. Such an event is
    valid JSON (one string token replaced by another in a valid document) and decodes to the
    same object with only that string changed, so the flavour would return exactly that text.
    Anything else returns None and takes the full path (:func:`parse_json` + ``decode_event``),
    so a malformed event is still exactly one that ``json.loads`` rejects.
    """

    __slots__ = ("prefix", "suffix", "_start", "_tail")

    def __init__(self) -> None:
        self.prefix: bytes | None = None
        """Everything before the text, its opening quote included; None until learned."""
        self.suffix = b""
        """Everything after the text's closing quote."""
        self._start = self._tail = 0

    def learn(self, payload: bytes, text: str, flavour: Flavour) -> None:
        """Derive the template from a content event already decoded (by the full path) to ``text``."""
        for literal in {json.dumps(text).encode(), json.dumps(text, ensure_ascii=False).encode()}:
            at = payload.find(literal)
            if at < 0 or payload.find(literal, at + 1) >= 0:
                continue
            prefix, suffix = payload[:at], payload[at + len(literal):]
            probe = RequestResult()
            try:
                ok = flavour.decode_event(parse_json(prefix + _PROBE + suffix), probe) == _PROBE_TEXT
            except Exception:  # noqa: BLE001 - an unusable template, not a failure of the request
                ok = False
            if ok and probe == RequestResult():
                self.prefix, self.suffix = prefix + b'"', suffix
                self._start, self._tail = len(self.prefix), len(suffix)
                return

    def text(self, payload: bytes) -> str | None:
        """The event's text when it fits the template (see the class docstring), else None."""
        if not (payload.startswith(self.prefix) and payload.endswith(self.suffix)):
            return None
        try:
            # The rest of the literal: its characters and closing quote. scanstring starts after
            # an opening quote and returns the index after the closing one; an empty or
            # overlapping slice, a bad escape, a raw control character or bad UTF-8 raise.
            rest = payload[self._start:len(payload) - self._tail].decode()
            text, end = _scanstring(rest, 0)
        except ValueError:
            return None
        return text if end == len(rest) and text else None


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


# --------------------------------------------------------------------------- flavours


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(obj, list) and key.isdigit() and int(key) < len(obj):
            obj = obj[int(key)]
        else:
            return None
    return obj


def _render_prompt(messages: list[dict]) -> str:
    """A plain-text transcript for completion-style endpoints (OpenAI completions, Ollama generate)."""
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    lines.append("assistant:")
    return "\n".join(lines)


class Flavour:
    """One wire format. Subclasses set ``path``/``stream_format`` and implement the hooks."""

    name = "base"
    path = "/"
    stream_format: str | None = None
    """"sse", "ndjson" or None (the request is not streamed)."""
    keeps_history = True
    """True: the client sends the whole history each turn; False: the server keeps it (session id)."""

    def __init__(self, *, model: str = "", stream: bool = True, max_tokens: int | None = None,
                 path: str | None = None, options: dict | None = None) -> None:
        self.model = model
        self.stream = stream
        self.max_tokens = max_tokens
        if path:
            self.path = path
        self.options = dict(options or {})
        if not stream:
            self.stream_format = None

    def body(self, messages: list[dict], session_id: str) -> dict:
        raise NotImplementedError

    def decode_event(self, obj: Any, result: RequestResult) -> str | None:
        """Text delta of one stream event (None/"" if none); sets result.finished/tokens."""
        raise NotImplementedError

    def decode_body(self, obj: Any, result: RequestResult) -> str | None:
        """Reply text of a complete JSON body; sets token counts."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        """Stats name of this flavour's request, e.g. ``/v1/chat/completions``."""
        return self.path


def _openai_usage(obj: dict, result: RequestResult) -> None:
    usage = obj.get("usage")
    if isinstance(usage, dict):
        if isinstance(usage.get("completion_tokens"), int):
            result.output_tokens = usage["completion_tokens"]
        if isinstance(usage.get("prompt_tokens"), int):
            result.input_tokens = usage["prompt_tokens"]


class OpenAIChat(Flavour):
    name = "openai-chat"
    path = "/v1/chat/completions"
    stream_format = "sse"

    def prompt_fields(self, messages) -> dict:
        """The request's prompt part: chat sends the messages (completions overrides)."""
        return {"messages": messages}

    def choice_text(self, choice: dict, streamed: bool):
        """The text of one ``choices[i]`` entry (a stream delta, or the whole message)."""
        if streamed:
            delta = choice.get("delta") or {}
            return delta.get("content") or delta.get("reasoning_content")
        return (choice.get("message") or {}).get("content")

    def body(self, messages, session_id):
        body = {"model": self.model, **self.prompt_fields(messages), "stream": self.stream}
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        body.update(self.options)
        return body

    def decode_event(self, obj, result):
        if obj.__class__ is not dict:
            raise ValueError("event is not a JSON object")
        choices = obj.get("choices")
        if choices:
            return self.choice_text(choices[0], True)
        if "usage" in obj:
            _openai_usage(obj, result)
        return None

    def decode_body(self, obj, result):
        _openai_usage(obj, result)
        result.finished = True
        choices = obj.get("choices") or [{}]
        return self.choice_text(choices[0], False)


class OpenAICompletions(OpenAIChat):
    name = "openai-completions"
    path = "/v1/completions"

    def prompt_fields(self, messages) -> dict:
        return {"prompt": _render_prompt(messages)}

    def choice_text(self, choice: dict, streamed: bool):
        return choice.get("text")


def _ollama_done(obj: dict, result: RequestResult) -> None:
    result.finished = True
    if isinstance(obj.get("eval_count"), int):
        result.output_tokens = obj["eval_count"]
    if isinstance(obj.get("prompt_eval_count"), int):
        result.input_tokens = obj["prompt_eval_count"]


class OllamaChat(Flavour):
    name = "ollama-chat"
    path = "/api/chat"
    stream_format = "ndjson"

    def body(self, messages, session_id):
        body = {"model": self.model, "messages": messages, "stream": self.stream}
        options = dict(self.options)
        if self.max_tokens:
            options.setdefault("num_predict", self.max_tokens)
        if options:
            body["options"] = options
        return body

    def decode_event(self, obj, result):
        if obj.__class__ is not dict:
            raise ValueError("line is not a JSON object")
        if obj.get("done"):
            _ollama_done(obj, result)
        if "error" in obj:
            raise ValueError("server sent an error object")
        return (obj.get("message") or {}).get("content")

    def decode_body(self, obj, result):
        _ollama_done(obj, result)
        return (obj.get("message") or {}).get("content")


class OllamaGenerate(OllamaChat):
    name = "ollama-generate"
    path = "/api/generate"

    def body(self, messages, session_id):
        body = super().body(messages, session_id)
        del body["messages"]
        body["prompt"] = _render_prompt(messages)
        return body

    def decode_event(self, obj, result):
        if obj.__class__ is not dict:
            raise ValueError("line is not a JSON object")
        if obj.get("done"):
            _ollama_done(obj, result)
        if "error" in obj:
            raise ValueError("server sent an error object")
        return obj.get("response")

    def decode_body(self, obj, result):
        _ollama_done(obj, result)
        return obj.get("response")


def _fill_template(template: Any, values: dict[str, Any]) -> Any:
    """Replace "{session_id}", "{message}", "{model}" placeholders in a JSON-like template.

    A string that is exactly one placeholder takes the value's type (so "{stream}" can be false).
    """
    if isinstance(template, str):
        if template.startswith("{") and template.endswith("}") and template[1:-1] in values:
            return values[template[1:-1]]
        for key, value in values.items():
            template = template.replace("{" + key + "}", str(value))
        return template
    if isinstance(template, dict):
        return {k: _fill_template(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill_template(v, values) for v in template]
    return template


class ChatApp(Flavour):
    """A chat application that keeps the history server-side under a session id."""

    name = "chat"
    path = "/chat"
    keeps_history = False
    DEFAULT_BODY = {"session_id": "{session_id}", "message": "{message}", "stream": "{stream}"}

    def __init__(self, *, stream_mode: str = "none", body_template: dict | None = None,
                 reply_path: str = "reply", delta_path: str = "delta", usage_path: str = "usage",
                 end_session_path: str | None = "/chat/{session_id}", **kw: Any) -> None:
        stream_mode = stream_mode or "none"
        super().__init__(stream=stream_mode != "none", **kw)
        self.stream_mode = stream_mode
        self.stream_format = None if stream_mode == "none" else stream_mode
        self.body_template = body_template or self.DEFAULT_BODY
        self.reply_path = tuple(reply_path.split("."))
        self.delta_path = tuple(delta_path.split("."))
        self.usage_path = tuple(usage_path.split("."))
        self.end_session_path = end_session_path

    def body(self, messages, session_id):
        values = {"session_id": session_id, "message": messages[-1]["content"], "model": self.model,
                  "stream": self.stream_mode if self.stream else False}
        return _fill_template(self.body_template, values)

    def _usage(self, obj: Any, result: RequestResult) -> None:
        usage = _dig(obj, self.usage_path)
        if isinstance(usage, dict):
            _openai_usage({"usage": usage}, result)

    def decode_event(self, obj, result):
        if obj.__class__ is not dict:
            raise ValueError("event is not a JSON object")
        if obj.get("done"):
            result.finished = True
            self._usage(obj, result)
            return None
        delta = _dig(obj, self.delta_path)
        return delta if isinstance(delta, str) else None

    def decode_body(self, obj, result):
        self._usage(obj, result)
        result.finished = True
        reply = _dig(obj, self.reply_path)
        return reply if isinstance(reply, str) else None


FLAVOURS = {
    ("openai", "chat"): OpenAIChat,
    ("openai", "completions"): OpenAICompletions,
    ("ollama", "chat"): OllamaChat,
    ("ollama", "generate"): OllamaGenerate,
    ("chat", "chat"): ChatApp,
}
"""(flavour, endpoint kind) → Flavour class."""


# --------------------------------------------------------------------------- readers


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


def read_stream_chunks(read_chunk, flavour: Flavour, result: RequestResult, t_sent: float) -> RequestResult:
    """Consume a streamed body read by ``read_chunk()``, timestamping content-bearing chunks.

    ``read_chunk()`` returns the body bytes that have arrived (waiting for at least one byte) or
    ``b""`` at the end of the body; ``t_sent`` is the perf_counter value when the request was
    sent. Exceptions are classified, never raised. The whole body is read even after a
    failure-free end marker so the connection can be reused.

    One timestamp per read, taken as it returns: the events that arrived together share it, so
    the first content-bearing one sets TTFT and the others give ITL gaps of 0 (what the client
    saw: they were in the same TCP read). Per read: one split and one ``perf_counter``. Per
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
    seen_done_marker = False
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
                    else:
                        itl.append((now - last) * 1000.0)
                    if arrived > 1:
                        itl.extend([0.0] * (arrived - 1))  # same read: no gap the client could see
                    last = now
            if not chunk:
                break
    except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes
        result.fail(*classify_exception(exc))
    result.e2e_ms = (perf_counter() - t_sent) * 1000.0
    result.content_chunks = len(parts)
    result.text = "".join(parts)
    if seen_done_marker:
        result.finished = True
    if result.failure_class is None:
        if not parts:
            result.fail("empty", "no content in the response")
        elif not result.finished:
            result.fail("disconnect", "stream ended without its end marker")
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
        return result.fail(*classify_exception(exc))
    if not text:
        return result.fail("empty", "no content in the response")
    result.text = text
    result.ttft_ms = result.e2e_ms
    result.content_chunks = 1
    return result
