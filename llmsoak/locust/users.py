"""The Locust user: a person at a chat box holding multi-turn sessions with the target.

Each user loops over *sessions*. A session is ``turns_per_session`` messages; every turn sends the
growing history (llmsoak.locust.history) in the target's API format (llmsoak.locust.apis),
reads the reply as it streams in (llmsoak.locust.response_reader), appends it, then thinks
``think_time_s`` before the next turn. After the last turn the session ends (chat app:
``DELETE /chat/{session_id}``), the user pauses ``session_pause_s`` and starts a new one. The
numbers come from the user's pattern (llmsoak/profile/patterns.py); the user classes per pattern
are built by llmsoak.locust.user_classes.

Every model request produces one Locust request event (response time = end-to-end; a failure
carries ``"<class>: <detail>"``), LLM metric rows (llmsoak.locust.metrics) and one record in the
per-minute :class:`~llmsoak.locust.timeseries.LLMState`.
"""

from __future__ import annotations

import collections
import itertools
import json
import random
import time
from time import perf_counter

from locust import FastHttpUser, events, task
from locust.exception import StopUser

from llmsoak.locust import internals
from llmsoak.locust.apis import ChatApp, flavour_for
from llmsoak.locust.context_window import context_window_for, log_trimming
from llmsoak.locust.history import ChatHistory
from llmsoak.locust.metrics import log_llm_metrics
from llmsoak.locust.response_reader import read_body, read_stream_chunks
from llmsoak.locust.results import RequestResult, classify_exception, classify_http_error, server_reason
from llmsoak.locust.timeseries import get_llm_state

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


events.test_stop.add_listener(lambda **_kw: log_trimming())  # how often histories were trimmed, per process


class _WordsConversation:
    """Fallback conversation when no prompt source is configured (tests, bare use)."""

    def __init__(self, opening: str) -> None:
        self.opening = opening

    def message(self, turn: int) -> str:
        return self.opening if turn == 0 else f"Tell me more about point {turn}."


