"""``llmsoak run`` as the master of remote workers: its Locust options, the wait, the summary.

With ``run.remote_workers: N`` the run's Locust is a master on ``run.master_bind`` (127.0.0.1:5557
unless told; another address needs ``LLMSOAK_WORKER_TOKEN``) that runs no users itself. Each
segment waits for N workers (``llmsoak worker --master HOST:PORT`` on the load machines) to join,
at most ``run.workers_timeout``; the segment's load time starts when they have. What the master
saw of them (llmsoak.locust.worker_join: joins, losses, refusals, the users shortfall) is
``RUN/workers.json``; :func:`summary` puts it in the run's result.
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
from pathlib import Path

from llmsoak.errors import EXIT_BAD_INPUT, EXIT_WORKERS_MISSING, CommandError
from llmsoak.locust.worker_auth import EXPECTED_ENV, TOKEN_ENV

POLL_S = 0.5
LOOPBACK_NAMES = ("localhost",)


def split_bind(bind: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (validated by the profile) → (host, port); ``[::1]:5557`` → ("::1", 5557)."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_master_bind(bind: str, source: str) -> None:
    """Off loopback the workers must prove a token: CommandError (exit 2) without one."""
    host, _ = split_bind(bind)
    if not is_loopback(host) and not os.environ.get(TOKEN_ENV):
        raise CommandError(f"{source}: run.master_bind {bind}: listening beyond this machine needs a worker "
                           f"token: set {TOKEN_ENV} (the same value on every worker), or bind 127.0.0.1",
                           EXIT_BAD_INPUT)


def master_args(settings) -> list[str]:
    """Locust's options for a master of ``settings.remote_workers`` remote workers."""
    host, port = split_bind(settings.master_bind)
    return ["--master", "--expect-workers", str(settings.remote_workers), "--master-bind-host", host,
            "--master-bind-port", str(port)]


def master_env(settings) -> dict:
    return {EXPECTED_ENV: str(settings.remote_workers)}


def read_state(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def wait_for_workers(run_dir, settings, locust, stopping, log, tick=None) -> bool:
    """Wait until ``settings.remote_workers`` workers have joined the master (per workers.json).

    True when they have; False when Locust died or ``stopping()`` (the caller's supervision takes
    over); CommandError (exit 6) when they did not come within ``settings.workers_timeout_s``.
    ``tick()`` is called on every poll (the orchestrator's heartbeat).
    """
    want, bind = settings.remote_workers, settings.master_bind
    started = time.monotonic()
    next_note = started + 10.0
    connected = 0
    while True:
        state = read_state(run_dir.workers)
        if state is not None and (state.get("updated_at") or 0) >= (locust.started_at or 0):
            connected = int(state.get("connected") or 0)
            if connected >= want:
                return True
        if stopping() or not locust.alive():
            return False
        now = time.monotonic()
        if now - started >= settings.workers_timeout_s:
            refused = int((state or {}).get("refused") or 0)
            why = f" ({refused} refused: see events.csv)" if refused else ""
            raise CommandError(
                f"{connected} of {want} remote worker(s) joined the master on {bind} within "
                f"{settings.workers_timeout_s:g} s{why}: start them with `llmsoak worker --master HOST:"
                f"{split_bind(bind)[1]}` (run.workers_timeout sets the wait)", EXIT_WORKERS_MISSING)
        if now >= next_note:
            log(f"waiting for remote workers on {bind}: {connected} of {want} joined")
            next_note = now + 30.0
        if tick is not None:
            tick()
        time.sleep(POLL_S)


def summary(run_dir) -> dict | None:
    """The run's remote-worker figures for run.json's result (None without remote workers)."""
    state = read_state(run_dir.workers)
    if state is None:
        return None
    keys = ("expected", "connected", "joined", "lost", "rejoined", "refused", "max_shortfall_users",
            "max_shortfall_at")
    return {k: state.get(k) for k in keys}


def summary_line(figures: dict) -> str:
    """``remote workers: 2 expected, 1 lost, 1 rejoined, 0 refused; users short by up to 5``."""
    short = figures.get("max_shortfall_users") or 0
    return (f"remote workers: {figures.get('expected')} expected, {figures.get('lost') or 0} lost, "
            f"{figures.get('rejoined') or 0} rejoined, {figures.get('refused') or 0} refused; "
            + (f"users short by up to {short} while workers were missing" if short else "no users shortfall"))
