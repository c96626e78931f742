"""Locust users: a person at a chat box, in four patterns (Active, Casual, Sporadic, Stress).

Each user loops over *sessions*. A session is ``turns_per_session`` messages; every turn sends the
growing history (OpenAI/Ollama ``messages``, or a rendered transcript for completion endpoints) or
just the new message with the session id (a chat application keeps the history itself), appends
the reply, then thinks ``think_time_s`` before the next turn. After the last turn the session ends
(chat app: ``DELETE /chat/{session_id}``), the user pauses ``session_pause_s`` and starts a new
one. History is capped at the pattern's ``max_history_turns`` so a week-long user stays bounded.

Every model request produces one Locust request event (response time = end-to-end; a failure
carries ``"<class>: <detail>"``), LLM metric rows (see :mod:`llmsoak.locust.metrics`) and one
record in the per-minute :class:`~llmsoak.locust.timeseries.LLMState`.

:func:`build_user_classes` turns a profile into concrete Locust classes named ``ActiveUser``,
``CasualUser``, ... (``<Name>User`` for custom patterns) with the profile's weight / fixed count.
"""

from __future__ import annotations

import collections
import itertools
import json
import random
import time
from time import perf_counter

import gevent
from locust import FastHttpUser, constant, task
from locust.exception import StopUser
from locust.user.users import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from llmsoak.locust.clients import (
    FLAVOURS,
    ChatApp,
    Flavour,
    RequestResult,
    classify_exception,
    read_body,
    read_stream_chunks,
)
from llmsoak.locust.metrics import log_llm_metrics

PATTERN_OF_CLASS: dict[str, str] = {}
"""Locust user class name → pattern name, filled by build_user_classes (for users per pattern)."""

_session_ids = itertools.count(1)
_user_index: collections.defaultdict[str, itertools.count] = collections.defaultdict(itertools.count)
"""Per pattern: how many users this process has created (part of a seeded user's seed)."""

_WORDS = ("the model answers questions about travel cooking history science music code weather "
          "books gardening sport health money films planets animals languages maths art design "
          "please explain why how what when where could would should compare summarise list").split()


def builtin_prompt(rng: random.Random, tokens: int) -> str:
    """A prompt of about ``tokens`` tokens (≈ 0.75 words per token) from a small built-in vocabulary."""
    words = max(1, int(tokens * 0.75))
    return "Question: " + " ".join(rng.choice(_WORDS) for _ in range(words)) + "?"


class _WordsConversation:
    """Fallback conversation when no prompt source is configured (tests, bare use)."""

    def __init__(self, opening: str) -> None:
        self.opening = opening

    def message(self, turn: int) -> str:
        return self.opening if turn == 0 else f"Tell me more about point {turn}."


def make_flavour(target, pattern) -> Flavour:
    """The protocol client for ``target`` (profile.Target) as used by ``pattern`` (PatternSpec)."""
    stream = target.stream if pattern.stream is None else pattern.stream
    if target.flavour == "chat":
        api = target.chat
        if api is None:
            return ChatApp(model=target.model or "")
        mode = api.stream if stream else "none"
        return ChatApp(model=target.model or "", stream_mode=mode, body_template=dict(api.body),
                       reply_path=api.reply_path, delta_path=api.delta_path,
                       usage_path=api.usage_path or "usage", path=api.path,
                       end_session_path=api.end_session.path if api.end_session else None)
    cls = FLAVOURS[(target.flavour, target.endpoint)]
    return cls(model=target.model or "", stream=stream)