class LLMChatUser(FastHttpUser):
    """Base class: one simulated person holding multi-turn chat sessions with the target.

    Class attributes set by llmsoak.locust.user_classes: ``pattern`` (PatternSpec), ``target``
    (profile.Target), ``prompt_source`` (a PromptSource or None), ``system_prompt``, ``seed``.
    """

    abstract = True
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
        self.flavour = flavour_for(self.target, self.pattern)
        self.request_name = f"{self.flavour.label} [{self.pattern.name}]"
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        headers.update(self.target.resolve_headers())  # secrets read from the environment now, never stored elsewhere
        self.headers = headers
        self.llm_state = get_llm_state(environment)
        self._started = False
        self._wait_s = 0.0
        """Seconds the next ``wait()`` sleeps (see :meth:`wait_time`)."""
        self._unreachable_backoff_s = 0.0
        """Current wait after a request that got no response (see _back_off_if_unreachable)."""

    def wait_time(self) -> float:
        """Locust's hook for ``wait()``: the seconds :meth:`_sleep` asked for (0 between tasks:
        the session loop does its own think time and pauses)."""
        seconds, self._wait_s = self._wait_s, 0.0
        return seconds

    def _sleep(self, seconds: float) -> None:
        """Think/pause through Locust's ``wait()``: the user is marked waiting, so a graceful stop
        (``--stop-timeout``) ends it here at once (StopUser), while a request in flight is allowed
        to finish and be counted. ``seconds`` ≤ 0 only checks for a stop, without yielding (a
        Stress user does this every turn)."""
        if seconds > 0:
            self._wait_s = seconds
            self.wait()
        elif internals.user_is_stopping(self):
            raise StopUser()

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
        keeps_history = self.flavour.keeps_history
        window = context_window_for(self.target, self.host) if keeps_history and pattern.history else None
        history = ChatHistory(self.system_prompt if keeps_history else None,
                              max_turns=pattern.max_history_turns, window=window)
        turns = pattern.turns_per_session.sample_int(rng, minimum=1)
        conversation = self._conversation(pattern.prompt_tokens.sample_int(rng, minimum=1))
        for turn in range(turns):
            if turn:
                self._sleep(pattern.think_time_s.sample(rng))
            history.ask(conversation.message(turn))
            self.flavour.max_tokens = pattern.max_tokens.sample_int(rng, minimum=1)
            history.fit(self.flavour.max_tokens)  # inside the model's context, as chat front-ends do
            result = self.send(history.to_send(whole=pattern.history), session_id)
            if result.ok:
                history.calibrate(result.input_tokens)
            elif result.failure_class == "context_overflow" and window is not None:
                window.learn_from(result.server_reason)
                history.overflowed()
            elif result.failure_class == "empty" and window is not None and window.tokens:
                history.overflowed()  # llama-cpp-python's answer to a prompt past n_ctx: an empty stream
            # a failed turn: the person retypes rather than keeping half a reply
            history.answer(result.text if result.ok else None)
            self._back_off_if_unreachable(result)
        self._sleep(0)  # a stop that came during the last turn ends the user before the session end
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

    def send(self, messages: list[dict], session_id: str) -> RequestResult:
        """Send one model request (``flavour.method``, POST but for a chat app's own), read it to
        the end, record it everywhere; never raises."""
        flavour = self.flavour
        streamed = flavour.stream_format is not None
        payload = json.dumps(flavour.body(messages, session_id))
        result = RequestResult()
        t_sent = perf_counter()
        with self.client.request(flavour.method, flavour.path, name=self.request_name, data=payload,
                                 headers=self.headers, stream=streamed, catch_response=True) as resp:
            status = resp.status_code or 0
            result.status = status
            if status >= 400:
                reason = result.server_reason = server_reason(self._error_body(resp))[:1000]
                result.e2e_ms = (perf_counter() - t_sent) * 1000.0
                result.fail(*classify_http_error(status, reason))
            elif status == 0 or resp.headers is None:
                result.e2e_ms = (perf_counter() - t_sent) * 1000.0
                result.fail(*classify_exception(internals.response_error(resp) or internals.request_exception(resp)
                                                or ConnectionError("no response")))
            elif streamed:
                read_stream_chunks(internals.body_reader(resp.stream), flavour, result, t_sent)
            else:
                exc = internals.request_exception(resp)
                if exc is not None:
                    result.e2e_ms = (perf_counter() - t_sent) * 1000.0
                    result.fail(*classify_exception(exc))
                else:
                    read_body(resp.content, flavour, result, t_sent)
            internals.set_response_time(resp, result.e2e_ms)  # the end of the stream, not the headers
            if result.ok:
                resp.success()
            else:
                resp.failure(result.failure_message)
        if streamed and not result.ok:
            internals.close_quietly(resp)
        log_llm_metrics(self.environment.stats, self.request_name, result)
        self.llm_state.record(self.pattern.name, result, time.time())
        return result

    @staticmethod
    def _error_body(resp) -> bytes:
        """An error response's body (its reason), b"" when it cannot be read. geventhttpclient
        has read it already, streamed or not: a status it treats as bad (≥ 400) raises with the
        whole exchange (``http_log``) attached, and the body stays cached as ``content``."""
        try:
            return resp.content or b""
        except Exception:  # noqa: BLE001 - the status alone still classifies the failure
            return b""

    def end_session(self, session_id: str) -> None:
        """Chat apps keep history server-side: tell them the session is over (a normal HTTP row)."""
        flavour = self.flavour
        if isinstance(flavour, ChatApp) and flavour.end_session_path:
            path = flavour.end_session_path.replace("{session_id}", session_id)
            name = f"{flavour.end_session_path} [{self.pattern.name}]"
            with self.client.request(flavour.end_session_method, path, name=name, headers=self.headers,
                                     catch_response=True) as resp:
                if resp.status_code in (200, 202, 204, 404):  # 404: already expired, fine
                    resp.success()
                else:
                    resp.failure(f"http: HTTP {resp.status_code}" if resp.status_code else "disconnect: no response")


