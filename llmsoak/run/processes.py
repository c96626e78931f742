"""Child processes of a run: start in their own process group, poll readiness, restart with
backoff, stop in order, so that nothing is left orphaned.

Each child writes stdout+stderr straight into ``logs/<name>.log`` (not through a pipe): if the
orchestrator itself is killed, its children keep running instead of dying on a broken pipe, and
``--resume`` can find them by pid. Logs are kept bounded by :func:`trim_log`.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from llmsoak.sampler.metrics_scrape import describe_failure, parse_prometheus_text

_LISTEN_RE = re.compile(rb"listening on (http://[\w.\[\]:-]+)")

LOG_CAP_BYTES = 20 * 2**20
"""A child's log is cut back to its last part when it grows past this (20 MiB)."""


@dataclass
class Backoff:
    """Restart delays 1 s, 2 s, 4 s … up to ``max_s``; back to 1 s after ``healthy_s`` of uptime."""

    max_s: float = 300.0
    healthy_s: float = 60.0
    failures: int = 0

    def delay_s(self, uptime_s: float) -> float:
        if uptime_s >= self.healthy_s:
            self.failures = 0
        delay = min(self.max_s, 2.0 ** self.failures)
        self.failures += 1
        return delay


@dataclass
class Child:
    """One supervised process: ``argv`` started with ``env`` in a new session, output to ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict | None = None
    cwd: Path | None = None
    proc: subprocess.Popen | None = None
    pid: int | None = None
    create_time: float | None = None
    started_at: float | None = None
    url: str | None = None
    backoff: Backoff = field(default_factory=Backoff)
    restart_at: float | None = None
    _log_offset: int = 0

    def start(self) -> Child:
        """Start the process (its own session/process group), output appended to the log."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=fd,
                                         stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                                         start_new_session=True)
        finally:
            os.close(fd)
        self.pid = self.proc.pid
        self.started_at = time.time()
        self.url = None
        self.restart_at = None
        try:
            self.create_time = psutil.Process(self.pid).create_time()
        except psutil.Error:
            self.create_time = None
        return self

    @classmethod
    def adopt(cls, name: str, argv: list[str], log_path: Path, pid: int, create_time: float | None,
              **kw) -> Child | None:
        """A handle on a process started by an earlier orchestrator, if it still runs (same start time)."""
        if not same_process(pid, create_time):
            return None
        child = cls(name, argv, log_path, **kw)
        child.pid, child.create_time, child.started_at = pid, create_time, time.time()
        return child

    def alive(self) -> bool:
        if self.pid is None:
            return False
        if self.proc is not None:
            return self.proc.poll() is None
        return same_process(self.pid, self.create_time)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    def uptime_s(self) -> float:
        return 0.0 if self.started_at is None else time.time() - self.started_at

    def announced_url(self) -> str | None:
        """The ``listening on http://…`` URL this start of the child printed in its log, if any."""
        if self.url:
            return self.url
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                data = fh.read(256 * 1024)
        except OSError:
            return None
        if m := _LISTEN_RE.search(data):
            self.url = m.group(1).decode().rstrip("/")
        return self.url

    def wait_url(self, timeout_s: float) -> str | None:
        """Poll the log for the announced URL (bounded by ``timeout_s``); None if it never came."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if url := self.announced_url():
                return url
            if not self.alive():
                return None
            time.sleep(0.1)
        return None

    def send(self, sig: int, group: bool = True) -> None:
        """Send ``sig`` to the child's process group (or only the child)."""
        if self.pid is None or not self.alive():
            return
        try:
            if group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout_s: float = 15.0, first_signal: int = signal.SIGTERM) -> int | None:
        """Stop the child: ``first_signal`` to it, wait, then SIGTERM/SIGKILL its whole group."""
        if self.pid is None:
            return None
        self.send(first_signal, group=first_signal == signal.SIGTERM)
        if not self._wait(timeout_s):
            self.send(signal.SIGTERM)
            if not self._wait(5.0):
                self.send(signal.SIGKILL)
                self._wait(5.0)
        kill_group(self.pid)  # leftovers of the group (workers, grandchildren)
        return self.returncode

    def _wait(self, timeout_s: float) -> bool:
        if self.proc is not None:
            try:
                self.proc.wait(timeout_s)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.1)
        return not self.alive()

    def record(self) -> dict:
        """What the manifest keeps about this child (no environment: it may hold secrets)."""
        out = {"pid": self.pid, "create_time": self.create_time, "argv": self.argv,
               "started_at": self.started_at}
        if self.url:
            out["url"] = self.url
        return out


def same_process(pid: int | None, create_time: float | None) -> bool:
    """True when ``pid`` runs and (if known) started at ``create_time`` (so a reused pid is not it)."""
    if not pid:
        return False
    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(proc.create_time() - float(create_time)) < 1.0
    except (psutil.Error, ValueError):
        return False


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal what is left of process group ``pgid`` (no error when it is gone)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_recorded(record: dict | None, timeout_s: float = 10.0) -> bool:
    """Stop a process listed in an old manifest if it still runs; True if one was stopped."""
    if not record or not same_process(record.get("pid"), record.get("create_time")):
        return False
    child = Child("old", [], Path(os.devnull))
    child.pid, child.create_time = int(record["pid"]), record.get("create_time")
    child.stop(timeout_s, first_signal=signal.SIGINT)
    return True


def url_answers(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``url`` gives any HTTP response (even 404): the server is up."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def metrics_url_problem(url: str, timeout_s: float = 5.0) -> str | None:
    """None when ``url`` answers 200 with Prometheus text, else why not, with the server's status:
    ``HTTP 404 Not Found``, ``no answer within 5 s``, ``[Errno 111] Connection refused``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = resp.read(1024 * 1024).decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError, ValueError) as err:
        return describe_failure(err, timeout_s)
    if next(iter(parse_prometheus_text(body)), None) is None:
        return "answered, but with no Prometheus metrics in its body"
    return None


def tcp_answers(host: str, port: int, timeout_s: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (bind to port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def trim_log(path: Path, cap_bytes: int = LOG_CAP_BYTES) -> bool:
    """Keep a child's log bounded: past ``cap_bytes``, copy its last half to ``<log>.1`` and empty it.

    Children write with O_APPEND, so after the truncation their next line lands at the new end.
    """
    try:
        size = path.stat().st_size
        if size <= cap_bytes:
            return False
        with open(path, "rb") as fh:
            fh.seek(size - cap_bytes // 2)
            tail = fh.read(cap_bytes // 2)
        Path(str(path) + ".1").write_bytes(tail)
        os.truncate(path, 0)
        return True
    except OSError:
        return False
