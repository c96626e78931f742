"""The validated profile: frozen dataclasses, their allowed values, and :class:`ProfileError`.

Times are seconds (``*_s``), memory is bytes (``*_bytes``), latencies are milliseconds
(``*_ms``); user counts are simulated users and rates are per wall-clock second. Shape durations
(``RampConfig``, ``StepConfig``, ``SpikeConfig``, ``DiurnalConfig``) are *scenario* time: wall
time = scenario time / ``LoadConfig.time_scale``. Instances come from
:func:`llmsoak.profile.load_profile`; the YAML schema is documented in docs/profiles.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmsoak.errors import EXIT_BAD_INPUT, CommandError
from llmsoak.profile.dumping import profile_to_dict
from llmsoak.profile.patterns import PatternSpec

FLAVOURS = ("openai", "ollama", "chat")
"""``target.flavour`` values: OpenAI-compatible API, Ollama's native API, a chat app's own API."""
ENDPOINTS = {"openai": ("chat", "completions"), "ollama": ("chat", "generate"), "chat": ("chat",)}
"""``target.endpoint`` values allowed per flavour (the first is the default)."""
SHAPES = ("constant", "ramp", "steps", "spike", "diurnal", "none")
"""``load.shape`` values; ``none`` leaves users and spawn rate to Locust's own options."""
PROMPT_SOURCES = ("builtin", "jsonl", "sharegpt")
CHAT_STREAMS = ("none", "sse", "ndjson")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
"""``load.diurnal.start_day`` values, in calendar order (index 0 = Monday)."""


class ProfileError(CommandError):
    """A profile that cannot be used: one line naming the file, the field path and the problem."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message, exit_code)


@dataclass(frozen=True)
class EndSession:
    """Request that ends a chat-app session, e.g. ``DELETE /chat/{session_id}``."""

    method: str = "DELETE"
    path: str = "/chat/{session_id}"
    """Request path; ``{session_id}`` is replaced."""


@dataclass(frozen=True)
class ChatApi:
    """A chat application's own HTTP API (``target.flavour: chat``). Defaults match ``llmsoak stub``."""

    path: str = "/chat"
    method: str = "POST"
    body: Mapping[str, Any] = field(default_factory=lambda: {
        "session_id": "{session_id}", "message": "{message}", "stream": "{stream}"})
    """JSON body template: strings ``{session_id}``, ``{message}``, ``{stream}``, ``{model}``,
    ``{max_tokens}`` are replaced; a string that is exactly one placeholder keeps its type."""
    reply_path: str = "reply"
    """Dotted path of the reply text in a JSON (non-streaming) response."""
    stream: str = "none"
    """How replies stream: ``none``, ``sse`` or ``ndjson``."""
    delta_path: str = "delta"
    """Dotted path of the text piece in each stream event."""
    usage_path: str | None = "usage"
    """Dotted path of ``{prompt_tokens, completion_tokens}``; ``None`` if the app reports none."""
    end_session: EndSession | None = field(default_factory=EndSession)
    """Request sent when a session ends; ``None`` sends none."""


@dataclass(frozen=True)
class Target:
    """The endpoint under test."""

    url: str
    """Base URL, e.g. ``http://127.0.0.1:8000`` (no trailing slash)."""
    flavour: str = "openai"
    """One of :data:`FLAVOURS`."""
    endpoint: str = "chat"
    """One of ``ENDPOINTS[flavour]``."""
    model: str | None = None
    """Model name the server knows; required unless ``flavour == "chat"``."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (sent as ``Authorization: Bearer``)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra non-secret headers, literal values."""
    headers_env: Mapping[str, str] = field(default_factory=dict)
    """Extra headers whose values come from environment variables: header name → variable name."""
    stream: bool = True
    """Stream replies (a pattern's ``stream`` overrides)."""
    timeout_s: float = 60.0
    """Idle network timeout per read, seconds (Locust ``network_timeout``)."""
    connect_timeout_s: float = 10.0
    """TCP connect timeout, seconds."""
    chat: ChatApi | None = None
    """The chat app's API; set only (and always) with ``flavour == "chat"``."""
    command: str | tuple[str, ...] | None = None
    """Command that starts the target (used by ``llmsoak run``); ``None`` = already running."""
    ready_timeout_s: float = 60.0
    """Seconds ``llmsoak run`` waits for a started target to answer."""
    context_tokens: int | None = None
    """The served model's context window in tokens (histories are trimmed to fit); None = ask the
    server (vLLM's ``max_model_len``, llama.cpp's ``/props``), else learn it from an overflow error."""

    def resolve_headers(self) -> dict[str, str]:
        """Headers to send, with secrets read from the environment now (never stored)."""
        out = dict(self.headers)
        if self.api_key_env:
            out["Authorization"] = "Bearer " + _require_env(self.api_key_env, "target.api_key_env")
        for name, var in self.headers_env.items():
            out[name] = _require_env(var, f"target.headers_env.{name}")
        return out


