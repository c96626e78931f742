"""YAML profiles → frozen dataclasses, validated once, with errors naming file and field path.

``load_profile("profiles/smoke.yaml")`` returns a :class:`Profile`; anything wrong raises
:class:`ProfileError` (exit 2) with one line such as
``profiles/x.yaml: patterns.active.think_time_s.max: must be >= min (got 1 < 3)``.
The schema is documented field by field in docs/profiles.md.

Secrets never live in a profile: ``target.api_key_env`` and ``target.headers_env`` name
environment variables, read only when requests are built (``Target.resolve_headers()``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmsoak.distributions import Distribution, DistributionError, parse_distribution
from llmsoak.errors import EXIT_BAD_INPUT, CommandError
from llmsoak.patterns_spec import BUILTIN_NAMES, BUILTIN_PATTERNS, PatternSpec
from llmsoak.units import parse_size, parse_timespan

__all__ = [
    "ChatApi", "EndSession", "LoadConfig", "PatternSpec", "Profile", "ProfileError", "PromptsConfig",
    "RampConfig", "RunConfig", "SamplerConfig", "SloConfig", "SpikeConfig", "StepConfig", "Target",
    "DiurnalConfig", "load_profile", "validate_profile_file", "profile_from_dict",
]

FLAVOURS = ("openai", "ollama", "chat")
ENDPOINTS = {"openai": ("chat", "completions"), "ollama": ("chat", "generate"), "chat": ("chat",)}
SHAPES = ("constant", "ramp", "steps", "spike", "diurnal", "none")
PROMPT_SOURCES = ("builtin", "jsonl", "sharegpt")
CHAT_STREAMS = ("none", "sse", "ndjson")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Header names whose values are credentials: refused as literals, allowed through headers_env.
_SECRET_HEADERS = {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"}
_PATTERN_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class ProfileError(CommandError):
    """A profile that cannot be used: one line naming the file, the field path and the problem."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message, exit_code)


# ----------------------------------------------------------------------------- dataclasses

@dataclass(frozen=True)
class EndSession:
    """Request that ends a chat-app session, e.g. ``DELETE /chat/{session_id}``."""

    method: str = "DELETE"
    path: str = "/chat/{session_id}"


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


