"""The user patterns: the four built-in ones' defaults, and the PatternSpec a profile overrides.

A pattern is a kind of person at a chat box. A user of a pattern loops over *sessions*: wait
``first_message_delay_s`` once at start, then per session send ``turns_per_session`` messages with
``think_time_s`` between them (real history, each reply appended), then wait ``session_pause_s``
before the next session. Prompts aim at ``prompt_tokens``; replies are capped at ``max_tokens``.

==========  ===========================  =========  ==============  ===========  =================
pattern     think time (s)               turns      prompt tokens   max tokens   pause between
==========  ===========================  =========  ==============  ===========  =================
active      lognormal median 8, 2–60     6–20       ~150 (10–2000)  ~250         10–60 s
casual      uniform 60–120               1–4        ~80             ~200         ~10 min (2–60 min)
sporadic    uniform 3–15 within a burst  2–5        ~100            ~200         ~30 min (5 min–6 h)
stress      0                            1–3        ~2000 (500–8k)  512–1024     0
==========  ===========================  =========  ==============  ===========  =================

Units: seconds for ``*_s`` fields, tokens for ``prompt_tokens``/``max_tokens``.

This is the one place for the patterns' defaults (docs/profiles.md shows the same table). Locust
runs each pattern of a profile as a user class named after it (``ActiveUser``, ``CasualUser``,
``SporadicUser``, ``StressUser``, ``<Name>User`` for custom ones), built by
``llmsoak.locust.user_classes``; every such user runs the session loop of ``llmsoak.locust.users``
with its PatternSpec. Nothing here imports Locust: the profile loader validates against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmsoak.profile.distributions import Distribution, constant, lognormal, uniform

BUILTIN_NAMES = ("active", "casual", "sporadic", "stress")


@dataclass(frozen=True)
class PatternSpec:
    """One user pattern as the Locust users read it. Immutable; build variants with ``replace``."""

    name: str
    """Pattern name as it appears in stats and llm_timeseries.csv, e.g. ``"active"``."""
    base: str
    """Built-in pattern it starts from (``active``, ``casual``, ``sporadic``, ``stress``)."""
    description: str
    weight: float | None = None
    """Relative share of users when the shape sets a total count (Locust ``weight``)."""
    users: int | None = None
    """Fixed number of users of this pattern (Locust ``fixed_count``); overrides ``weight``."""
    think_time_s: Distribution = field(default_factory=lambda: constant(0))
    """Seconds between a reply and the user's next message within a session."""
    turns_per_session: Distribution = field(default_factory=lambda: constant(1))
    """Messages per session (rounded, at least 1)."""
    prompt_tokens: Distribution = field(default_factory=lambda: constant(100))
    """Target prompt length in tokens (about 4 characters each); the prompt source pads or picks."""
    max_tokens: Distribution = field(default_factory=lambda: constant(256))
    """Output cap sent with each request (``max_tokens`` / Ollama ``num_predict``)."""
    stream: bool | None = None
    """Stream replies; ``None`` = the target's ``stream`` setting."""
    session_pause_s: Distribution = field(default_factory=lambda: constant(0))
    """Seconds idle between the end of one session and the start of the next."""
    first_message_delay_s: Distribution = field(default_factory=lambda: constant(0))
    """Seconds a newly started user waits before its first message (spreads arrivals)."""
    history: bool = True
    """Send the conversation so far with each turn (multi-turn with real history)."""
    max_history_turns: int = 50
    """Oldest turns are dropped beyond this many, keeping memory bounded over a week."""

    @property
    def uses_fixed_count(self) -> bool:
        return self.users is not None


BUILTIN_PATTERNS: dict[str, PatternSpec] = {
    "active": PatternSpec(
        name="active", base="active",
        description="Lively conversation: replies read and answered within seconds, long sessions.",
        weight=3,
        think_time_s=lognormal(8, 0.6, 2, 60),
        turns_per_session=uniform(6, 20),
        prompt_tokens=lognormal(150, 0.8, 10, 2000),
        max_tokens=lognormal(250, 0.5, 32, 1024),
        session_pause_s=uniform(10, 60),
        first_message_delay_s=uniform(0, 10),
    ),
    "casual": PatternSpec(
        name="casual", base="casual",
        description="A message every minute or two, short sessions, long breaks.",
        weight=2,
        think_time_s=uniform(60, 120),
        turns_per_session=uniform(1, 4),
        prompt_tokens=lognormal(80, 0.7, 10, 1000),
        max_tokens=lognormal(200, 0.5, 32, 768),
        session_pause_s=lognormal(600, 0.8, 120, 3600),
        first_message_delay_s=uniform(0, 120),
    ),
    "sporadic": PatternSpec(
        name="sporadic", base="sporadic",
        description="Idle for minutes to hours, then a burst of a few quick messages.",
        weight=1,
        think_time_s=uniform(3, 15),
        turns_per_session=uniform(2, 5),
        prompt_tokens=lognormal(100, 0.8, 10, 1500),
        max_tokens=lognormal(200, 0.5, 32, 768),
        session_pause_s=lognormal(1800, 1.2, 300, 21600),
        first_message_delay_s=uniform(0, 600),
    ),
    "stress": PatternSpec(
        name="stress", base="stress",
        description="No think time, long prompts and long outputs, as fast as the target answers.",
        weight=1,
        think_time_s=constant(0),
        turns_per_session=uniform(1, 3),
        prompt_tokens=lognormal(2000, 0.5, 500, 8000),
        max_tokens=uniform(512, 1024),
        session_pause_s=constant(0),
        first_message_delay_s=constant(0),
    ),
}
"""Defaults documented in docs/profiles.md; a profile's ``patterns.<name>`` overrides fields."""
