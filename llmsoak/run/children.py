"""Command lines of a run's children: the target, the two samplers, Locust (master + workers).

Secrets never appear here: the API key reaches Locust through the inherited environment only,
and the manifest records argv, never env.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from llmsoak.run import remote_workers
from llmsoak.run.processes import Child, free_port
from llmsoak.run.settings import RunSettings
from llmsoak.rundir import LOCUST_CSV_PREFIX, LOCUST_SEGMENT_REPORT, RunDir

REPO_LOCUSTFILE = Path(__file__).resolve().parents[2] / "locustfiles" / "llm_chat.py"
"""The Locust entry point shipped with llmsoak (a source checkout)."""

LOCUST_RUN_TIME_SLACK_S = 120
"""Locust's own --run-time is the run's remaining time plus this, a safety net: the orchestrator
stops Locust itself at the end, but a Locust whose orchestrator was killed still ends."""


def child_env(run: RunDir, extra: dict | None = None) -> dict:
    """The children's environment: ours (API keys included), the venv's bin first on PATH, the run
    directory (Locust's llm_timeseries.csv goes there) and its events.csv (the load shape's events)."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env["LLMSOAK_RUN_DIR"] = str(run.root)
    env["LLMSOAK_EVENTS"] = str(run.events)
    env.update(extra or {})
    return env


def target_child(settings: RunSettings, run: RunDir) -> Child:
    assert settings.target_command
    return Child("target", list(settings.target_command), run.logs / "target.log", env=child_env(run))


def readiness_url(settings: RunSettings) -> str:
    """A GET that any healthy server of the profile's flavour answers without side effects."""
    path = {"ollama": "/api/tags", "chat": "/"}.get(settings.target_flavour, "/v1/models")
    base = settings.target_url
    for suffix in ("/v1", "/api"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base + path


def target_host_port(settings: RunSettings) -> tuple[str, int]:
    parts = urlsplit(settings.target_url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def _sampler_argv(selector: list[str], out: Path, name: str, settings: RunSettings,
                  listen: str | None = "127.0.0.1:0") -> list[str]:
    argv = [sys.executable, "-m", "llmsoak", "sample", *selector, "--out", str(out),
            "--name", name, "--interval", f"{settings.sampler_interval_s:g}"]
    return argv + ["--listen", listen] if listen else argv


def target_selector(settings: RunSettings, target_pid: int | None) -> list[str]:
    """How the target's sampler finds it: our child's pid, else the profile's selector, else the port."""
    if target_pid:
        return ["--pid", str(target_pid)]
    sel = settings.sampler_selector
    if sel:
        kind, _, value = str(sel).partition(":")
        if kind in ("pid", "match", "port", "cgroup") and value:
            return [f"--{kind}", value]
        return ["--match", str(sel)]
    host, port = target_host_port(settings)
    return ["--port", str(port)]


def target_sampler_child(settings: RunSettings, run: RunDir, target_pid: int | None) -> Child:
    """The target's sampler; with ``sampler.metrics_url`` it also records the server's own gauges
    (KV cache, queue, preemptions) into ``samples/server_metrics.csv`` on its clock."""
    argv = _sampler_argv(target_selector(settings, target_pid), run.target_samples, "target", settings,
                         settings.sampler_listen)
    if settings.metrics_url:
        argv += ["--metrics-url", settings.metrics_url, "--metrics-out", str(run.server_metrics),
                 "--metrics-format", "server"]
    return Child("sampler_target", argv, run.logs / "sampler-target.log", env=child_env(run))


def locust_sampler_child(settings: RunSettings, run: RunDir, locust_pid: int) -> Child:
    argv = _sampler_argv(["--pid", str(locust_pid)], run.locust_samples, "locust", settings)
    return Child("sampler_locust", argv, run.logs / "sampler-locust.log", env=child_env(run))


def locustfile() -> Path:
    """``$LLMSOAK_LOCUSTFILE`` (your own, accepting ``--profile`` and ``--llm-timeseries``) or llmsoak's."""
    return Path(os.environ.get("LLMSOAK_LOCUSTFILE") or REPO_LOCUSTFILE)


def locust_child(settings: RunSettings, run: RunDir, segment: int, remaining_s: float) -> Child:
    """Locust headless, ``settings.workers`` local worker processes (0: one process) or a master of
    ``settings.remote_workers`` remote ones, segment files
    under ``locust/seg-NNN/``, the per-minute LLM series appended to ``RUN/llm_timeseries.csv``."""
    seg_dir = run.segment_dir(segment)
    seg_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "locust", "-f", str(locustfile()), "--profile", str(run.profile),
            "--headless", "--host", settings.target_url,
            "--run-time", f"{int(remaining_s + LOCUST_RUN_TIME_SLACK_S)}s",
            "--csv", str(seg_dir / LOCUST_CSV_PREFIX), "--html", str(seg_dir / LOCUST_SEGMENT_REPORT),
            "--llm-timeseries", str(run.llm_timeseries), "--exit-code-on-error", "0",
            # let users finish the request in flight at the end, so Locust counts what the target served
            "--stop-timeout", "30"]
    extra_env = None
    if settings.remote_workers > 0:
        # a master only: its users run on the remote `llmsoak worker`s (llmsoak.run.remote_workers)
        argv += remote_workers.master_args(settings)
        extra_env = remote_workers.master_env(settings)
    elif settings.workers > 0:
        # Locust's master binds *:5557 by default: keep it on loopback, on a port of its own, so two
        # runs on one machine don't collide and nothing listens beyond this host.
        port = str(free_port())
        argv += ["--processes", str(settings.workers), "--master-bind-host", "127.0.0.1",
                 "--master-bind-port", port, "--master-port", port]
    return Child("locust", argv, run.logs / "locust.log", env=child_env(run, extra_env))