@dataclass(frozen=True)
class Target:
    """The endpoint under test."""

    url: str
    """Base URL, e.g. ``http://127.0.0.1:8000`` (no trailing slash)."""
    flavour: str = "openai"
    endpoint: str = "chat"
    model: str | None = None
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (sent as ``Authorization: Bearer``)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra non-secret headers, literal values."""
    headers_env: Mapping[str, str] = field(default_factory=dict)
    """Extra headers whose values come from environment variables: header name → variable name."""
    stream: bool = True
    timeout_s: float = 60.0
    """Idle network timeout per read, seconds (Locust ``network_timeout``)."""
    connect_timeout_s: float = 10.0
    chat: ChatApi | None = None
    command: str | tuple[str, ...] | None = None
    """Command that starts the target (used by ``llmsoak run``); ``None`` = already running."""
    ready_timeout_s: float = 60.0

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
    seed: int | None = None


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
    spawn_rate: float | None = None


@dataclass(frozen=True)
class SpikeConfig:
    base_users: int
    spike_users: int
    at_s: float
    """Scenario seconds from the start until the spike begins."""
    duration_s: float
    spawn_rate: float | None = None
    """Users/s while entering and leaving the spike; default: as fast as the spike size."""


@dataclass(frozen=True)
class DiurnalConfig:
    day_users: int
    night_users: int
    weekend_factor: float = 0.5
    peak_hour: float = 15.0
    """Scenario hour of the daily peak (0–24); the trough is 12 hours away."""
    start_day: str = "monday"
    start_hour: float = 0.0
    days: float = 7.0
    repeat: bool = True
    """Start the week again after ``days``; otherwise the shape ends there."""


@dataclass(frozen=True)
class LoadConfig:
    """The load shape. Shape durations are scenario time; wall time = scenario time / time_scale."""

    shape: str = "constant"
    users: int = 8
    spawn_rate: float = 2.0
    """Users started or stopped per wall second."""
    time_scale: float = 1.0
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
    events_path: Path | None = None
    seed: int | None = None


@dataclass(frozen=True)
class SamplerConfig:
    interval_s: float = 1.0
    match: str | None = None
    pid: int | None = None
    port: int | None = None
    cgroup: str | None = None
    listen: str | None = "127.0.0.1:0"
    metrics_url: str | None = None
    sample_locust: bool = True

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
    e2e_p95_ms: float | None = None
    error_rate: float | None = None
    """Largest acceptable failed fraction of requests (0.01 = 1%)."""
    memory_warn_bytes: int | None = None
    memory_limit_bytes: int | None = None
    fail_on_leak: bool = True


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

    def pattern(self, name: str) -> PatternSpec:
        for spec in self.patterns:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def to_redacted_dict(self) -> dict:
        """The resolved profile in the input schema, for ``runs/<id>/profile.yaml``.

        Every default is filled in and the result loads back with ``profile_from_dict`` to an
        equal Profile. Secrets are only ever environment variable *names*; their values are
        never read here.
        """
        target = _plain(self.target)
        if target["chat"] is None:
            del target["chat"]
        patterns = {}
        for spec in self.patterns:
            body = _plain(spec)
            del body["name"]
            body.pop("users" if spec.users is None else "weight")
            patterns[spec.name] = body
        load = _plain(self.load)
        for key in ("ramp", "steps", "spike", "diurnal"):
            if key != self.load.shape:
                del load[key]
        run = _plain(self.run)
        run["workers"] = "auto" if self.run.workers is None else self.run.workers
        prompts = _plain(self.prompts)
        if prompts["path"] is None:
            del prompts["path"]
        return _rename({"name": self.name, "description": self.description, "target": target,
                        "patterns": patterns, "prompts": prompts, "load": load, "run": run,
                        "sampler": _plain(self.sampler), "slo": _plain(self.slo)})


# Dataclass attribute → profile key where the YAML spelling is a timespan without the unit suffix.
_YAML_KEYS = {"duration_s": "duration", "at_s": "at", "checkpoint_interval_s": "checkpoint_interval"}


def _rename(value: Any) -> Any:
    if isinstance(value, dict):
        return {_YAML_KEYS.get(k, k): _rename(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Dataclasses → dicts, distributions → their YAML spelling, paths → strings."""
    if isinstance(value, Distribution):
        return value.to_spec()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# ----------------------------------------------------------------------------- reading

