"""Real processes for the tests: started on 127.0.0.1 with port 0, output drained, always stoppable.

Contract relied on here (docs/stub.md): ``llmsoak stub --port 0`` prints a line
``... listening on http://HOST:PORT`` on stdout once it accepts connections.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_LISTEN_RE = re.compile(r"listening on (http://[\w.\[\]:-]+)")


@dataclass
class RunningProcess:
    """A child process started by a test, with its stdout lines collected in the background."""

    proc: subprocess.Popen
    url: str | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def get_json(self, path: str, timeout: float = 10.0) -> dict:
        assert self.url, "process did not announce a URL"
        with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
            return json.loads(resp.read())

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode


def spawn(args: list[str], *, wait_for_url: bool = True, timeout: float = 30.0,
          env: dict | None = None, cwd: Path | None = None) -> RunningProcess:
    """Start ``args`` (stdout+stderr piped and drained), wait for its 'listening on URL' line."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=full_env, cwd=cwd or REPO)
    running = RunningProcess(proc)
    found = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if len(running.lines) < 10_000:
                running.lines.append(line.rstrip("\n"))
            if running.url is None and (m := _LISTEN_RE.search(line)):
                running.url = m.group(1).rstrip("/")
                found.set()
        found.set()

    threading.Thread(target=drain, daemon=True).start()
    if wait_for_url:
        if not found.wait(timeout) or running.url is None:
            running.stop()
            raise RuntimeError(f"{args} did not announce a URL:\n" + "\n".join(running.lines[-30:]))
    return running


def local_master_args(processes: int = 2) -> list[str]:
    """``--processes N`` with the master bound to loopback on a free port (Locust's default is *:5557,
    which collides between concurrent runs)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    return ["--processes", str(processes), "--master-bind-host", "127.0.0.1",
            "--master-bind-port", port, "--master-port", port]


def llmsoak_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmsoak", *args]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until truthy; return its value or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
