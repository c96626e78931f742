"""What a run needs from the profile, plus the command line's overrides, validated once.

The profile itself is loaded and validated by :func:`llmsoak.profile.load_profile`; this module
only picks the fields the orchestrator uses (target command and URL, run duration, workers,
checkpoint interval, sampler settings, SLOs) into one frozen :class:`RunSettings`.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from llmsoak.errors import EXIT_BAD_INPUT, CommandError
from llmsoak.profile import load_profile
from llmsoak.units import parse_size, parse_timespan

DEFAULT_CHECKPOINT_INTERVAL_S = 3600.0
DEFAULT_READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Slo:
    """SLO gate thresholds; None = not checked. Latency in ms, memory in bytes, error_rate 0..1."""

    ttft_p95_ms: float | None = None
    error_rate: float | None = None
    memory_warn_bytes: int | None = None
    memory_limit_bytes: int | None = None
    fail_on_leak: bool = False


@dataclass(frozen=True)
class RunSettings:
    """Everything the orchestrator reads from the profile, after command-line overrides."""

    profile_path: Path
    profile_name: str
    target_url: str
    target_flavour: str
    target_command: tuple[str, ...] | None
    ready_timeout_s: float
    api_key_env: str | None
    duration_s: float
    workers: int
    checkpoint_interval_s: float
    sampler_interval_s: float
    sampler_selector: str | None
    sample_locust: bool
    slo: Slo = field(default_factory=Slo)


def _get(obj, *names, default=None):
    """First present, non-None attribute (or mapping key) among ``names``."""
    for name in names:
        if obj is None:
            return default
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is not None:
            return value
    return default


def _seconds(value, what: str, source: str) -> float:
    try:
        return parse_timespan(value)
    except ValueError as err:
        raise CommandError(f"{source}: {what}: {err}", EXIT_BAD_INPUT) from err


def _bytes(value, what: str, source: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as err:
        raise CommandError(f"{source}: {what}: {err}", EXIT_BAD_INPUT) from err


PORT_PLACEHOLDER = "{port}"


def _placeholder_overrides(path: Path) -> dict:
    """``{port}`` in target.url / target.command → one free port, the same in both (the demo's
    profiles use it so two reference targets never collide)."""
    import yaml

    from llmsoak.run.processes import free_port  # psutil loads only for a profile with {port}

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}  # load_profile reports it properly
    target = raw.get("target") if isinstance(raw, dict) else None
    if not isinstance(target, dict) or PORT_PLACEHOLDER not in str(target.get("url", "")):
        return {}
    port = str(free_port())
    out = {"target.url": str(target["url"]).replace(PORT_PLACEHOLDER, port)}
    command = target.get("command")
    if isinstance(command, str):
        out["target.command"] = command.replace(PORT_PLACEHOLDER, port)
    elif isinstance(command, list):
        out["target.command"] = [str(part).replace(PORT_PLACEHOLDER, port) for part in command]
    return out


def load(profile_path: str | Path, overrides: dict | None = None) -> tuple[object, RunSettings]:
    """Load the profile (``llmsoak.profile.load_profile``) and build the run's settings.

    ``overrides``: dotted profile keys from the command line (``{"run.duration": "20s"}``); they
    win over the file. ``{port}`` in target.url and target.command becomes a free port.
    """
    path = Path(profile_path)
    if not path.is_file():
        raise CommandError(f"--profile {path}: no such file", EXIT_BAD_INPUT)
    merged = {**_placeholder_overrides(path), **(overrides or {})}
    profile = load_profile(path, merged or None)
    return profile, settings_from_profile(profile, path, {})


def settings_from_profile(profile, path: Path, overrides: dict) -> RunSettings:
    source = str(path)
    target = _get(profile, "target")
    run = _get(profile, "run")
    sampler = _get(profile, "sampler")
    slo = _get(profile, "slo")

    url = _get(target, "url")
    if not url:
        raise CommandError(f"{source}: target.url: missing", EXIT_BAD_INPUT)
    command = _get(target, "command")
    if isinstance(command, str):
        command = tuple(shlex.split(command)) or None
    elif command is not None:
        command = tuple(str(part) for part in command) or None

    duration = overrides.get("duration") or _get(run, "duration_s", "duration")
    load = _get(profile, "load")
    if duration is None and _get(load, "shape") == "steps" and _get(load, "steps"):
        # A steps shape ends after its last step: that is the run's length (profiles/stress.yaml).
        duration = sum(float(_get(step, "duration_s", "duration") or 0) for step in _get(load, "steps"))
    if duration is None:
        raise CommandError(f"{source}: run.duration: missing (or give --duration)", EXIT_BAD_INPUT)
    duration_s = _seconds(duration, "run.duration", source)
    if duration_s <= 0:
        raise CommandError(f"{source}: run.duration: must be more than 0", EXIT_BAD_INPUT)
    interval = (overrides.get("checkpoint_interval")
                or _get(run, "checkpoint_interval_s", "checkpoint_interval")
                or DEFAULT_CHECKPOINT_INTERVAL_S)
    checkpoint_interval_s = _seconds(interval, "run.checkpoint_interval", source)
    if checkpoint_interval_s <= 0:
        raise CommandError(f"{source}: run.checkpoint_interval: must be more than 0", EXIT_BAD_INPUT)

    workers = overrides.get("workers") or _get(run, "workers")
    if workers in (None, "auto", -1):
        workers = os.cpu_count() or 1
    try:
        workers = int(workers)
    except (TypeError, ValueError):
        raise CommandError(f"{source}: run.workers: not a number: {workers!r}", EXIT_BAD_INPUT) from None
    if workers < 0:
        raise CommandError(f"{source}: run.workers: must be 0 or more", EXIT_BAD_INPUT)

    return RunSettings(
        profile_path=path.resolve(),
        profile_name=str(_get(profile, "name", default=path.stem)),
        target_url=str(url).rstrip("/"),
        target_flavour=str(_get(target, "flavour", "flavor", default="openai")),
        target_command=command,
        ready_timeout_s=_seconds(_get(target, "ready_timeout_s", default=DEFAULT_READY_TIMEOUT_S),
                                 "target.ready_timeout_s", source),
        api_key_env=_get(target, "api_key_env"),
        duration_s=duration_s,
        workers=workers,
        checkpoint_interval_s=checkpoint_interval_s,
        sampler_interval_s=_seconds(_get(sampler, "interval_s", "interval", default=1.0),
                                    "sampler.interval_s", source),
        sampler_selector=_get(sampler, "selector"),
        sample_locust=bool(_get(sampler, "sample_locust", default=True)),
        slo=Slo(
            ttft_p95_ms=_get(slo, "ttft_p95_ms"),
            error_rate=_get(slo, "error_rate"),
            memory_warn_bytes=_bytes(_get(slo, "memory_warn_bytes", "memory_warn"), "slo.memory_warn_bytes", source),
            memory_limit_bytes=_bytes(_get(slo, "memory_limit_bytes", "memory_limit"), "slo.memory_limit_bytes", source),
            fail_on_leak=bool(_get(slo, "fail_on_leak", default=False)),
        ),
    )