class _Fail(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class _Section:
    """A mapping being read at ``path``: every key must be consumed, unknown keys are errors."""

    def __init__(self, raw: object, path: str, allowed: tuple[str, ...]) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise _Fail(path, f"expected a mapping, got {_kind(raw)}")
        self.raw = raw
        self.path = path
        for key in raw:
            if key not in allowed:
                raise _Fail(self.sub(str(key)), _unknown_key(str(key), allowed))

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.raw and self.raw[key] is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.raw.get(key)
        return default if value is None else value

    def string(self, key: str, default: str | None = None, choices: tuple[str, ...] | None = None) -> Any:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, (bool, Mapping, list)):
            raise _Fail(self.sub(key), f"expected a string, got {_kind(value)}")
        value = str(value)
        if choices and value not in choices:
            hint = difflib.get_close_matches(value, choices, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise _Fail(self.sub(key), f"must be one of {', '.join(choices)} (got {value!r}){extra}")
        return value

    def boolean(self, key: str, default: bool | None) -> Any:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise _Fail(self.sub(key), f"expected true or false, got {value!r}")
        return value

    def number(self, key: str, default: Any = None, *, minimum: float | None = None,
               maximum: float | None = None, integer: bool = False, above: float | None = None) -> Any:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Fail(self.sub(key), f"expected {'an integer' if integer else 'a number'}, got {value!r}")
        if integer and (isinstance(value, float) and not value.is_integer()):
            raise _Fail(self.sub(key), f"expected an integer, got {value!r}")
        _bounds(self.sub(key), value, minimum, maximum, above)
        return int(value) if integer else float(value)

    def timespan(self, key: str, default: Any = None, *, above: float | None = None) -> Any:
        value = self.raw.get(key)
        if value is None:
            return default
        try:
            seconds = parse_timespan(value)
        except ValueError as err:
            raise _Fail(self.sub(key), str(err)) from None
        _bounds(self.sub(key), seconds, None, None, above)
        return seconds

    def size(self, key: str) -> int | None:
        value = self.raw.get(key)
        if value is None:
            return None
        try:
            return parse_size(value)
        except ValueError as err:
            raise _Fail(self.sub(key), str(err)) from None

    def env_name(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not _ENV_NAME_RE.match(value):
            raise _Fail(path, f"expected an environment variable name like MY_API_KEY, got {value!r}")
        return value

    def distribution(self, key: str, default: Distribution, *, seconds: bool) -> Distribution:
        if key not in self.raw:
            return default
        try:
            return parse_distribution(self.raw[key], seconds=seconds)
        except DistributionError as err:
            path = self.sub(key)
            if err.field:
                path += err.field if err.field.startswith("[") else "." + err.field
            raise _Fail(path, str(err)) from None


def _bounds(path: str, value: float, minimum: float | None, maximum: float | None,
            above: float | None) -> None:
    if minimum is not None and value < minimum:
        raise _Fail(path, f"must be >= {minimum:g} (got {value:g})")
    if above is not None and value <= above:
        raise _Fail(path, f"must be > {above:g} (got {value:g})")
    if maximum is not None and value > maximum:
        raise _Fail(path, f"must be <= {maximum:g} (got {value:g})")


def _kind(value: object) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _unknown_key(key: str, allowed: tuple[str, ...]) -> str:
    hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if key == "api_key":
        return ("secrets are not stored in profiles: put the key in an environment variable and "
                "name it with api_key_env: MY_KEY_VARIABLE")
    text = f"unknown field {key!r}"
    if hint:
        text += f" (did you mean {hint[0]!r}?)"
    else:
        text += f" (known: {', '.join(allowed)})"
    return text


# ----------------------------------------------------------------------------- sections

_TOP = ("name", "description", "target", "patterns", "prompts", "load", "run", "sampler", "slo")
_TARGET = ("url", "flavour", "endpoint", "model", "api_key_env", "headers", "headers_env", "stream",
           "timeout_s", "connect_timeout_s", "chat", "command", "ready_timeout_s")
_CHAT = ("path", "method", "body", "reply_path", "stream", "delta_path", "usage_path", "end_session")
_PATTERN = ("base", "description", "weight", "users", "think_time_s", "turns_per_session",
            "prompt_tokens", "max_tokens", "stream", "session_pause_s", "first_message_delay_s",
            "history", "max_history_turns")
_DIST_SECONDS = ("think_time_s", "session_pause_s", "first_message_delay_s")
_DIST_COUNTS = ("turns_per_session", "prompt_tokens", "max_tokens")
_DEFAULT_MIX = {"active": {"weight": 3}, "casual": {"weight": 2}, "sporadic": {"weight": 1}}
_URL_RE = re.compile(r"^https?://[^/\s:]+(:\d{1,5})?(/\S*)?$")


def _parse_target(raw: object) -> Target:
    s = _Section(raw, "target", _TARGET)
    if not s.has("url"):
        raise _Fail("target.url", "required (e.g. http://127.0.0.1:8000)")
    url = s.string("url")
    if not _URL_RE.match(url):
        hint = " ({port} is filled in only by `llmsoak run`)" if "{port}" in url else ""
        raise _Fail("target.url", f"expected http://HOST[:PORT][/PATH], got {url!r}{hint}")
    flavour = s.string("flavour", "openai", FLAVOURS)
    endpoint = s.string("endpoint", "chat", ENDPOINTS[flavour])
    model = s.string("model")
    if flavour != "chat" and not model:
        raise _Fail("target.model", f"required for flavour {flavour} (the model name the server knows)")
    api_key_env = None
    if s.has("api_key_env"):
        api_key_env = s.env_name(s.raw["api_key_env"], "target.api_key_env")
    headers = _string_map(s, "headers")
    for name in headers:
        if name.lower() in _SECRET_HEADERS:
            raise _Fail(f"target.headers.{name}", "credentials are not stored in profiles: name an "
                        f"environment variable instead, e.g. headers_env: {{{name}: MY_HEADER_VALUE}}")
    headers_env = {k: s.env_name(v, f"target.headers_env.{k}") for k, v in _string_map(s, "headers_env").items()}
    chat = _parse_chat(s.raw.get("chat")) if flavour == "chat" else None
    if flavour != "chat" and s.has("chat"):
        raise _Fail("target.chat", f"only used with flavour: chat (flavour is {flavour})")
    command = s.raw.get("command")
    if command is not None:
        if isinstance(command, list) and command and all(isinstance(c, (str, int, float)) for c in command):
            command = tuple(str(c) for c in command)
        elif not isinstance(command, str) or not command.strip():
            raise _Fail("target.command", "expected a shell command string or a list of arguments")
    return Target(
        url=url.rstrip("/"), flavour=flavour, endpoint=endpoint, model=model, api_key_env=api_key_env,
        headers=headers, headers_env=headers_env, stream=s.boolean("stream", True),
        timeout_s=s.timespan("timeout_s", 60.0, above=0),
        connect_timeout_s=s.timespan("connect_timeout_s", 10.0, above=0),
        chat=chat, command=command, ready_timeout_s=s.timespan("ready_timeout_s", 60.0, above=0))


def _string_map(s: _Section, key: str) -> dict[str, str]:
    raw = s.raw.get(key)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _Fail(s.sub(key), f"expected a mapping of header name to value, got {_kind(raw)}")
    out = {}
    for name, value in raw.items():
        if isinstance(value, (Mapping, list, bool)) or value is None:
            raise _Fail(f"{s.sub(key)}.{name}", f"expected a string, got {_kind(value)}")
        out[str(name)] = str(value)
    return out


def _parse_chat(raw: object) -> ChatApi:
    s = _Section(raw, "target.chat", _CHAT)
    defaults = ChatApi()
    body = s.raw.get("body", defaults.body)
    if not isinstance(body, Mapping):
        raise _Fail("target.chat.body", f"expected a JSON object template, got {_kind(body)}")
    if "{message}" not in repr(body):
        raise _Fail("target.chat.body", "must contain the placeholder {message} somewhere")
    end = defaults.end_session
    if "end_session" in s.raw:
        if s.raw["end_session"] is None or s.raw["end_session"] is False:
            end = None
        else:
            es = _Section(s.raw["end_session"], "target.chat.end_session", ("method", "path"))
            end = EndSession(method=es.string("method", "DELETE").upper(), path=es.string("path", end.path))
    path = s.string("path", defaults.path)
    if not path.startswith("/"):
        raise _Fail("target.chat.path", f"must start with / (got {path!r})")
    return ChatApi(
        path=path, method=s.string("method", "POST").upper(), body=copy.deepcopy(dict(body)),
        reply_path=s.string("reply_path", defaults.reply_path),
        stream=s.string("stream", "none", CHAT_STREAMS) if s.raw.get("stream") is not False else "none",
        delta_path=s.string("delta_path", defaults.delta_path),
        usage_path=s.string("usage_path", None) if "usage_path" in s.raw else defaults.usage_path,
        end_session=end)


def _parse_patterns(raw: object) -> tuple[PatternSpec, ...]:
    if raw is None:
        raw = _DEFAULT_MIX
    if not isinstance(raw, Mapping) or not raw:
        raise _Fail("patterns", "expected a mapping of pattern name to settings, e.g. {active: {weight: 3}}")
    specs = []
    for name, body in raw.items():
        name = str(name)
        path = f"patterns.{name}"
        if not _PATTERN_NAME_RE.match(name):
            raise _Fail(path, "pattern names are lowercase letters, digits, - and _ (at most 32)")
        s = _Section(body, path, _PATTERN)
        base = s.string("base", name if name in BUILTIN_NAMES else None, BUILTIN_NAMES)
        if base is None:
            hint = difflib.get_close_matches(name, BUILTIN_NAMES, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise _Fail(path, f"unknown pattern: a custom pattern needs base: one of "
                        f"{', '.join(BUILTIN_NAMES)}{extra}")
        d = BUILTIN_PATTERNS[base]
        if s.has("weight") and s.has("users"):
            raise _Fail(f"{path}.users", "give either weight (a share) or users (a fixed count), not both")
        users = s.number("users", None, minimum=0, integer=True)
        weight = None if users is not None else s.number("weight", d.weight if base == name else 1,
                                                          minimum=0)
        values: dict[str, Any] = {}
        for key in _DIST_SECONDS:
            values[key] = s.distribution(key, getattr(d, key), seconds=True)
        for key in _DIST_COUNTS:
            values[key] = s.distribution(key, getattr(d, key), seconds=False)
        turns: Distribution = values["turns_per_session"]
        if turns.max is not None and turns.max < 1 or turns.kind == "constant" and (turns.value or 0) < 1:
            raise _Fail(f"{path}.turns_per_session", "must allow at least 1 turn per session")
        specs.append(dataclasses.replace(
            d, name=name, base=base, description=s.string("description", d.description),
            weight=weight, users=users, stream=s.boolean("stream", d.stream),
            history=s.boolean("history", d.history),
            max_history_turns=s.number("max_history_turns", d.max_history_turns, minimum=1, integer=True),
            **values))
    if not any((p.users or 0) > 0 or (p.weight or 0) > 0 for p in specs):
        raise _Fail("patterns", "every pattern has weight 0 and no users: nothing would run")
    return tuple(specs)


def _parse_prompts(raw: object, base_dir: Path) -> PromptsConfig:
    s = _Section(raw, "prompts", ("source", "path", "system_prompt", "seed"))
    source = s.string("source", "builtin", PROMPT_SOURCES)
    path = None
    if source != "builtin":
        if not s.has("path"):
            raise _Fail("prompts.path", f"required for source: {source} (a file, relative to the profile)")
        path = Path(os.path.expanduser(s.string("path")))
        if not path.is_absolute():
            path = base_dir / path
        if not path.is_file():
            raise _Fail("prompts.path", f"no such file: {path}")
    elif s.has("path"):
        raise _Fail("prompts.path", "only used with source: jsonl or sharegpt")
    return PromptsConfig(source=source, path=path, system_prompt=s.string("system_prompt"),
                         seed=s.number("seed", None, integer=True))


def _parse_load(raw: object) -> LoadConfig:
    s = _Section(raw, "load", ("shape", "users", "spawn_rate", "time_scale", "ramp", "steps", "spike",
                               "diurnal"))
    shape = s.string("shape", "constant", SHAPES)
    for other in ("ramp", "steps", "spike", "diurnal"):
        if s.has(other) and other != shape:
            raise _Fail(f"load.{other}", f"settings for shape {other}, but load.shape is {shape}")
    users = s.number("users", 8, minimum=0, integer=True)
    spawn_rate = s.number("spawn_rate", 2.0, above=0)
    ramp = steps = spike = diurnal = None
    if shape == "ramp":
        r = _Section(s.raw.get("ramp"), "load.ramp", ("from_users", "to_users", "duration"))
        for key in ("to_users", "duration"):
            if not r.has(key):
                raise _Fail(f"load.ramp.{key}", "required for shape: ramp")
        ramp = RampConfig(from_users=r.number("from_users", 0, minimum=0, integer=True),
                          to_users=r.number("to_users", minimum=0, integer=True),
                          duration_s=r.timespan("duration", above=0))
    elif shape == "steps":
        raw_steps = s.raw.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise _Fail("load.steps", "required for shape: steps: a list like [{users: 4, duration: 5m}, ...]")
        parsed = []
        for i, item in enumerate(raw_steps):
            st = _Section(item, f"load.steps[{i}]", ("users", "duration", "spawn_rate"))
            for key in ("users", "duration"):
                if not st.has(key):
                    raise _Fail(st.sub(key), "required")
            parsed.append(StepConfig(users=st.number("users", minimum=0, integer=True),
                                     duration_s=st.timespan("duration", above=0),
                                     spawn_rate=st.number("spawn_rate", None, above=0)))
        steps = tuple(parsed)
    elif shape == "spike":
        sp = _Section(s.raw.get("spike"), "load.spike", ("base_users", "spike_users", "at", "duration",
                                                          "spawn_rate"))
        for key in ("spike_users", "at", "duration"):
            if not sp.has(key):
                raise _Fail(sp.sub(key), "required for shape: spike")
        spike = SpikeConfig(base_users=sp.number("base_users", users, minimum=0, integer=True),
                            spike_users=sp.number("spike_users", minimum=0, integer=True),
                            at_s=sp.timespan("at"), duration_s=sp.timespan("duration", above=0),
                            spawn_rate=sp.number("spawn_rate", None, above=0))
    elif shape == "diurnal":
        dk = ("day_users", "night_users", "weekend_factor", "peak_hour", "start_day", "start_hour", "days",
              "repeat")
        dd = _Section(s.raw.get("diurnal"), "load.diurnal", dk)
        if not dd.has("day_users"):
            raise _Fail("load.diurnal.day_users", "required for shape: diurnal")
        day = dd.number("day_users", minimum=0, integer=True)
        night = dd.number("night_users", max(0, day // 5), minimum=0, integer=True)
        if night > day:
            raise _Fail("load.diurnal.night_users", f"must be <= day_users (got {night} > {day})")
        diurnal = DiurnalConfig(
            day_users=day, night_users=night,
            weekend_factor=dd.number("weekend_factor", 0.5, minimum=0, maximum=10),
            peak_hour=dd.number("peak_hour", 15.0, minimum=0, maximum=24),
            start_day=dd.string("start_day", "monday", WEEKDAYS),
            start_hour=dd.number("start_hour", 0.0, minimum=0, maximum=24),
            days=dd.number("days", 7.0, above=0), repeat=dd.boolean("repeat", True))
    return LoadConfig(shape=shape, users=users, spawn_rate=spawn_rate,
                      time_scale=s.number("time_scale", 1.0, above=0, maximum=1e6),
                      ramp=ramp, steps=steps or (), spike=spike, diurnal=diurnal)


def _parse_run(raw: object, base_dir: Path) -> RunConfig:
    s = _Section(raw, "run", ("duration", "workers", "checkpoint_interval", "events_path", "seed"))
    workers = s.raw.get("workers")
    if workers is None or workers == "auto":
        workers = None
    else:
        workers = s.number("workers", minimum=0, maximum=1024, integer=True) if not isinstance(
            workers, str) else _fail_workers(workers)
    events = s.string("events_path")
    events_path = None
    if events:
        events_path = Path(os.path.expanduser(events))
        if not events_path.is_absolute():
            events_path = base_dir / events_path
    return RunConfig(duration_s=s.timespan("duration", None, above=0), workers=workers,
                     checkpoint_interval_s=s.timespan("checkpoint_interval", 3600.0, above=0),
                     events_path=events_path, seed=s.number("seed", None, integer=True))


def _fail_workers(value: str) -> int:
    raise _Fail("run.workers", f"expected auto or a number of processes, got {value!r}")


def _parse_sampler(raw: object) -> SamplerConfig:
    s = _Section(raw, "sampler", ("interval_s", "match", "pid", "port", "cgroup", "listen", "metrics_url",
                                  "sample_locust"))
    match = s.string("match")
    if match is not None:
        try:
            re.compile(match)
        except re.error as err:
            raise _Fail("sampler.match", f"not a valid regular expression: {err}") from None
    chosen = [k for k in ("match", "pid", "port", "cgroup") if s.has(k)]
    if len(chosen) > 1:
        raise _Fail(f"sampler.{chosen[1]}", f"choose one of match, pid, port, cgroup (also got {chosen[0]})")
    listen = s.raw.get("listen", "127.0.0.1:0")
    if listen is not None and listen is not False:
        if not isinstance(listen, str) or not re.match(r"^[\w.\-\[\]:]+:\d{1,5}$", listen):
            raise _Fail("sampler.listen", f"expected HOST:PORT like 127.0.0.1:0, got {listen!r}")
    else:
        listen = None
    metrics_url = s.string("metrics_url")
    if metrics_url is not None and not _URL_RE.match(metrics_url):
        raise _Fail("sampler.metrics_url", f"expected http://HOST:PORT/metrics, got {metrics_url!r}")
    return SamplerConfig(interval_s=s.timespan("interval_s", 1.0, above=0), match=match,
                         pid=s.number("pid", None, minimum=1, integer=True),
                         port=s.number("port", None, minimum=1, maximum=65535, integer=True),
                         cgroup=s.string("cgroup"), listen=listen, metrics_url=metrics_url,
                         sample_locust=s.boolean("sample_locust", True))


def _parse_slo(raw: object) -> SloConfig:
    s = _Section(raw, "slo", ("ttft_p95_ms", "e2e_p95_ms", "error_rate", "memory_warn_bytes",
                              "memory_limit_bytes", "fail_on_leak"))
    warn, limit = s.size("memory_warn_bytes"), s.size("memory_limit_bytes")
    if warn is not None and limit is not None and warn > limit:
        raise _Fail("slo.memory_warn_bytes", f"must be <= memory_limit_bytes (got {warn} > {limit})")
    return SloConfig(ttft_p95_ms=s.number("ttft_p95_ms", None, above=0),
                     e2e_p95_ms=s.number("e2e_p95_ms", None, above=0),
                     error_rate=s.number("error_rate", None, minimum=0, maximum=1),
                     memory_warn_bytes=warn, memory_limit_bytes=limit,
                     fail_on_leak=s.boolean("fail_on_leak", True))


# ----------------------------------------------------------------------------- entry points

def profile_from_dict(raw: object, *, source: str | os.PathLike | None = None,
                      base_dir: Path | None = None) -> Profile:
    """Validate an already-parsed profile mapping; errors name ``source`` (or ``<profile>``)."""
    label = str(source) if source is not None else "<profile>"
    base = base_dir or (Path(source).parent if source is not None else Path.cwd())
    try:
        top = _Section(raw, "", _TOP)
        name = top.string("name", Path(source).stem if source is not None else "profile")
        if not re.match(r"^[\w.-]{1,64}$", name):
            raise _Fail("name", f"use letters, digits, '.', '-' and '_' (got {name!r})")
        return Profile(
            name=name, description=top.string("description", ""),
            target=_parse_target(top.raw.get("target")), patterns=_parse_patterns(top.raw.get("patterns")),
            prompts=_parse_prompts(top.raw.get("prompts"), base), load=_parse_load(top.raw.get("load")),
            run=_parse_run(top.raw.get("run"), base), sampler=_parse_sampler(top.raw.get("sampler")),
            slo=_parse_slo(top.raw.get("slo")),
            source_path=Path(source) if source is not None else None)
    except _Fail as err:
        where = f"{label}: {err.path}: " if err.path else f"{label}: "
        raise ProfileError(where + err.message) from None


def load_profile(path: str | os.PathLike, overrides: Mapping[str, Any] | None = None) -> Profile:
    """Read, merge ``overrides`` into, and validate the profile at ``path``.

    ``overrides`` is a nested mapping, or dotted keys (``{"target.url": "http://..."}``), applied
    on top of the file before validation. Raises ProfileError naming file, field path and problem.
    """
    path = Path(path)
    raw = _read_yaml(path)
    if overrides:
        if not isinstance(raw, dict):
            raw = {} if raw is None else raw
        raw = _merge(raw, _expand_dotted(overrides)) if isinstance(raw, dict) else raw
    return profile_from_dict(raw, source=path, base_dir=path.parent)


def validate_profile_file(path: str | os.PathLike) -> Profile:
    """Same as :func:`load_profile`; named for callers that only want the check."""
    return load_profile(path)


def _expand_dotted(overrides: Mapping[str, Any]) -> dict:
    out: dict = {}
    for key, value in overrides.items():
        parts = str(key).split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _merge(base: dict, extra: Mapping) -> dict:
    """Deep merge; distributions and chat bodies are replaced whole, not merged."""
    out = dict(base)
    for key, value in extra.items():
        whole = key in _DIST_SECONDS or key in _DIST_COUNTS or key == "body"
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and not whole:
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> Any:
    import yaml  # imported here so `llmsoak --help` stays fast

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such profile file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ProfileError(f"{path}: cannot read: {getattr(err, 'strerror', None) or err}") from None

    class _StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
        seen: dict = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                raise _Fail(f"line {key_node.start_mark.line + 1}", f"duplicate key {key!r}")
            seen[key] = True
        return loader.construct_mapping(node)

    _StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _Fail as err:
        raise ProfileError(f"{path}: {err.path}: {err.message}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ProfileError(f"{path}: {where}not valid YAML: {problem}") from None
    if data is None:
        raise ProfileError(f"{path}: empty profile (expected a mapping with at least target.url)")
    return data


if __name__ == "__main__":  # pragma: no cover - convenience: python -m llmsoak.profile check FILE
    try:
        for arg in sys.argv[1:]:
            if arg != "check":
                print(f"{arg}: ok ({load_profile(arg).name})")
    except ProfileError as exc:
        print(exc, file=sys.stderr)
        sys.exit(exc.exit_code)
