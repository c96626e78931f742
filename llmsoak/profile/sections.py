"""The profile schema, section by section: a parsed YAML mapping → a validated :class:`Profile`.

One ``_parse_<section>`` per top-level key (target, patterns, prompts, load, run, sampler, slo),
each reading through :class:`~llmsoak.profile.fields._Section` so a mistake is reported with its
field path; :func:`profile_from_dict` runs them all and turns the first mistake into one
:class:`ProfileError` line ``FILE: FIELD.PATH: problem``. Defaults live here and in
``llmsoak.profile.patterns`` (the built-in patterns).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmsoak.profile.distributions import Distribution
from llmsoak.profile.fields import _Fail, _kind, _Section
from llmsoak.profile.model import (
    ARRIVAL_DISTRIBUTIONS,
    CHAT_STREAMS,
    ENDPOINTS,
    FLAVOURS,
    PROMPT_SOURCES,
    SHAPES,
    WEEKDAYS,
    ArrivalsConfig,
    CapacityConfig,
    ChatApi,
    DiurnalConfig,
    EndSession,
    LoadConfig,
    Profile,
    ProfileError,
    PromptsConfig,
    RampConfig,
    RunConfig,
    SamplerConfig,
    SloConfig,
    SpikeConfig,
    StepConfig,
    Target,
)
from llmsoak.profile.patterns import BUILTIN_NAMES, BUILTIN_PATTERNS, PatternSpec

# Header names whose values are credentials: refused as literals, allowed through headers_env.
_SECRET_HEADERS = {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"}
_PATTERN_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_TOP = ("name", "description", "target", "patterns", "prompts", "load", "run", "sampler", "slo", "capacity", "arrivals")
_TARGET = ("url", "flavour", "endpoint", "model", "api_key_env", "headers", "headers_env", "stream",
           "timeout_s", "connect_timeout_s", "chat", "command", "ready_timeout_s", "context_tokens")
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
        chat=chat, command=command, ready_timeout_s=s.timespan("ready_timeout_s", 60.0, above=0),
        context_tokens=s.number("context_tokens", None, minimum=16, integer=True))


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
    s = _Section(raw, "prompts", ("source", "path", "system_prompt"))
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
    return PromptsConfig(source=source, path=path, system_prompt=s.string("system_prompt"))


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
    s = _Section(raw, "run", ("duration", "workers", "checkpoint_interval", "events_path", "seed",
                              "remote_workers", "master_bind", "workers_timeout"))
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
                     events_path=events_path, seed=s.number("seed", None, integer=True),
                     remote_workers=s.number("remote_workers", 0, minimum=0, maximum=1024, integer=True),
                     master_bind=_host_port(s, "master_bind", "127.0.0.1:5557"),
                     workers_timeout_s=s.timespan("workers_timeout", 300.0, above=0))


_HOST_PORT_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


def _host_port(s: _Section, key: str, default: str) -> str:
    """``HOST:PORT`` (port 1-65535; an IPv6 host in brackets)."""
    value = s.string(key, default)
    m = _HOST_PORT_RE.match(str(value).strip())
    if not m or not 0 < int(m.group(2)) < 65536:
        raise _Fail(s.sub(key), f"expected HOST:PORT, e.g. 127.0.0.1:5557, got {value!r}")
    return str(value).strip()


def _fail_workers(value: str) -> int:
    raise _Fail("run.workers", f"expected auto or a number of processes, got {value!r}")


def _parse_sampler(raw: object) -> SamplerConfig:
    s = _Section(raw, "sampler", ("interval_s", "match", "pid", "port", "cgroup", "listen", "metrics_url",
                                  "sample_locust", "remote", "token_env"))
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
    # a path (/metrics) is on the target's own server: the profile keeps working when only target.url changes
    if metrics_url is not None and not (_URL_RE.match(metrics_url) or re.match(r"^/\S*$", metrics_url)):
        raise _Fail("sampler.metrics_url", f"expected http://HOST:PORT/metrics or a path on the target "
                    f"like /metrics, got {metrics_url!r}")
    remote = s.string("remote")
    if remote is not None and not _URL_RE.match(remote):
        raise _Fail("sampler.remote", f"expected http://HOST:PORT of `llmsoak sample --listen`, got {remote!r}")
    if remote is not None:
        # the remote sampler chooses its own target and scrapes on its host: these would do nothing
        for key in ("match", "pid", "port", "cgroup", "metrics_url"):
            if s.has(key):
                raise _Fail(f"sampler.{key}", "has no effect with sampler.remote (give it to "
                                              "`llmsoak sample` on the target's host)")
    token_env = s.env_name(s.raw["token_env"], "sampler.token_env") if s.has("token_env") else None
    if token_env is not None and remote is None:
        raise _Fail("sampler.token_env", "only used with sampler.remote")
    return SamplerConfig(interval_s=s.timespan("interval_s", 1.0, above=0), match=match,
                         pid=s.number("pid", None, minimum=1, integer=True),
                         port=s.number("port", None, minimum=1, maximum=65535, integer=True),
                         cgroup=s.string("cgroup"), listen=listen, metrics_url=metrics_url,
                         sample_locust=s.boolean("sample_locust", True), remote=remote,
                         token_env=token_env)


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


def _parse_capacity(raw: object) -> CapacityConfig | None:
    """The ``capacity`` section (llmsoak capacity, docs/capacity.md); None when absent."""
    if raw is None:
        return None
    s = _Section(raw, "capacity", tuple(f.name for f in dataclasses.fields(CapacityConfig)))
    distribution = s.string("distribution", "poisson", ARRIVAL_DISTRIBUTIONS)
    if s.has("burstiness") and distribution != "gamma":
        raise _Fail("capacity.burstiness", f"only used with distribution: gamma (got {distribution})")
    raw_rates = s.get("rates", [])
    if not isinstance(raw_rates, list):
        raise _Fail("capacity.rates", f"expected a list of requests per second, got {_kind(raw_rates)}")
    rates = []
    for i, rate in enumerate(raw_rates):
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise _Fail(f"capacity.rates[{i}]", f"expected a number of requests per second, got {rate!r}")
        if not rate > 0:
            raise _Fail(f"capacity.rates[{i}]", f"must be > 0 requests per second (got {rate:g})")
        rates.append(float(rate))
    steps = s.number("steps", 5, integer=True)
    if steps < 2:
        raise _Fail("capacity.steps", f"a sweep needs at least 2 steps (got {steps})")
    if rates and len(rates) < 2:
        raise _Fail("capacity.rates", f"a sweep needs at least 2 rates (got {len(rates)})")
    target_rate = s.raw.get("target_rate")
    if target_rate is not None and not isinstance(target_rate, bool) and isinstance(target_rate, (int, float)) \
            and target_rate <= 0:
        raise _Fail("capacity.target_rate", f"must be > 0 requests per second (got {target_rate:g})")
    return CapacityConfig(
        distribution=distribution, burstiness=s.number("burstiness", 1.0, above=0),
        max_in_flight=s.number("max_in_flight", 256, minimum=1, maximum=100_000, integer=True),
        max_lag_s=s.timespan("max_lag_s", 1.0, above=0), steps=steps, rates=tuple(sorted(rates)),
        warmup_s=s.timespan("warmup_s", 5.0), measure_s=s.timespan("measure_s", 20.0, above=0),
        drain_s=s.timespan("drain_s", 30.0), refine=s.number("refine", 2, minimum=0, maximum=10, integer=True),
        users=s.boolean("users", True), max_users=s.number("max_users", None, minimum=1, integer=True),
        user_iterations=s.number("user_iterations", 5, minimum=1, maximum=20, integer=True),
        target_rate=s.number("target_rate", None, above=0),
        target_users=s.number("target_users", None, minimum=1, integer=True))


def _parse_arrivals(raw: object) -> ArrivalsConfig | None:
    """The ``arrivals`` section (open-loop load of a run, docs/profiles.md); None when absent."""
    if raw is None:
        return None
    s = _Section(raw, "arrivals", tuple(f.name for f in dataclasses.fields(ArrivalsConfig)))
    if not s.has("rate"):
        raise _Fail("arrivals.rate", "required: requests per second for the whole run")
    rate = s.raw.get("rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise _Fail("arrivals.rate", f"expected a number of requests per second, got {rate!r}")
    if not 0 < rate < float("inf"):
        raise _Fail("arrivals.rate", f"must be > 0 requests per second (got {rate:g})")
    distribution = s.string("distribution", "poisson", ARRIVAL_DISTRIBUTIONS)
    if s.has("burstiness") and distribution != "gamma":
        raise _Fail("arrivals.burstiness", f"only used with distribution: gamma (got {distribution})")
    return ArrivalsConfig(
        rate=float(rate), distribution=distribution, burstiness=s.number("burstiness", 1.0, above=0),
        max_in_flight=s.number("max_in_flight", 64, minimum=1, maximum=100_000, integer=True),
        max_lag_s=s.timespan("max_lag_s", 1.0, above=0))


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
            slo=_parse_slo(top.raw.get("slo")), capacity=_parse_capacity(top.raw.get("capacity")),
            arrivals=_parse_arrivals(top.raw.get("arrivals")),
            source_path=Path(source) if source is not None else None)
    except _Fail as err:
        where = f"{label}: {err.path}: " if err.path else f"{label}: "
        raise ProfileError(where + err.message) from None

