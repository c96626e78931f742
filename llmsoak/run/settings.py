"""What a run needs from the profile, validated once into one frozen :class:`RunSettings`.

The profile itself is read and validated by :func:`llmsoak.profile.load_profile` (command-line
overrides included, ``{port}`` filled in); this module only derives what the orchestrator uses
from the typed :class:`~llmsoak.profile.Profile`: the target's command line, the run's length in
wall seconds, the number of workers, the sampler's settings and the SLOs.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from llmsoak.errors import EXIT_BAD_INPUT, CommandError
from llmsoak.profile import Profile, SloConfig, load_profile
from llmsoak.run.processes import free_port

PORT_PLACEHOLDER = "port"
"""``{port}`` in target.url and target.command becomes one free port, the same in both (the
demo's profiles use it so two reference targets never collide)."""


@dataclass(frozen=True)
class RunSettings:
    """Everything the orchestrator reads from the profile (seconds for times)."""

    profile_path: Path
    profile_name: str
    target_url: str
    target_flavour: str
    target_command: tuple[str, ...] | None
    """Arguments of the command that starts the target; None when it is already running."""
    ready_timeout_s: float
    api_key_env: str | None
    duration_s: float
    """Wall seconds of load (the sum of the segments' lengths)."""
    workers: int
    """Local Locust worker processes; 0 = one process (no master/worker)."""
    checkpoint_interval_s: float
    sampler_interval_s: float
    sampler_selector: str | None
    """``"pid:812"``, ``"match:REGEX"``, ``"port:8000"``, ``"cgroup:PATH"``; None = the started target."""
    sample_locust: bool
    slo: SloConfig = field(default_factory=SloConfig)
    sampler_remote: str | None = None
    """``http://HOST:PORT`` of a remote ``llmsoak sample --listen`` to pull rows from; None = local."""
    sampler_token_env: str = "LLMSOAK_SAMPLER_TOKEN"
    """Environment variable holding that sampler's token (the name only; the value stays in env)."""


def load(profile_path: str | Path, overrides: dict | None = None) -> tuple[Profile, RunSettings]:
    """Load the profile and build the run's settings; CommandError (exit 2) naming what is wrong.

    ``overrides``: dotted profile keys from the command line (``{"run.duration": "20s"}``); they
    win over the file. ``{port}`` in target.url and target.command becomes a free port.
    """
    path = Path(profile_path)
    if not path.is_file():
        raise CommandError(f"--profile {path}: no such file", EXIT_BAD_INPUT)
    profile = load_profile(path, overrides or None, placeholders={PORT_PLACEHOLDER: str(free_port())})
    return profile, settings_from_profile(profile, path)


def run_duration_s(profile: Profile) -> float | None:
    """``run.duration``; without it a steps shape's length (it ends after its last step), in wall
    seconds (scenario seconds / ``load.time_scale``); else None."""
    if profile.run.duration_s is not None:
        return profile.run.duration_s
    load_config = profile.load
    if load_config.shape == "steps" and load_config.steps:
        return sum(step.duration_s for step in load_config.steps) / load_config.time_scale
    return None


def settings_from_profile(profile: Profile, path: Path) -> RunSettings:
    """The run's settings from a validated ``profile`` loaded from ``path``."""
    source = str(path)
    target, run, sampler = profile.target, profile.run, profile.sampler
    command = target.command
    if isinstance(command, str):
        command = tuple(shlex.split(command)) or None
    elif command is not None:
        command = tuple(command) or None
    duration_s = run_duration_s(profile)
    if duration_s is None:
        raise CommandError(f"{source}: run.duration: missing (or give --duration)", EXIT_BAD_INPUT)
    return RunSettings(
        profile_path=path.resolve(),
        profile_name=profile.name,
        target_url=target.url.rstrip("/"),
        target_flavour=target.flavour,
        target_command=command,
        ready_timeout_s=target.ready_timeout_s,
        api_key_env=target.api_key_env,
        duration_s=duration_s,
        workers=(os.cpu_count() or 1) if run.workers is None else run.workers,
        checkpoint_interval_s=run.checkpoint_interval_s,
        sampler_interval_s=sampler.interval_s,
        sampler_selector=sampler.selector,
        sample_locust=sampler.sample_locust,
        slo=profile.slo,
        sampler_remote=sampler.remote.rstrip("/") if sampler.remote else None,
        sampler_token_env=sampler.token_env or "LLMSOAK_SAMPLER_TOKEN",
    )
