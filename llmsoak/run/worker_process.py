"""The loop behind ``llmsoak worker``: join the master, run a Locust worker on its profile, rejoin.

Each join fetches the profile afresh (llmsoak.locust.worker_join.fetch_profile), so a master
restarted with another profile gets workers running the new one. The Locust worker's output goes
to this process's stdout/stderr; the token stays in the environment (never an argument: argv is
visible to every user of the machine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llmsoak.errors import EXIT_BAD_INPUT, EXIT_TARGET_UNAVAILABLE, CommandError
from llmsoak.formatting import format_duration
from llmsoak.locust.worker_auth import MASTER_SHA_ENV, TOKEN_ENV
from llmsoak.locust.worker_join import JoinRefused, fetch_profile, write_payload
from llmsoak.run.children import locustfile

REJOIN_MAX_S = 30.0
"""Longest pause before joining again after the Locust worker ended (1 s, 2 s, 4 s … doubling)."""
HEALTHY_S = 60.0
"""A Locust worker that ran this long resets the pause to 1 s."""


class WorkerLoop:
    """``run()`` joins ``host:port`` until stopped (or once); returns the exit code."""

    def __init__(self, host: str, port: int, *, processes: int = 1, once: bool = False,
                 join_timeout_s: float = 0.0, quiet: bool = False) -> None:
        self.host, self.port = host, port
        self.processes = processes
        self.once = once
        self.join_timeout_s = join_timeout_s
        self.quiet = quiet
        self.proc: subprocess.Popen | None = None
        self.stopping = False

    def log(self, message: str) -> None:
        print(f"llmsoak worker: {message}", file=sys.stderr, flush=True)

    def _on_signal(self, signum, _frame) -> None:
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # Locust's worker tells the master it quits

    def _on_wait(self, elapsed_s: float) -> None:
        if not self.quiet and (elapsed_s < 70 or int(elapsed_s) % 600 < 10):
            self.log(f"waiting for the master at {self.host}:{self.port} ({format_duration(elapsed_s)} so far)")

    def join(self) -> dict:
        token = os.environ.get(TOKEN_ENV) or None
        try:
            return fetch_profile(self.host, self.port, token, self.join_timeout_s or None, on_wait=self._on_wait)
        except JoinRefused as err:
            raise CommandError(f"the master at {self.host}:{self.port} refused this worker: {err}",
                               EXIT_BAD_INPUT) from None
        except TimeoutError as err:
            raise CommandError(f"{err}: is `llmsoak run` with run.remote_workers running there, "
                               "and the port open?", EXIT_TARGET_UNAVAILABLE) from None

    def run_locust(self, reply: dict) -> int:
        with tempfile.TemporaryDirectory(prefix="llmsoak-worker-") as tmp:
            profile = write_payload(reply, Path(tmp))
            argv = [sys.executable, "-m", "locust", "-f", str(locustfile()), "--worker",
                    "--master-host", self.host, "--master-port", str(self.port), "--profile", str(profile)]
            if self.processes != 1:
                argv += ["--processes", str(self.processes)]
            env = {**os.environ, MASTER_SHA_ENV: reply["profile_sha256"], "PYTHONUNBUFFERED": "1"}
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
            self.log(f"joined the master at {self.host}:{self.port}: profile sha256 "
                     f"{reply['profile_sha256'][:12]}, Locust worker pid {self.proc.pid}")
            try:
                return self.proc.wait()
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        pause_s = 1.0
        while not self.stopping:
            reply = self.join()
            if self.stopping:
                break
            started = time.monotonic()
            code = self.run_locust(reply)
            if self.stopping:
                break
            if code == EXIT_BAD_INPUT:
                # the Locust worker printed its one line (an unset API-key variable, a bad prompt file)
                raise CommandError("this machine cannot run the master's profile (see the line above)",
                                   EXIT_BAD_INPUT)
            if self.once:
                return code
            if time.monotonic() - started >= HEALTHY_S:
                pause_s = 1.0
            self.log(f"the Locust worker ended (exit {code}); joining again in {pause_s:.0f} s")
            deadline = time.monotonic() + pause_s
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.2)
            pause_s = min(REJOIN_MAX_S, pause_s * 2)
        return 0
