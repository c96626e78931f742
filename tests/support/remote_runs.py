"""A master (``llmsoak run`` with remote workers) and its ``llmsoak worker``s as real processes.

Each process runs in its own session (so a test can kill a worker machine's whole tree at once),
its output collected to a file under the test's folder; :class:`Procs` stops them all at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.processes import REPO

from llmsoak.events import read_events


def write_remote_profile(path: Path, *, url: str, command: str | None = None, remote_workers: int = 2,
                         master_bind: str = "127.0.0.1:5557", duration: str = "40s",
                         workers_timeout: str = "60s", users: int = 4, sampler_match: str | None = None,
                         prompts_file: Path | None = None) -> Path:
    """A profile whose users stay busy (long sessions, short think times) on ``remote_workers``."""
    cmd = f"  command: {command}\n" if command else ""
    match = f", match: {json.dumps(sampler_match)}" if sampler_match else ""
    prompts = (f"prompts: {{source: jsonl, path: {prompts_file}}}\n" if prompts_file else "")
    path.write_text(f"""name: {path.stem}
target:
  url: {url}
{cmd}  ready_timeout_s: 30
  model: stub-model
  timeout_s: 10
patterns:
  active: {{users: {users}, think_time_s: {{uniform: [0.2, 0.4]}}, first_message_delay_s: 0,
            turns_per_session: 1000}}
{prompts}load: {{shape: constant, users: {users}, spawn_rate: {users}}}
run: {{duration: {duration}, checkpoint_interval: 1h, remote_workers: {remote_workers},
       master_bind: "{master_bind}", workers_timeout: {workers_timeout}}}
sampler: {{interval_s: 0.5, sample_locust: false{match}}}
slo: {{fail_on_leak: false}}
""")
    return path


class Procs:
    """Processes started by a test; ``stop_all()`` ends every one (and its session)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.folder / f"{name}.out", "ab")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                    **(env or {})}
        proc = subprocess.Popen(argv, cwd=REPO, env=full_env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        proc.name = name  # type: ignore[attr-defined]
        self.started.append(proc)
        return proc

    def output(self, name: str) -> str:
        try:
            return (self.folder / f"{name}.out").read_text(errors="replace")
        except OSError:
            return ""

    @staticmethod
    def kill_tree(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        """The process's whole session (a worker machine's ``llmsoak worker`` and its Locust)."""
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            pass

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            if proc.poll() is None:
                self.kill_tree(proc, signal.SIGTERM)
            self.kill_tree(proc, signal.SIGKILL)


def llmsoak_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmsoak", *args]


def worker_events(run_dir: Path) -> list[str]:
    return [e["detail"] for e in read_events(run_dir / "events.csv") if e["kind"] == "worker"]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
