"""Sessions for open-loop arrivals: each arrival is one turn of a session drawn from the profile.

An open-loop sender (llmsoak.locust.arrivals.OpenLoop) decides *when* a request goes out; this
mixin of a chat user decides *what* it is: the next turn of an idle session, or the first of a
new one, with the pattern picked by weight (prompt source, turns, lengths, history trimmed to the
context window, as the profile's users do). Requests in flight at the same time each read their
own view of the user. Used by ``llmsoak capacity`` (llmsoak.capacity.locust_side.CapacityUser)
and by a run's ``arrivals`` section (llmsoak.locust.arrivals_driver).

A class using it sets ``patterns``, ``pattern_weights``, ``session_prefix``,
``max_idle_sessions`` (idle sessions kept; the oldest ends beyond it) and ``record_turn``, and
creates ``self._idle = collections.deque()`` before the first turn.
"""

from __future__ import annotations

import collections
import copy
import itertools
import sys
import time

from llmsoak.locust.apis import ChatApp, flavour_for
from llmsoak.locust.context_window import context_window_for
from llmsoak.locust.history import ChatHistory
from llmsoak.locust.users import LLMChatUser

_session_ids = itertools.count(1)


class _Session:
    __slots__ = ("id", "pattern", "flavour", "history", "conversation", "turns", "turn")


class OpenLoopSessions:
    """Mixin for an LLMChatUser: :meth:`one_turn` sends one turn of a session; never raises."""

    patterns: tuple = ()
    pattern_weights: tuple = ()
    session_prefix = "llmsoak-open-loop"
    max_idle_sessions = 64
    _idle: collections.deque

    def record_turn(self, phase: int, pattern: str, scheduled_at: float, lag_s: float, result, turn: int) -> None:
        """Called after each turn (hook; nothing by default)."""

    def _new_session(self) -> _Session:
        s = _Session()
        rng = self.rng
        pattern = rng.choices(self.patterns, weights=self.pattern_weights)[0]
        s.id = f"{self.session_prefix}-{pattern.name}-{next(_session_ids)}"
        s.pattern = pattern
        s.flavour = flavour_for(self.target, pattern)
        keeps = s.flavour.keeps_history
        window = context_window_for(self.target, self.host) if keeps and pattern.history else None
        s.history = ChatHistory(self.system_prompt if keeps else None, max_turns=pattern.max_history_turns,
                                window=window)  # trimmed to the context window, as the profile's users are
        s.turns = pattern.turns_per_session.sample_int(rng, minimum=1)
        s.turn = 0
        s.conversation = self._conversation_for(pattern)
        return s

    def _conversation_for(self, pattern):
        saved, self.pattern = self.pattern, pattern
        try:
            return self._conversation(pattern.prompt_tokens.sample_int(self.rng, minimum=1))
        finally:
            self.pattern = saved

    def one_turn(self, phase: int, scheduled_at: float) -> None:
        """Send the next turn of an idle session (or a new one) and record it; never raises."""
        lag_s = max(0.0, time.time() - scheduled_at)
        s = self._idle.popleft() if self._idle else self._new_session()
        pattern = s.pattern
        s.history.ask(s.conversation.message(s.turn))
        # A view of this user with the session's pattern: requests in flight at the same time
        # each read their own flavour while their stream comes in.
        view = copy.copy(self)
        view.pattern = pattern
        view.flavour = copy.copy(s.flavour)
        view.flavour.max_tokens = pattern.max_tokens.sample_int(self.rng, minimum=1)
        view.request_name = f"{view.flavour.label} [{pattern.name}]"
        s.history.fit(view.flavour.max_tokens)
        try:
            result = LLMChatUser.send(view, s.history.to_send(whole=pattern.history), s.id)
        except Exception as err:  # noqa: BLE001 - send never raises; a bug here must not kill the schedule
            sys.stderr.write(f"llmsoak: open-loop request failed unexpectedly: {err!r}\n")
            return
        window = s.history.window
        if result.ok:
            s.history.calibrate(result.input_tokens)
        elif result.failure_class == "context_overflow" and window is not None:
            window.learn_from(result.server_reason)
            s.history.overflowed()
        s.history.answer(result.text if result.ok else None)
        self.record_turn(phase, pattern.name, scheduled_at, lag_s, result, s.turn)
        s.turn += 1
        if s.turn < s.turns:
            self._idle.append(s)
            if len(self._idle) > self.max_idle_sessions:  # bounded: the oldest idle session ends
                self._end(self._idle.popleft())
        else:
            self._end(s)

    def _end(self, s: _Session) -> None:
        if isinstance(s.flavour, ChatApp) and s.flavour.end_session_path:
            view = copy.copy(self)
            view.pattern, view.flavour = s.pattern, s.flavour
            view.end_session(s.id)
