"""Checkpoints: every N minutes of load, an interim verdict and 7-day projection of the target's
memory (``analysis/checkpoint.json``), the manifest updated, a ``checkpoint`` event.

The analysis runs as a subprocess (``llmsoak analyze --samples … --json …``): the orchestrator
stays small for a week (no pandas in it), and a slow or failing analysis cannot stall supervision.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from llmsoak.analysis.wording import verdict_line
from llmsoak.events import append_event
from llmsoak.run.manifest import read_json, write_json_atomic
from llmsoak.rundir import RunDir

ANALYSIS_TIMEOUT_S = 600.0


def interim_verdict(run: RunDir, timeout_s: float = ANALYSIS_TIMEOUT_S) -> tuple[dict | None, str]:
    """Analyse the target's samples so far; (verdict JSON or None, one-line note)."""
    if not run.target_samples.exists():
        return None, "no target samples yet"
    out = run.analysis / ".checkpoint-verdict.json"
    argv = [sys.executable, "-m", "llmsoak", "analyze", "--samples", str(run.target_samples),
            "--json", str(out)]
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout_s, cwd=run.root)
    except subprocess.TimeoutExpired:
        return None, f"analysis took longer than {timeout_s:.0f} s"
    verdict = read_json(out)
    if verdict is None:
        last = (proc.stdout or "").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return None, f"analysis failed: {last[0][:200]}"
    return verdict, f"verdict {verdict.get('verdict')}"


def summary_line(verdict: dict | None) -> str:
    """``leak (decided by rss_bytes), +12.0 MiB/h, ...: <the metric's reason>`` for events and the
    terminal; the words come from the analysis' wording module (llmsoak/analysis/wording.py)."""
    return verdict_line(verdict)


class Checkpointer:
    """Runs one checkpoint at a time in a background thread; ``poll()`` says when one finished."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self._thread: threading.Thread | None = None
        self._result: dict | None = None
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, context: dict) -> bool:
        """Begin a checkpoint (``context``: elapsed_s, remaining_s, … stored alongside); False if busy."""
        if self.busy:
            return False
        self._thread = threading.Thread(target=self._work, args=(dict(context),), daemon=True,
                                        name="checkpoint")
        self._thread.start()
        return True

    def _work(self, context: dict) -> None:
        started = time.time()
        verdict, note = interim_verdict(self.run)
        record = {"timestamp": started, **context, "analysis_s": round(time.time() - started, 2),
                  "note": note, "verdict": verdict}
        write_json_atomic(self.run.checkpoint, record)
        append_event(self.run.events, "checkpoint", f"checkpoint {context.get('index')}: {summary_line(verdict) if verdict else note}")
        with self._lock:
            self._result = record

    def poll(self) -> dict | None:
        """The record of a checkpoint that finished since the last poll, else None."""
        with self._lock:
            result, self._result = self._result, None
        return result

    def wait(self, timeout_s: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)