class LLMChatUser(FastHttpUser):
    """Base class: one simulated person holding multi-turn chat sessions with the target.

    Class attributes set by :func:`build_user_classes`: ``pattern`` (PatternSpec), ``target``
    (profile.Target), ``prompt_source`` (a PromptSource or None), ``system_prompt``.
    """

    abstract = True
    wait_time = constant(0)  # the session loop does its own think time and pauses
    pattern = None
    target = None
    prompt_source = None
    """llmsoak.prompts.PromptSource (``next_conversation(rng, target_tokens)``), or None."""
    system_prompt: str | None = None
    seed: int | None = None
    """The profile's ``run.seed``: with it, the n-th user of a pattern in a process draws the
    same think times, turns, lengths and prompts in every run."""
    blocked_reason: str | None = None
    """Set (on all classes) when this process could not apply the profile a test was started
    with: users then stop before sending anything instead of running the wrong profile."""

    def __init__(self, environment) -> None:
        super().__init__(environment)
        if self.seed is None:
            self.rng = random.Random()
        else:  # a str seed is hashed with SHA-512 by random: the same in every process (hash() is salted)
            self.rng = random.Random(f"{self.seed}/{self.pattern.name}/{next(_user_index[self.pattern.name])}")
        self.flavour = make_flavour(self.target, self.pattern)
        self.request_name = f"{self.flavour.label} [{self.pattern.name}]"
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        headers.update(self.target.resolve_headers())  # secrets read from the environment now, never stored elsewhere
        self.headers = headers
        from llmsoak.locust.plugin import get_llm_state
        self.llm_state = get_llm_state(environment)
        self._started = False
        self._unreachable_backoff_s = 0.0
        """Current wait after a request that got no response (see _back_off_if_unreachable)."""

    def _sleep(self, seconds: float) -> None:
        """Think/pause: marked WAITING so a graceful stop (``--stop-timeout``) ends the user here
        at once, while a request in flight (RUNNING) is allowed to finish and be counted."""
        if self._state == LOCUST_STATE_STOPPING:
            raise StopUser()
        if seconds > 0:
            self._state = LOCUST_STATE_WAITING
            gevent.sleep(seconds)
            if self._state == LOCUST_STATE_STOPPING:
                raise StopUser()
            self._state = LOCUST_STATE_RUNNING

    @task
    def chat_session(self) -> None:
        """One session: first-message delay (once per user), turns with think time, end, pause."""
        if self.blocked_reason:
            raise StopUser()  # quietly, before any request (Locust logs StopUser from on_start as an error)
        pattern, rng = self.pattern, self.rng
        if not self._started:
            self._started = True
            self._sleep(pattern.first_message_delay_s.sample(rng))
        session_id = f"llmsoak-{self.pattern.name}-{next(_session_ids)}"
        messages: list[dict] = []
        if self.system_prompt and self.flavour.keeps_history:
            messages.append({"role": "system", "content": self.system_prompt})
        turns = pattern.turns_per_session.sample_int(rng, minimum=1)
        conversation = self._conversation(pattern.prompt_tokens.sample_int(rng, minimum=1))
        for turn in range(turns):
            if turn:
                self._sleep(pattern.think_time_s.sample(rng))
            messages.append({"role": "user", "content": conversation.message(turn)})
            self.flavour.max_tokens = pattern.max_tokens.sample_int(rng, minimum=1)
            to_send = messages if pattern.history else messages[-1:]
            result = self.send(to_send, session_id)
            if result.ok:
                messages.append({"role": "assistant", "content": result.text})
            else:
                messages.pop()  # the turn failed: the person retypes rather than keeping half a reply
            self._back_off_if_unreachable(result)
            self._trim_history(messages)
            if self._state == LOCUST_STATE_STOPPING:
                raise StopUser()
        self.end_session(session_id)
        self._sleep(pattern.session_pause_s.sample(rng))

    def _back_off_if_unreachable(self, result: RequestResult) -> None:
        """No response at all (refused, reset before headers): wait 0.1 s, doubling to 5 s, before
        the next try, as a person retrying would. Without it a user with no think time (Stress)
        spins on a dead or restarting target at thousands of failures a second."""
        if result.status:  # the target answered (even with an error): back to normal pacing
            self._unreachable_backoff_s = 0.0
            return
        self._unreachable_backoff_s = min(5.0, max(0.1, 2 * self._unreachable_backoff_s))
        self._sleep(self._unreachable_backoff_s)

    def _conversation(self, prompt_tokens: int):
        """The session's user messages: ``.message(turn)`` (0 = opening, about ``prompt_tokens``)."""
        source = self.prompt_source
        if source is None:
            return _WordsConversation(builtin_prompt(self.rng, prompt_tokens))
        return source.next_conversation(self.rng, target_tokens=prompt_tokens)

    def _trim_history(self, messages: list[dict]) -> None:
        keep = 2 * max(1, self.pattern.max_history_turns)
        system = 1 if messages and messages[0]["role"] == "system" else 0
        if len(messages) - system > keep:
            del messages[system:len(messages) - keep]

    def send(self, messages: list[dict], session_id: str) -> RequestResult:
        """POST one model request, read it to the end, record it everywhere; never raises."""
        flavour = self.flavour
        streamed = flavour.stream_format is not None
        payload = json.dumps(flavour.body(messages, session_id))
        result = RequestResult()
        t_sent = perf_counter()
        with self.client.request("POST", flavour.path, name=self.request_name, data=payload,
                                 headers=self.headers, stream=streamed, catch_response=True) as resp:
            status = resp.status_code or 0
            result.status = status
            error = getattr(resp, "error", None)
            if status >= 400:
                result.e2e_ms = (perf_counter() - t_sent) * 1000.0
                result.fail("http", f"HTTP {status}")
            elif status == 0 or resp.headers is None:
                result.e2e_ms = (perf_counter() - t_sent) * 1000.0
                result.fail(*classify_exception(error or resp.request_meta.get("exception")
                                                or ConnectionError("no response")))
            elif streamed:
                read_stream_chunks(body_reader(resp.stream), flavour, result, t_sent)
            else:
                exc = resp.request_meta.get("exception")
                if exc is not None:
                    result.e2e_ms = (perf_counter() - t_sent) * 1000.0
                    result.fail(*classify_exception(exc))
                else:
                    read_body(resp.content, flavour, result, t_sent)
            resp.request_meta["response_time"] = result.e2e_ms
            if result.ok:
                resp.success()
            else:
                resp.failure(result.failure_message)
        if streamed and not result.ok:
            _close_quietly(resp)
        log_llm_metrics(self.environment.stats, self.request_name, result)
        self.llm_state.record(self.pattern.name, result, time.time())
        return result

    def end_session(self, session_id: str) -> None:
        """Chat apps keep history server-side: tell them the session is over (a normal HTTP row)."""
        flavour = self.flavour
        if isinstance(flavour, ChatApp) and flavour.end_session_path:
            path = flavour.end_session_path.replace("{session_id}", session_id)
            name = f"{flavour.end_session_path} [{self.pattern.name}]"
            with self.client.request("DELETE", path, name=name, headers=self.headers,
                                     catch_response=True) as resp:
                if resp.status_code in (200, 202, 204, 404):  # 404: already expired, fine
                    resp.success()
                else:
                    resp.failure(f"http: HTTP {resp.status_code}" if resp.status_code else "disconnect: no response")


