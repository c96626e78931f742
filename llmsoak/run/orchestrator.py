"""The soak's main loop: start everything in order, keep it running, checkpoint, end with a verdict.

Start order: the target (when the profile gives a command; else check that its URL answers), the
sampler attached to it, Locust headless with its local workers (or, with ``run.remote_workers``, a
master waiting for them: llmsoak.run.remote_workers), the sampler attached to Locust.
Supervision: a child that dies is restarted with backoff; a Locust restart closes the current
*segment* and opens a new one (its CSVs under ``locust/seg-NNN/``). The run's clock counts load
time (the sum of the segments), so a resumed run still gets its full duration of load.
End (run time reached, SIGTERM, SIGINT): the target's sampler (its series ends under load), Locust
(SIGINT, so it writes its HTML report), Locust's sampler, the target; Locust's files stitched into ``locust/``; ``llmsoak analyze``; the
SLO gate decides the exit code.
Secrets: the manifest, events, log lines and (once they have stopped) the children's logs pass
the run's :class:`~llmsoak.redact.Redactor`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from llmsoak.errors import EXIT_FAILED, EXIT_TARGET_UNAVAILABLE, CommandError
from llmsoak.events import append_event
from llmsoak.formatting import format_duration
from llmsoak.redact import Redactor
from llmsoak.run import arrivals_summary, children, remote_workers, slo
from llmsoak.run.checkpoint import Checkpointer, summary_line
from llmsoak.run.manifest import load_elapsed_s, read_json, write_json_atomic
from llmsoak.run.processes import (
    Child,
    metrics_url_problem,
    stop_recorded,
    tcp_answers,
    trim_log,
    url_answers,
)
from llmsoak.run.progress import Progress
from llmsoak.run.remote_sampler import RemoteSampler, append_remote_event
from llmsoak.run.settings import RunSettings
from llmsoak.run.snapshot import segment_totals, snapshot
from llmsoak.rundir import LOCUST_SEGMENT_FILES, LOCUST_SEGMENT_HISTORY, LOCUST_SEGMENT_STATS, RunDir

TICK_S = 0.5
HEARTBEAT_S = 5.0
LOG_TRIM_EVERY_S = 60.0
LOCUST_STOP_TIMEOUT_S = 60.0
END_MARGIN_S = 3.0
"""A Locust that exits this close to the end counts as finished, not crashed."""
MAX_QUICK_FAILURES = 5
"""Locust failing this many times in a row within QUICK_FAILURE_S of starting aborts the run."""
QUICK_FAILURE_S = 10.0
ANALYSIS_TIMEOUT_S = 1800.0


class Orchestrator:
    """One run (new or resumed) in ``run``; :meth:`run` returns the exit code."""

    def __init__(self, run: RunDir, settings: RunSettings, manifest: dict, redactor: Redactor, *,
                 quiet: bool = False, progress_interval_s: float = 30.0, resuming: bool = False) -> None:
        self.run_dir = run
        self.settings = settings
        self.manifest = manifest
        self.redactor = redactor
        self.resuming = resuming
        self.progress = Progress(quiet=quiet, interval_s=progress_interval_s)
        self.checkpointer = Checkpointer(run)
        self.target: Child | None = None
        self.target_sampler: Child | None = None
        self.locust: Child | None = None
        self.locust_sampler: Child | None = None
        self.remote_sampler: RemoteSampler | None = None
        self._stop_reason: str | None = None
        self._wake = threading.Event()
        self._quick_failures = 0

    # -- bookkeeping ---------------------------------------------------------------------------
    def save(self) -> None:
        self.manifest["heartbeat_at"] = time.time()
        write_json_atomic(self.run_dir.manifest, self.redactor.data(self.manifest))

    def event(self, kind: str, detail: str, log: bool = True) -> None:
        detail = self.redactor.text(detail)
        append_event(self.run_dir.events, kind, detail)
        if log:
            self.progress.log(detail)

    def _heartbeat(self) -> None:
        if time.time() - (self.manifest.get("heartbeat_at") or 0) >= HEARTBEAT_S:
            self.save()

    def log(self, message: str) -> None:
        self.progress.log(self.redactor.text(message))

    def _log_tail(self, path: Path) -> str:
        """The last line of a child's log, for an error message (secrets masked)."""
        return self.redactor.text(_log_tail(path))

    def _scrub_logs(self) -> None:
        """Mask secrets in the children's logs. The children write them directly (so that they
        outlive a killed orchestrator), hence only once they have stopped; cut-off ``.log.1``
        parts also when they are cut (see ``_loop``)."""
        for log in sorted(self.run_dir.logs.glob("*.log*")):
            self.redactor.scrub_file(log)

    def _record(self, child: Child | None, **extra) -> None:
        if child is not None:
            self.manifest["processes"][child.name] = {**child.record(), **extra}

    def _count_restart(self, name: str) -> None:
        restarts = self.manifest.setdefault("restarts", {})
        restarts[name] = restarts.get(name, 0) + 1

    def _on_signal(self, signum, _frame) -> None:
        if self._stop_reason is None:
            self._stop_reason = f"stopped by {signal.Signals(signum).name}"
        self._wake.set()

    # -- main ----------------------------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                continue  # started under nohup (scripts/soak.sh): a closed terminal must not stop it
            signal.signal(sig, self._on_signal)
        self.run_dir.pid_file.write_text(f"{os.getpid()}\n")
        import psutil

        self.manifest["orchestrator"] = {"pid": os.getpid(), "create_time": psutil.Process().create_time(),
                                         "hostname": os.uname().nodename}
        self.manifest["status"] = "running"
        self.save()
        try:
            try:
                if self.resuming:
                    self._take_over()
                self._start_target()
                self._check_metrics_url()
                self._start_target_sampler()
                if self._stop_reason is None:
                    self._start_segment("resume" if self.resuming else "start")
                reason = self._loop()
            finally:
                self._stop_all()
        except CommandError as err:
            self.manifest["status"] = "failed"
            self.manifest["ended_at"] = time.time()
            self.manifest["result"] = {"exit_code": err.exit_code, "error": str(err)}
            self.save()
            self.event("stop", f"run failed: {err}", log=False)
            self._scrub_logs()
            self.run_dir.pid_file.unlink(missing_ok=True)
            raise
        try:
            return self._finish(reason)
        finally:
            self._scrub_logs()
            self.run_dir.pid_file.unlink(missing_ok=True)

    def _loop(self) -> str:
        cp_interval = self.settings.checkpoint_interval_s
        done = self.manifest.get("checkpoints", 0)
        next_cp = cp_interval * (done + 1)
        last_beat = last_trim = 0.0
        while True:
            if self._stop_reason:
                return self._stop_reason
            now = time.time()
            elapsed = load_elapsed_s(self.manifest, now)
            if elapsed >= self.settings.duration_s:
                return "finished"
            self._supervise(now, self.settings.duration_s - elapsed)
            if self._stop_reason:
                continue
            if elapsed >= next_cp and self.checkpointer.start(
                    {"index": done + 1, "elapsed_s": round(elapsed, 1),
                     "remaining_s": round(self.settings.duration_s - elapsed, 1),
                     **{k: snapshot(self.run_dir, self.manifest).get(k) for k in
                        ("users", "rps", "requests_total", "failures_total", "memory_now_bytes")}}):
                done += 1
                next_cp = max(next_cp + cp_interval, elapsed + cp_interval / 2)
            if (record := self.checkpointer.poll()) is not None:
                self.manifest["checkpoints"] = self.manifest.get("checkpoints", 0) + 1
                self.manifest["last_checkpoint"] = {k: v for k, v in record.items() if k != "verdict"} | {
                    "verdict": (record.get("verdict") or {}).get("verdict"),
                    "summary": summary_line(record.get("verdict"))}
                self.save()
                last_beat = now
                self.log(f"checkpoint {record.get('index')}: {self.manifest['last_checkpoint']['summary']}")
            if now - last_beat >= HEARTBEAT_S:
                self.save()
                last_beat = now
            if now - last_trim >= LOG_TRIM_EVERY_S:
                for log in self.run_dir.logs.glob("*.log"):
                    if trim_log(log):
                        self.redactor.scrub_file(Path(f"{log}.1"))  # nobody appends to the cut-off part
                last_trim = now
            if self.progress.due():
                self.progress.show(snapshot(self.run_dir, self.manifest))
            self._wake.wait(TICK_S)

    # -- children ------------------------------------------------------------------------------
    def _target_ready(self, timeout_s: float) -> bool:
        host, port = children.target_host_port(self.settings)
        url = children.readiness_url(self.settings)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._stop_reason:
            if self.target is not None and not self.target.alive():
                return False
            if url_answers(url) or (self.settings.target_flavour == "chat" and tcp_answers(host, port)):
                return True
            time.sleep(0.2)
        return False

    def _start_target(self) -> None:
        s = self.settings
        if not s.target_command:
            if not self._target_ready(min(s.ready_timeout_s, 10.0)):
                raise CommandError(f"target {s.target_url} does not answer (and the profile gives no "
                                   "target.command to start it)", EXIT_TARGET_UNAVAILABLE)
            return
        if self.target is None:
            self.target = children.target_child(s, self.run_dir).start()
            self.event("start", f"target started: pid {self.target.pid}: {' '.join(s.target_command)}")
        self._record(self.target, started_by_us=True)
        self.save()
        if not self._target_ready(s.ready_timeout_s):
            if self._stop_reason:
                return
            tail = self._log_tail(self.target.log_path)
            raise CommandError(f"target did not answer on {s.target_url} within {s.ready_timeout_s:g} s"
                               f" (log {self.target.log_path}: {tail})", EXIT_TARGET_UNAVAILABLE)

    def _check_metrics_url(self) -> None:
        """Say on the terminal, once, when ``sampler.metrics_url`` does not answer with metrics (a
        404, a wrong port): the run goes on without server telemetry. The sampler keeps trying and
        puts the failure (and a recovery) into events.csv."""
        url = self.settings.metrics_url
        if not url:
            return
        problem = metrics_url_problem(url)
        if problem:
            self.log(f"warning: sampler.metrics_url {url}: {problem}; the run goes on without the "
                     "server's KV-cache and queue metrics until it answers")

    def _start_remote_sampler(self) -> None:
        """sampler.remote: pull the remote sampler's rows instead of sampling here (once per run;
        the shift between its clock and ours is kept in run.json so a resume uses the same)."""
        if self.remote_sampler is not None:
            return
        record = self.manifest.setdefault("remote_sampler", {"url": self.settings.sampler_remote})
        self.remote_sampler = RemoteSampler(
            self.settings.sampler_remote, self.run_dir.target_samples, offsets_path=self.run_dir.clock_offsets,
            event=self.event, event_at=append_remote_event(self.run_dir.events, self.redactor.text),
            token_env=self.settings.sampler_token_env, offset_s=record.get("offset_s"),
            not_before=self.manifest.get("created_at"))
        self.remote_sampler.start()
        record["offset_s"] = self.remote_sampler.offset_s
        self.event("start", f"pulling samples from remote sampler {self.remote_sampler.label} (its clock "
                            f"{self.remote_sampler.offset_s:+.3f} s from ours; rows shifted onto ours)")
        self.save()

    def _start_target_sampler(self) -> None:
        if self.settings.sampler_remote:
            self._start_remote_sampler()
            return
        if self.target_sampler is not None:
            self.target_sampler.stop(10.0)
        pid = self.target.pid if self.target is not None else None
        self.target_sampler = children.target_sampler_child(self.settings, self.run_dir, pid).start()
        if self.settings.sampler_listen:  # sampler.listen: null: no live endpoint to wait for
            self.target_sampler.wait_url(15.0)
        self._record(self.target_sampler)
        self.save()

    def _start_locust_sampler(self) -> None:
        if self.locust_sampler is not None:
            self.locust_sampler.stop(10.0)
            self.locust_sampler = None
        if not self.settings.sample_locust or self.locust is None:
            return
        self.locust_sampler = children.locust_sampler_child(self.settings, self.run_dir, self.locust.pid).start()
        self.locust_sampler.wait_url(15.0)
        self._record(self.locust_sampler)

    def _start_segment(self, why: str) -> None:
        segments = self.manifest["segments"]
        index = len(segments) + 1
        remaining = max(1.0, self.settings.duration_s - load_elapsed_s(self.manifest))
        self.locust = children.locust_child(self.settings, self.run_dir, index, remaining).start()
        seg_dir = self.run_dir.segment_dir(index)
        segments.append({"index": index, "started_at": self.locust.started_at, "ended_at": None,
                         "end_reason": None, "start_reason": why,
                         "locust_dir": str(seg_dir.relative_to(self.run_dir.root))})
        self._record(self.locust)
        self._start_locust_sampler()
        self.save()
        workers = f"{self.settings.workers} worker(s)"
        if self.settings.remote_workers:
            workers = f"master of {self.settings.remote_workers} remote worker(s) on {self.settings.master_bind}"
            if remote_workers.wait_for_workers(self.run_dir, self.settings, self.locust,
                                               lambda: bool(self._stop_reason), self.log, self._heartbeat):
                segments[-1]["started_at"] = time.time()  # the wait for workers is not load time
        self.event("segment", f"segment {index} started ({why}): Locust pid {self.locust.pid}, "
                              f"{workers}, {format_duration(remaining)} to go")

    def _end_segment(self, reason: str, at: float | None = None) -> None:
        segments = self.manifest["segments"]
        if segments and segments[-1].get("ended_at") is None:
            seg = segments[-1]
            seg["ended_at"] = time.time() if at is None else max(float(seg["started_at"]), at)
            seg["end_reason"] = reason
            seg.update(segment_totals(self.run_dir.root / seg["locust_dir"]))
            self.save()

    def _supervise(self, now: float, remaining_s: float) -> None:
        # The target: a crash is data (the analysis sees the restart); bring it back like a supervisor.
        if self.target is not None and not self.target.alive():
            if self.target.restart_at is None:
                delay = self.target.backoff.delay_s(self.target.uptime_s())
                self.target.restart_at = now + delay
                self.event("alert", f"target exited (code {self.target.returncode}); restarting in {delay:.0f} s")
            elif now >= self.target.restart_at:
                self._count_restart("target")
                self.target.start()
                self.event("restart", f"target restarted: pid {self.target.pid}")
                self._start_target()
                self._start_target_sampler()
        for name in ("target_sampler", "locust_sampler"):
            child: Child | None = getattr(self, name)
            if child is None or child.alive():
                continue
            if name == "target_sampler" and self.target is not None and not self.target.alive():
                continue  # it follows the target by pid: restarted with it
            if name == "locust_sampler" and self.locust is not None and not self.locust.alive():
                continue  # it follows Locust by pid: restarted with the next segment
            if child.restart_at is None:
                delay = child.backoff.delay_s(child.uptime_s())
                child.restart_at = now + delay
                self.event("alert", f"{child.name} exited (code {child.returncode}); restarting in {delay:.0f} s")
            elif now >= child.restart_at:
                self._count_restart(child.name)
                child.start()
                if child is not self.target_sampler or self.settings.sampler_listen:
                    child.wait_url(15.0)
                self._record(child)
                self.save()
                self.event("restart", f"{child.name} restarted: pid {child.pid}")
        if self.locust is not None and not self.locust.alive():
            if remaining_s <= END_MARGIN_S:
                return
            if self.locust.restart_at is None:
                uptime = self.locust.uptime_s()
                self._quick_failures = self._quick_failures + 1 if uptime < QUICK_FAILURE_S else 0
                if self._quick_failures >= MAX_QUICK_FAILURES:
                    tail = self._log_tail(self.locust.log_path)
                    raise CommandError(f"Locust failed {self._quick_failures} times in a row within "
                                       f"{QUICK_FAILURE_S:g} s of starting (log {self.locust.log_path}: {tail})",
                                       EXIT_FAILED)
                self._end_segment(f"Locust exited (code {self.locust.returncode})")
                delay = self.locust.backoff.delay_s(uptime)
                self.locust.restart_at = now + delay
                self.event("restart", f"Locust exited (code {self.locust.returncode}) after "
                                      f"{format_duration(uptime)}; new segment in {delay:.0f} s")
            elif now >= self.locust.restart_at:
                backoff = self.locust.backoff
                self._count_restart("locust")
                self._start_segment("Locust restarted")
                self.locust.backoff = backoff

    def _stop_all(self) -> None:
        """The target's sampler first (its series ends under load: the unloading would read as a
        step down at the very end of the trend), then Locust (SIGINT → it writes its report),
        then Locust's sampler, then our target."""
        # The load ends when we begin to stop, not when Locust has written its report: the
        # segment's end (and so the run's "… of load") excludes the shutdown.
        stop_began_at = time.time()
        if self.target_sampler is not None:
            self.target_sampler.stop(15.0)
        if self.remote_sampler is not None:
            self.remote_sampler.stop()
            self.manifest["remote_sampler"].update(
                rows_pulled=self.remote_sampler.rows_pulled, outages=self.remote_sampler.outages,
                last_offset_s=self.remote_sampler.last_offset_s)
        if self.locust is not None:
            self.locust.stop(LOCUST_STOP_TIMEOUT_S, first_signal=signal.SIGINT)
            self._end_segment(self._stop_reason or "finished", at=stop_began_at)
        for child in (self.locust_sampler, self.target):
            if child is not None:
                child.stop(15.0)
        self.checkpointer.wait(60.0)

    def _take_over(self) -> None:
        """Resume: close the segment the dead orchestrator left open, stop its Locust and samplers,
        adopt its target if it still runs (the sampler re-attaches by pid)."""
        procs = self.manifest.get("processes") or {}
        segments = self.manifest.get("segments") or []
        locust_alive = stop_recorded(procs.get("locust"), LOCUST_STOP_TIMEOUT_S)
        if segments and segments[-1].get("ended_at") is None:
            seg = segments[-1]
            seg["ended_at"] = time.time() if locust_alive else max(seg["started_at"], self.manifest.get("heartbeat_at") or seg["started_at"])
            seg["end_reason"] = "orchestrator died"
            seg.update(segment_totals(self.run_dir.root / seg["locust_dir"]))
        for name in ("sampler_locust", "sampler_target"):
            stop_recorded(procs.get(name))
        rec = procs.get("target") or {}
        if rec.get("started_by_us") and self.settings.target_command:
            self.target = Child.adopt("target", list(self.settings.target_command), self.run_dir.logs / "target.log",
                                      rec.get("pid"), rec.get("create_time"), env=children.child_env(self.run_dir))
            if self.target is not None:
                self.event("info", f"resume: target pid {self.target.pid} still runs; re-attaching")
        self.manifest["resumes"] = self.manifest.get("resumes", 0) + 1
        self.save()

    # -- end -------------------------------------------------------------------------------------
    def _stitch_locust_files(self) -> None:
        """``locust/stats_history.csv`` = every segment's history in order; the rest from the last segment."""
        locust = self.run_dir.locust
        segs = sorted(p for p in locust.glob("seg-*") if p.is_dir())
        tmp = locust / ".stats_history.csv.next"
        header_done = False
        with open(tmp, "wb") as out:
            for seg in segs:
                path = seg / LOCUST_SEGMENT_HISTORY
                if not path.exists():
                    continue
                with open(path, "rb") as fh:
                    header = fh.readline()
                    if not header_done:
                        out.write(header)
                        header_done = True
                    shutil.copyfileobj(fh, out)
        if header_done:
            os.replace(tmp, self.run_dir.locust_history)
        else:
            tmp.unlink(missing_ok=True)
        for seg in reversed(segs):
            if (seg / LOCUST_SEGMENT_STATS).exists():
                for src, dst in LOCUST_SEGMENT_FILES.items():
                    if (seg / src).exists():
                        shutil.copyfile(seg / src, locust / dst)
                break

    def _analyze(self) -> dict | None:
        argv = [sys.executable, "-m", "llmsoak", "analyze", str(self.run_dir.root)]
        self.log("analysing the run …")
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=ANALYSIS_TIMEOUT_S)
            (self.run_dir.logs / "analyze.log").write_text(proc.stdout or "")
        except subprocess.TimeoutExpired:
            self.event("alert", f"analysis did not finish within {ANALYSIS_TIMEOUT_S:.0f} s")
            return None
        verdict = read_json(self.run_dir.verdict)
        if verdict is None:
            last = (proc.stdout or "").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            self.event("alert", f"analysis failed: {last[0][:300]}")
        return verdict

    def _finish(self, reason: str) -> int:
        self._stitch_locust_files()
        verdict = self._analyze()
        s = self.settings
        segments = self.manifest.get("segments") or []
        locust_totals = (float(sum(seg.get("requests") or 0 for seg in segments)),
                         float(sum(seg.get("failures") or 0 for seg in segments)))
        totals = slo.load_totals(self.run_dir.llm_timeseries, locust_totals)
        checks = slo.evaluate(s.slo, totals, slo.max_rss_bytes(self.run_dir.target_samples), verdict)
        code = slo.exit_code(checks)
        for check in checks:
            if check.status in ("breach", "warn"):
                self.event("alert", f"SLO {check.name} {check.status}: {check.detail}", log=False)
        self.manifest["status"] = "finished" if reason == "finished" else "stopped"
        self.manifest["ended_at"] = time.time()
        self.manifest["result"] = {"exit_code": code, "end_reason": reason,
                                   "verdict": (verdict or {}).get("verdict"), "summary": summary_line(verdict),
                                   "requests": totals["requests"], "failures": totals["failures"],
                                   "slo": [c.to_json() for c in checks]}
        workers = remote_workers.summary(self.run_dir) if s.remote_workers else None
        if workers is not None:
            self.manifest["result"]["remote_workers"] = workers
        arrivals = arrivals_summary.totals(self.run_dir.llm_timeseries)
        if arrivals is not None:
            self.manifest["result"]["arrivals"] = arrivals
        self.save()
        self.event("stop", f"run {reason}: exit {code}, {summary_line(verdict)}", log=False)
        self.log(f"run {reason} after {format_duration(load_elapsed_s(self.manifest))} of load, "
                 f"{len(segments)} segment(s)")
        if workers is not None:
            self.log(remote_workers.summary_line(workers))
        if arrivals is not None:
            self.log(arrivals_summary.summary_line(arrivals))
        for check in checks:
            self.log(f"SLO {check.name}: {check.status} — {check.detail}")
        self.log(f"verdict: {summary_line(verdict)}")
        if (verdict or {}).get("server"):
            self.log(f"server: {verdict['server'].get('reason')}")
        report = self.run_dir.report
        self.log(f"report: {report if report.exists() else self.run_dir.root}")
        self.log(f"exit code {code}")
        return code


def _log_tail(path, n_chars: int = 300) -> str:
    try:
        text = path.read_text(errors="replace")[-4000:]
    except OSError:
        return "no log"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "empty log")[-n_chars:]
