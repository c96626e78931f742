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
from urllib.parse import urlsplit

from llmsoak.errors import EXIT_BAD_INPUT, CommandError
from llmsoak.profile import Profile, SloConfig, load_profile
from llmsoak.run.processes import free_port
from llmsoak.run.remote_workers import check_master_bind

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
    sampler_listen: str | None = "127.0.0.1:0"
    """``sampler.listen``: where the target's sampler serves its live endpoint; None = it does not."""
    metrics_url: str | None = None
    """The target's Prometheus /metrics, absolute (``sampler.metrics_url``, a path resolved against
    the target's URL); the target's sampler scrapes it into ``samples/server_metrics.csv``."""
    remote_workers: int = 0
    """Remote workers (``llmsoak worker``) the master waits for; 0 = local workers only."""
    master_bind: str = "127.0.0.1:5557"
    """``HOST:PORT`` the master listens on for remote workers."""
    workers_timeout_s: float = 300.0
    """Wall seconds to wait for ``remote_workers`` before the run fails."""
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


def resolve_metrics_url(metrics_url: str | None, target_url: str) -> str | None:
    """``sampler.metrics_url`` as an absolute URL: ``/metrics`` → ``http://HOST:PORT/metrics`` of
    ``target_url`` (its path, such as ``/v1``, dropped)."""
    if not metrics_url or not metrics_url.startswith("/"):
        return metrics_url
    parts = urlsplit(target_url)
    return f"{parts.scheme}://{parts.netloc}{metrics_url}"


def settings_from_profile(profile: Profile, path: Path) -> RunSettings:
    """The run's settings from a validated ``profile`` loaded from ``path``."""
    source = str(path)
    target, run, sampler = profile.target, profile.run, profile.sampler
    command = target.command
    if isinstance(command, str):
        command = tuple(shlex.split(command)) or None
    elif command is not None:
        command = tuple(command) or None
    if run.remote_workers:
        check_master_bind(run.master_bind, source)
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
        sampler_listen=sampler.listen,
        metrics_url=resolve_metrics_url(sampler.metrics_url, target.url),
        remote_workers=run.remote_workers,
        master_bind=run.master_bind,
        workers_timeout_s=run.workers_timeout_s,
        sampler_remote=sampler.remote.rstrip("/") if sampler.remote else None,
        sampler_token_env=sampler.token_env or "LLMSOAK_SAMPLER_TOKEN",
    )