def _require_env(var: str, where: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise ProfileError(f"{where}: environment variable {var} is not set (export it before the run)")
    return value


@dataclass(frozen=True)
class PromptsConfig:
    """Where prompts come from: ``builtin`` corpus, a ``jsonl`` file or ``sharegpt`` JSON."""

    source: str = "builtin"
    path: Path | None = None
    """Prompt file, resolved relative to the profile's directory."""
    system_prompt: str | None = None


@dataclass(frozen=True)
class RampConfig:
    from_users: int
    to_users: int
    duration_s: float
    """Scenario seconds to go from ``from_users`` to ``to_users``; held afterwards."""


@dataclass(frozen=True)
class StepConfig:
    users: int
    duration_s: float
    """Scenario seconds this step is held."""
    spawn_rate: float | None = None
    """Users/s while moving to this step; ``None`` = ``LoadConfig.spawn_rate``."""


@dataclass(frozen=True)
class SpikeConfig:
    base_users: int
    spike_users: int
    at_s: float
    """Scenario seconds from the start until the spike begins."""
    duration_s: float
    """Scenario seconds the spike lasts."""
    spawn_rate: float | None = None
    """Users/s while entering and leaving the spike; default: as fast as the spike size."""


@dataclass(frozen=True)
class DiurnalConfig:
    day_users: int
    """Users at the daily peak (weekdays)."""
    night_users: int
    """Users at the daily trough, 12 hours from the peak."""
    weekend_factor: float = 0.5
    """Multiplier on the user count on Saturdays and Sundays."""
    peak_hour: float = 15.0
    """Scenario hour of the daily peak (0–24); the trough is 12 hours away."""
    start_day: str = "monday"
    """Scenario weekday at the start, one of :data:`WEEKDAYS`."""
    start_hour: float = 0.0
    """Scenario hour of day at the start (0–24)."""
    days: float = 7.0
    """Scenario days in one cycle of the shape."""
    repeat: bool = True
    """Start the week again after ``days``; otherwise the shape ends there."""


@dataclass(frozen=True)
class LoadConfig:
    """The load shape. Shape durations are scenario time; wall time = scenario time / time_scale."""

    shape: str = "constant"
    """One of :data:`SHAPES`; the matching field below holds its settings."""
    users: int = 8
    """Total users for ``constant`` (and the default ``SpikeConfig.base_users``)."""
    spawn_rate: float = 2.0
    """Users started or stopped per wall second."""
    time_scale: float = 1.0
    """Scenario seconds per wall second (168 plays a week in an hour); think times stay real."""
    ramp: RampConfig | None = None
    steps: tuple[StepConfig, ...] = ()
    spike: SpikeConfig | None = None
    diurnal: DiurnalConfig | None = None


@dataclass(frozen=True)
class RunConfig:
    duration_s: float | None = None
    """Wall-clock length of the run in seconds; ``None`` = until the shape ends or someone stops it."""
    workers: int | None = None
    """Local Locust worker processes; ``None`` = auto (one per core), 0 = a single process."""
    checkpoint_interval_s: float = 3600.0
    """Wall seconds between checkpoints written by ``llmsoak run``."""
    events_path: Path | None = None
    """events.csv for shape events when ``LLMSOAK_EVENTS`` is not set (relative to the profile)."""
    seed: int | None = None
    """Seed of every simulated user's random generator (think times, turns, lengths, prompt
    choice); ``None`` = unseeded. See docs/profiles.md ("Seeds") for how far it reproduces a run."""
    remote_workers: int = 0
    """Remote Locust workers (``llmsoak worker --master HOST:PORT`` on other machines) the run's
    master waits for; 0 = none (local workers only)."""
    master_bind: str = "127.0.0.1:5557"
    """``HOST:PORT`` the master listens on for remote workers; off loopback it needs
    ``LLMSOAK_WORKER_TOKEN`` (docs/soak.md, "Remote workers")."""
    workers_timeout_s: float = 300.0
    """Wall seconds the master waits for ``remote_workers`` to join before the run fails."""


@dataclass(frozen=True)
class SamplerConfig:
    interval_s: float = 1.0
    """Seconds between samples."""
    match: str | None = None
    """Regular expression matched against command lines (at most one of match/pid/port/cgroup)."""
    pid: int | None = None
    port: int | None = None
    """TCP port the watched process listens on."""
    cgroup: str | None = None
    """cgroup directory whose processes are watched."""
    listen: str | None = "127.0.0.1:0"
    """``HOST:PORT`` of the sampler's live endpoint (port 0 picks one); ``None`` = off."""
    metrics_url: str | None = None
    """The target's Prometheus ``/metrics`` URL, scraped alongside the samples; a path such as
    ``/metrics`` is on target.url's server (scheme, host and port)."""
    sample_locust: bool = True
    """Also sample the load generator's own processes."""
    remote: str | None = None
    """``http://HOST:PORT`` of an ``llmsoak sample --listen`` on the target's host: its rows are
    pulled into ``samples/target.csv`` instead of sampling locally (docs/sampler.md)."""
    token_env: str | None = None
    """Environment variable with the remote sampler's token (sent as ``Authorization: Bearer``);
    None = ``LLMSOAK_SAMPLER_TOKEN``."""

    @property
    def selector(self) -> str | None:
        """``"pid:812"``, ``"match:REGEX"``, ``"port:8000"``, ``"cgroup:PATH"`` or None (the started target)."""
        for kind in ("pid", "match", "port", "cgroup"):
            if getattr(self, kind) is not None:
                return f"{kind}:{getattr(self, kind)}"
        return None


@dataclass(frozen=True)
class SloConfig:
    ttft_p95_ms: float | None = None
    """Largest acceptable 95th-percentile time to first token, milliseconds."""
    e2e_p95_ms: float | None = None
    """Largest acceptable 95th-percentile full-reply time, milliseconds."""
    error_rate: float | None = None
    """Largest acceptable failed fraction of requests (0.01 = 1%)."""
    memory_warn_bytes: int | None = None
    """Alert when the target's memory passes this many bytes."""
    memory_limit_bytes: int | None = None
    """Memory limit in bytes that ``hours_to_limit`` is computed against."""
    fail_on_leak: bool = True
    """A ``leak`` verdict fails the run."""


ARRIVAL_DISTRIBUTIONS = ("constant", "poisson", "gamma")
"""How the gaps between open-loop arrivals are drawn (llmsoak.locust.arrivals, docs/capacity.md)."""


@dataclass(frozen=True)
class CapacityConfig:
    """How ``llmsoak capacity`` sweeps the load (docs/capacity.md). Rates in requests per second."""

    distribution: str = "poisson"
    """Gaps between open-loop arrivals: constant, poisson or gamma."""
    burstiness: float = 1.0
    """Gamma shape (1 = Poisson, < 1 burstier); only with distribution: gamma."""
    max_in_flight: int = 256
    """Open-loop bound: an arrival due while this many requests are outstanding is dropped.
    Also the concurrency of the maximum-throughput measurement."""
    max_lag_s: float = 1.0
    """An arrival the generator reaches later than this after its time is dropped as late."""
    steps: int = 5
    """Open-loop rates from the synchronous rate to the maximum throughput (both included)."""
    rates: tuple[float, ...] = ()
    """Explicit open-loop rates instead of ``steps`` between the measured ends."""
    warmup_s: float = 5.0
    """Seconds of each step discarded before measuring."""
    measure_s: float = 20.0
    """Seconds of each step measured."""
    drain_s: float = 30.0
    """Longest wait for the replies still outstanding after a step."""
    refine: int = 2
    """Bisections of the rate between the highest step that met the SLOs and the next one."""
    users: bool = True
    """Also search the number of users of the profile's pattern mix (closed loop, bisected)."""
    max_users: int | None = None
    """Upper end of the user search; None: estimated from the rate knee and the patterns."""
    user_iterations: int = 5
    """Closed-loop runs of the user bisection."""
    target_rate: float | None = None
    """Open-loop rate the exit code checks (0 sustainable, 1 not)."""
    target_users: int | None = None
    """Number of users the exit code checks (0 sustainable, 1 not)."""


@dataclass(frozen=True)
class ArrivalsConfig:
    """Open-loop arrivals as the load of a run (docs/profiles.md ``arrivals``): one driver per
    Locust process replaces the profile's users. Same meanings as the ``capacity`` fields."""

    rate: float = 1.0
    """Requests per second for the whole run (split across ``--processes``)."""
    distribution: str = "poisson"
    """Gaps between arrivals: constant, poisson or gamma."""
    burstiness: float = 1.0
    """Gamma shape (1 = Poisson, < 1 burstier); only with distribution: gamma."""
    max_in_flight: int = 64
    """An arrival due while this many requests are outstanding is dropped (split across processes)."""
    max_lag_s: float = 1.0
    """An arrival the generator reaches later than this after its time is dropped as late."""


@dataclass(frozen=True)
class Profile:
    """A validated profile. ``patterns`` keeps the order of the file."""

    name: str
    description: str
    target: Target
    patterns: tuple[PatternSpec, ...]
    prompts: PromptsConfig
    load: LoadConfig
    run: RunConfig
    sampler: SamplerConfig
    slo: SloConfig
    source_path: Path | None = None
    """The file it was loaded from; ``None`` for :func:`llmsoak.profile.profile_from_dict` without a source."""
    capacity: CapacityConfig | None = None
    """The ``capacity`` section (``llmsoak capacity``); None when the profile has none."""
    arrivals: ArrivalsConfig | None = None
    """The ``arrivals`` section (open-loop load of ``llmsoak run``); None: the profile's users."""

    def pattern(self, name: str) -> PatternSpec:
        for spec in self.patterns:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def to_dict(self) -> dict:
        """The resolved profile in the input schema (what ``runs/<id>/profile.yaml`` holds).

        Every default is filled in and the result loads back with ``profile_from_dict`` to an
        equal Profile. Secrets are only ever environment variable *names*; their values are
        never read here.
        """
        return profile_to_dict(self)