_RECV_BYTES = 64 * 1024
"""Most bytes taken from the socket per read (geventhttpclient's own block is 4 KiB)."""


def body_reader(stream):
    """``read_chunk()`` for a geventhttpclient streamed response: the decoded body bytes that have
    arrived (waiting for at least one), ``b""`` at the end of the body.

    ``stream.readline`` costs a buffer search and copy per line and Locust's ``iter_content``
    waits for a full block (hiding the first token), so this reads the way ``readline`` does
    internally, once per arrival instead of once per line: one ``recv`` of whatever is there,
    fed to the response's HTTP parser (which undoes chunked transfer encoding into
    ``_body_buffer`` and returns the connection to the pool once the body is complete), then all
    of the parsed body at once. Errors are the ones ``readline`` raises (``HTTPParseError`` for a
    body cut off, socket timeouts and resets), and as with ``readline`` the connection of a body
    left incomplete is closed, not pooled. geventhttpclient 2.6 attributes; another version
    without them falls back to ``readline``.
    """
    if not all(hasattr(stream, a) for a in ("_body_buffer", "_sock", "feed", "message_complete", "release")):
        return lambda: stream.readline(b"\n")
    from geventhttpclient.response import HTTPConnectionClosed

    buffer = stream._body_buffer

    def read_chunk() -> bytes:
        while True:
            if buffer:
                data = bytes(buffer)
                del buffer[:]
                return data
            if stream.message_complete:
                return b""
            sock = stream._sock
            if sock is None:
                raise HTTPConnectionClosed("connection closed.")  # what readline raises here
            try:
                data = sock.recv(_RECV_BYTES)
                stream.feed(data)  # b"" (peer closed) makes the parser finish the body or raise
            except BaseException:
                stream.release()  # as readline does: a body not complete closes the socket (should_close)
                raise
            if not data and not stream.message_complete:
                stream.release()  # the parser accepted the end without completing: never spin on it
                raise HTTPConnectionClosed("connection closed.")

    return read_chunk


def _close_quietly(resp) -> None:
    """Drop a connection left mid-body (a failed stream) instead of returning it to the pool."""
    try:
        stream = resp.stream
        sock = getattr(stream, "_sock", None)
        if sock is not None:
            pool = getattr(stream, "_pool", None)
            stream._sock = None
            if pool is not None:
                pool.release_socket(sock)
            else:
                sock.close()
    except Exception:  # noqa: BLE001 - best effort cleanup of a broken connection
        pass


class ActiveUser(LLMChatUser):
    """Lively conversation: short think times, long sessions."""

    abstract = True


class CasualUser(LLMChatUser):
    """A message every minute or two, short sessions, long breaks."""

    abstract = True


class SporadicUser(LLMChatUser):
    """Idle for long stretches, then a burst of quick messages."""

    abstract = True


class StressUser(LLMChatUser):
    """No think time, long prompts and outputs, as fast as the target answers."""

    abstract = True


_BASES = {"active": ActiveUser, "casual": CasualUser, "sporadic": SporadicUser, "stress": StressUser}


def _int_weight(weight: float | None, scale: int) -> int:
    return max(1, int(round((1 if weight is None else weight) * scale)))


def class_name(pattern_name: str) -> str:
    return "".join(part.capitalize() for part in pattern_name.replace("-", "_").split("_")) + "User"


def _weight_scale(profile) -> int:
    """Locust wants integer weights: fractional ones (0.5, 1.5) are scaled by 100 so ratios survive."""
    weights = [spec.weight for spec in profile.patterns if spec.users is None and spec.weight is not None]
    return 1 if all(float(w).is_integer() for w in weights) else 100


def class_attributes(profile, spec, *, scale: int, prompt_source=None) -> dict:
    """The class attributes that make a user class run ``spec`` (PatternSpec) of ``profile``.

    Read when a user is created (``network_timeout``/``connection_timeout`` by FastHttpUser, the
    rest by :class:`LLMChatUser`) and by Locust's dispatcher (``weight``, ``fixed_count``) when a
    test starts, so setting them on an existing class between tests takes effect in the next one.
    """
    target = profile.target
    system_prompt = profile.prompts.system_prompt
    if prompt_source is not None:
        system_prompt = prompt_source.system_prompt or system_prompt
    attrs = {
        "pattern": spec,
        "target": target,
        "host": target.url,
        "network_timeout": float(target.timeout_s),
        "connection_timeout": float(target.connect_timeout_s),
        "prompt_source": prompt_source,
        "system_prompt": system_prompt,
        "seed": profile.run.seed,
    }
    if spec.users is not None:
        attrs.update(fixed_count=int(spec.users), weight=1)
    else:
        attrs.update(fixed_count=0, weight=_int_weight(spec.weight, scale))
    return attrs


def build_user_classes(profile, *, prompt_source=None, spare_builtins: bool = False) -> dict[str, type[LLMChatUser]]:
    """Concrete Locust user classes for ``profile`` (llmsoak.profile.Profile), keyed by class name.

    Weights become Locust ``weight``; fixed counts become ``fixed_count``. Network timeouts come
    from ``target.timeout_s`` (idle gap between reads) and ``target.connect_timeout_s``.
    ``spare_builtins`` also defines the built-in patterns the profile does not use, with weight 0
    and no fixed count (never dispatched), so a profile chosen later in the web UI's start form
    can use any of them (:func:`apply_profile`).
    """
    from llmsoak.profile import BUILTIN_PATTERNS

    classes: dict[str, type[LLMChatUser]] = {}
    scale = _weight_scale(profile)
    for spec in profile.patterns:
        name = class_name(spec.name)
        attrs = class_attributes(profile, spec, scale=scale, prompt_source=prompt_source)
        attrs.update(abstract=False, __module__=__name__)
        classes[name] = type(name, (_BASES.get(spec.base, LLMChatUser),), attrs)
    if spare_builtins:
        for pattern_name, spec in BUILTIN_PATTERNS.items():
            name = class_name(pattern_name)
            if name not in classes:
                attrs = class_attributes(profile, spec, scale=scale, prompt_source=prompt_source)
                attrs.update(abstract=False, __module__=__name__, weight=0, fixed_count=0)
                classes[name] = type(name, (_BASES[pattern_name],), attrs)
    _map_patterns(profile, classes)
    return classes


def apply_profile(classes: dict[str, type[LLMChatUser]], profile, *, prompt_source=None) -> None:
    """Make the existing user ``classes`` (from :func:`build_user_classes`) run ``profile``.

    Call between tests (Locust's ``test_start``, before users are created and dispatched).
    Classes of patterns the profile does not list get weight 0 and no fixed count. Raises
    ValueError naming the patterns that have no class (Locust cannot add user classes to a
    running process).
    """
    missing = [spec.name for spec in profile.patterns if class_name(spec.name) not in classes]
    if missing:
        raise ValueError(", ".join(missing))
    scale = _weight_scale(profile)
    used = set()
    for spec in profile.patterns:
        name = class_name(spec.name)
        used.add(name)
        for key, value in class_attributes(profile, spec, scale=scale, prompt_source=prompt_source).items():
            setattr(classes[name], key, value)
    for name, cls in classes.items():
        if name not in used:
            cls.weight, cls.fixed_count = 0, 0
    _map_patterns(profile, classes)


def _map_patterns(profile, classes) -> None:
    """PATTERN_OF_CLASS holds the profile's patterns only (unused classes count no users)."""
    for name in classes:
        PATTERN_OF_CLASS.pop(name, None)
    for spec in profile.patterns:
        PATTERN_OF_CLASS[class_name(spec.name)] = spec.name
