"""The sampling loop: attach to a selector's tree, sample it on a fixed grid, survive restarts.

Library use (the soak orchestrator runs it in-process or as ``llmsoak sample``)::

    from llmsoak.sampler import Sampler, build_selector
    sampler = Sampler(build_selector(match="vllm serve"), "runs/x/samples/vllm.csv", interval_s=1.0)
    sampler.start()          # background thread
    ...
    code = sampler.stop()    # sets an Event, joins (< 1 s), returns the exit code

Target lifecycle: while nothing matches, the sampler waits (``status == "waiting"``). When it
attaches, a new *segment* starts (events.csv ``segment``; ``restart`` from the second on). When
the root exits, events.csv gets ``stop`` and the sampler waits again — except for a ``--pid``
selector, which ends the run (a pid never comes back).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from llmsoak.errors import EXIT_BAD_INPUT, EXIT_IO_ERROR, EXIT_OK, EXIT_TARGET_UNAVAILABLE, CommandError
from llmsoak.events import append_event
from llmsoak.formats import SAMPLES_COLUMNS
from llmsoak.rundir import RunDir
from llmsoak.sampler.gpu import open_gpu_reader
from llmsoak.sampler.live import LiveState, listen_token, start_live_server
from llmsoak.sampler.metrics_scrape import MetricsScraper
from llmsoak.sampler.probe import TreeProbe, host_available_bytes
from llmsoak.sampler.samples_writer import AppendingCsvWriter, SamplesWriteError
from llmsoak.sampler.schedule import Schedule
from llmsoak.sampler.selectors import CgroupSelector, Selector

OVERRUN_EVENT_EVERY_S = 60.0
"""At most one overrun event per minute (with the counts since the last), so a stalled host
cannot flood events.csv."""


def _processes(count: int) -> str:
    """``1 process``, ``3 processes``."""
    return f"{count} process" if count == 1 else f"{count} processes"


def _nothing_found(selector) -> str:
    """The one-line 'target not there' message: ``nothing matches --match 'x'``, ``... port 8000``."""
    if selector.kind == "match":
        return f"nothing matches --match {selector.pattern!r}"
    return f"nothing matches {selector.describe()}"


def default_events_path(out_path: str | os.PathLike) -> Path:
    """events.csv of the run: ``RUN/events.csv`` for ``RUN/samples/x.csv``, else beside the file."""
    out = Path(out_path).absolute()
    run = RunDir(out.parent.parent)
    if out.parent == run.samples:
        return run.events
    return RunDir(out.parent).events


def _stderr_log(line: str) -> None:
    print(f"llmsoak sample: {line}", file=sys.stderr, flush=True)


class Sampler:
    """Samples ``selector``'s process tree every ``interval_s`` seconds into ``out_path``.

    Keyword options: ``name`` (label in events and the live endpoint; default: the file stem),
    ``events_path`` (None → :func:`default_events_path`; False → no events), ``wait_for_target_s``
    (None: wait forever for a first target; 0: fail at once; N: fail after N s — exit 4),
    ``uss`` (opt-in, costly), ``gpu`` (NVML when available), ``listen`` ("HOST:PORT" live
    endpoint), ``metrics_url``/``metrics_out`` (Prometheus scrape to a second CSV; failures and
    recoveries become events), ``metrics_format`` (``long`` every series, ``server`` the gauges of
    SERVER_METRICS_COLUMNS),
    ``duration_s`` (stop after), ``exclude_self``, ``fsync_interval_s``, ``rescan_s`` (how often
    the tree's membership is re-listed), ``log`` (one-line messages; default stderr).
    """

    def __init__(self, selector: Selector, out_path: str | os.PathLike, *, interval_s: float = 1.0,
                 name: str | None = None, events_path: str | os.PathLike | None | bool = None,
                 wait_for_target_s: float | None = None, uss: bool = False, gpu: bool = True,
                 listen: str | None = None, metrics_url: str | None = None,
                 metrics_out: str | os.PathLike | None = None, metrics_format: str = "long",
                 duration_s: float | None = None,
                 exclude_self: bool = False, fsync_interval_s: float = 10.0, rescan_s: float = 10.0,
                 log: Callable[[str], None] = _stderr_log) -> None:
        if not interval_s > 0:
            raise CommandError(f"--interval must be positive, got {interval_s}")
        if (metrics_url is None) != (metrics_out is None):
            raise CommandError("--metrics-url and --metrics-out go together")
        self.selector = selector
        self.out_path = Path(out_path)
        self.interval_s = float(interval_s)
        self.name = name or self.out_path.stem
        if events_path is None or events_path is True:
            self.events_path: Path | None = default_events_path(self.out_path)
        elif events_path is False:
            self.events_path = None
        else:
            self.events_path = Path(events_path)
        self.wait_for_target_s = wait_for_target_s
        self.uss = uss
        self.gpu_enabled = gpu
        self.listen = listen
        self.metrics_url = metrics_url
        self.metrics_out = metrics_out
        self.metrics_format = metrics_format
        self.duration_s = duration_s
        self.fsync_interval_s = fsync_interval_s
        self.rescan_s = max(0.0, float(rescan_s))
        self.log = log
        if exclude_self:
            selector.exclude.add(os.getpid())

        self.status = "waiting"
        """"waiting" (no target) or "attached"."""
        self.segment = 0
        """Attachments so far: 1 for the first target, +1 per restart."""
        self.pid: int | None = None
        self.create_time: float | None = None
        self.samples_written = 0
        self.exit_code: int | None = None
        self.error: CommandError | None = None
        self.live_url: str | None = None
        self.live = None  # llmsoak.sampler.live.LiveState when listening
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._roots: list[psutil.Process] = []
        self._members: list[psutil.Process] = []
        self._members_at = 0.0
        self._probe = TreeProbe(uss=uss)
        self._events_failed = False
        self._last_denied_note = -1

    # -- control --------------------------------------------------------------------------------
    def start(self) -> Sampler:
        """Run in a daemon thread; returns once the output is open and the live endpoint is up."""
        self._thread = threading.Thread(target=self._run_in_thread, name=f"sampler-{self.name}",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(10.0)
        if self.error is not None:
            raise self.error
        return self

    def _run_in_thread(self) -> None:
        try:
            self.run()
        except CommandError as err:
            self.error = err
            self.exit_code = err.exit_code
            self.log(f"error: {err}")
        finally:
            self._ready.set()

    def request_stop(self) -> None:
        """Ask the loop to end (safe from signal handlers); it finishes within one wait."""
        self._stop.set()

    def stop(self, timeout_s: float = 5.0) -> int:
        """Stop, join, return the exit code (0 clean, 4 target unavailable, 5 I/O error)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self.exit_code if self.exit_code is not None else EXIT_OK

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Join the thread; the exit code, or None while it still runs."""
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                return None
        return self.exit_code

    # -- events ---------------------------------------------------------------------------------
    def _event(self, kind: str, detail: str, *, log: bool = True) -> None:
        detail = f"sampler {self.name}: {detail}"
        if log:
            self.log(detail)
        if self.live is not None:
            self.live.add_event(time.time(), kind, detail)
        if self.events_path is None or self._events_failed:
            return
        try:
            append_event(self.events_path, kind, detail)
        except OSError as err:
            self._events_failed = True  # events are secondary: keep sampling, say it once
            self.log(f"warning: cannot append to {self.events_path}: {err.strerror}; events go to stderr only")

    # -- target lifecycle -----------------------------------------------------------------------
    def _try_attach(self) -> bool:
        try:
            roots = self.selector.resolve()
        except CommandError:
            raise
        except psutil.Error:
            return False
        if not roots:
            return False
        primary = roots[0]
        try:
            created = primary.create_time()
        except psutil.Error:
            return False
        previous = self.pid
        self._roots = roots
        self.pid, self.create_time = primary.pid, created
        self._members = self.selector.members(roots)
        self._members_at = time.monotonic()
        self._probe.reset()
        self.segment += 1
        self.status = "attached"
        extra = f" (+{len(roots) - 1} more roots)" if len(roots) > 1 else ""
        self._event("segment", f"segment {self.segment}: attached to pid {self.pid}{extra} "
                               f"({_processes(len(self._members))}, create_time {created:.3f})")
        if previous is not None:
            self._event("restart", f"target restarted as pid {self.pid} (was {previous})", log=False)
        if self.live is not None:
            self.live.set_status("attached", self.pid, self.segment)
        return True

    def _detach(self, why: str) -> None:
        self._event("stop", f"target pid {self.pid} {why} (segment {self.segment})")
        self.status = "waiting"
        self._roots, self._members = [], []
        if self.live is not None:
            self.live.set_status("waiting", None, self.segment)

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> int:
        """Sample until stopped, the duration ends or a --pid target exits; return the exit code.

        Raises CommandError: 2 for bad input, 4 when no target is (or appears in time), 5 when
        the output fails. Everything a user can get wrong (listen address, a --pid or
        --fail-if-missing target that is not there, an output that cannot be opened) is checked
        before anything is printed or written, so such a mistake prints only its error line; the
        info lines, ``listening on`` and ``sampling ...`` follow once sampling really starts.
        """
        server = writer = gpu = scraper = None
        try:
            token = listen_token(self.listen) if self.listen else None  # off loopback: exit 2 without one
            self._check_target_now()
            if self.listen:
                self.live = LiveState(self.name, self.selector.describe(), self.interval_s, SAMPLES_COLUMNS)
                self.live.samples_path = self.out_path  # /api/rows reads the file, not memory
                self.live.events_path = self.events_path  # /api/events?since= too, when there is one
                server, self.live_url = start_live_server(self.listen, self.live, token)  # binds now: a busy port fails here
            writer = self._open_writer()
            if self.metrics_url:
                try:
                    scraper = MetricsScraper(self.metrics_url, self.metrics_out,
                                             timeout_s=min(5.0, max(0.5, self.interval_s)),
                                             fsync_interval_s=self.fsync_interval_s, log=self.log,
                                             layout=self.metrics_format,
                                             event=lambda kind, detail: self._event(kind, detail),
                                             on_row=self.live.add_server_row if self.live is not None else None)
                except SamplesWriteError as err:
                    raise CommandError(str(err.strerror or err), EXIT_IO_ERROR) from err
                except ValueError as err:
                    raise CommandError(f"--metrics-out: {err}", EXIT_BAD_INPUT) from err
                if self.live is not None and self.metrics_format == "server":
                    self.live.server_enabled = True
                scraper.start()  # idle until the first sample submits a scrape
            # From here on nothing the user chose can fail: say what happens, then sample.
            if self.live_url is not None:
                print(f"llmsoak sample: listening on {self.live_url}", flush=True)
            if writer.repaired_bytes:
                self._event("info", f"cut a partial last line ({writer.repaired_bytes} bytes) "
                                    f"from {self.out_path} before appending")
            if self.gpu_enabled:
                gpu, note = open_gpu_reader()
                if note:
                    self.log(f"info: {note}")
            self._event("start", f"sampling {self.selector.describe()} every {self.interval_s:g} s "
                                 f"into {self.out_path}")
            code = self._loop(writer, gpu, scraper)
            self.exit_code = code
            self._event("stop", f"sampler stopped after {self.samples_written} samples "
                                f"({writer.rows_skipped} skipped as not after the last row)")
            return code
        finally:
            self._ready.set()
            if scraper is not None:
                scraper.stop()
            if gpu is not None:
                gpu.close()
            if writer is not None:
                writer.close()
            if server is not None:
                server.shutdown()
                server.server_close()

    def _check_target_now(self) -> None:
        """Exit 4 at once when the target must be there at start and is not: a --pid (a pid never
        comes back) or ``wait_for_target_s == 0`` (--fail-if-missing). Other selectors wait."""
        if self.selector.kind != "pid" and self.wait_for_target_s != 0:
            return
        try:
            roots = self.selector.resolve()
        except psutil.Error:
            roots = []
        if roots:
            return
        if self.selector.kind == "pid":
            raise CommandError(f"no process with pid {self.selector.pid}", EXIT_TARGET_UNAVAILABLE)  # type: ignore[attr-defined]
        raise CommandError(_nothing_found(self.selector), EXIT_TARGET_UNAVAILABLE)

    def _open_writer(self) -> AppendingCsvWriter:
        try:
            self.out_path.parent.mkdir(parents=True, exist_ok=True)
            return AppendingCsvWriter(self.out_path, SAMPLES_COLUMNS, fsync_interval_s=self.fsync_interval_s)
        except SamplesWriteError as err:
            raise CommandError(str(err.strerror or err), EXIT_IO_ERROR) from err
        except ValueError as err:
            raise CommandError(str(err), EXIT_BAD_INPUT) from err
        except OSError as err:
            raise CommandError(f"cannot create {self.out_path.parent}: {err.strerror}", EXIT_IO_ERROR) from err

    def _loop(self, writer: AppendingCsvWriter, gpu, scraper) -> int:
        started = time.monotonic()
        wait_deadline = None if self.wait_for_target_s is None else started + self.wait_for_target_s
        if not self._try_attach():
            if self.selector.kind == "pid":
                raise CommandError(f"no process with pid {self.selector.pid}", EXIT_TARGET_UNAVAILABLE)  # type: ignore[attr-defined]
            if wait_deadline is not None and self.wait_for_target_s == 0:
                raise CommandError(_nothing_found(self.selector), EXIT_TARGET_UNAVAILABLE)
            self.log(f"waiting for {self.selector.describe()}"
                     + ("" if wait_deadline is None else f" (up to {self.wait_for_target_s:g} s)"))
        self._ready.set()
        schedule = Schedule(self.interval_s)
        last_overrun_event, pending_overruns, pending_skipped = 0.0, 0, 0
        while True:
            tick = schedule.wait(self._stop)
            if tick is None:
                return EXIT_OK
            now = time.monotonic()
            if self.duration_s is not None and now - started >= self.duration_s:
                return EXIT_OK
            if tick.skipped:
                pending_overruns += 1
                pending_skipped += tick.skipped
                if now - last_overrun_event >= OVERRUN_EVENT_EVERY_S:
                    self._event("overrun", f"{pending_overruns} late sample(s), {pending_skipped} "
                                           f"interval(s) skipped (last {tick.late_s:.2f} s late; "
                                           f"total {schedule.skipped_total})")
                    last_overrun_event, pending_overruns, pending_skipped = now, 0, 0
            timestamp = time.time()
            if self.status != "attached":
                if not self._try_attach():
                    if wait_deadline is not None and self.segment == 0 and now >= wait_deadline:
                        raise CommandError(f"nothing matched {self.selector.describe()} within "
                                           f"{self.wait_for_target_s:g} s", EXIT_TARGET_UNAVAILABLE)
                    continue
            row = self._sample(timestamp, gpu)
            if row is None:
                if not self.selector.follows_restarts:
                    return EXIT_OK
                if not self._try_attach():
                    continue
                row = self._sample(timestamp, gpu)
                if row is None:
                    continue
            try:
                written = writer.write_row(row)
            except SamplesWriteError as err:
                raise CommandError(f"{err.strerror}; stopped, {self.out_path} keeps its "
                                   f"{self.samples_written} rows", EXIT_IO_ERROR) from err
            if written:
                self.samples_written += 1
                if self.live is not None:
                    self.live.add_sample(row)
                if scraper is not None:
                    scraper.submit(row["timestamp"])

    def _sample(self, timestamp: float, gpu) -> dict | None:
        """One row for the attached tree, or None (after a ``stop`` event) when its root is gone."""
        mono = time.monotonic()
        if mono - self._members_at >= self.rescan_s or isinstance(self.selector, CgroupSelector):
            self._members = self.selector.members(self._roots)
            self._members_at = mono
        primary = self._roots[0] if self._roots else None
        if primary is None or not primary.is_running() or primary not in self._members:
            self._detach("exited")
            return None
        reading = self._probe.read(self._members)
        if self.pid not in reading.pids:
            if reading.denied and reading.num_procs == 0:
                raise CommandError(f"permission denied reading pid {self.pid} (run the sampler as "
                                   "the target's user or root)", EXIT_TARGET_UNAVAILABLE)
            self._detach("exited")
            return None
        if reading.denied and reading.denied != self._last_denied_note:
            self._last_denied_note = reading.denied
            self._event("info", f"{reading.denied} read(s) denied in the tree of pid {self.pid}; "
                                "those cells are partial or empty (run as the target's user or root)")
        row = {
            "timestamp": timestamp, "pid": self.pid, "create_time": self.create_time,
            "rss_bytes": reading.rss_bytes, "uss_bytes": reading.uss_bytes,
            "vms_bytes": reading.vms_bytes, "swap_bytes": reading.swap_bytes,
            "cpu_percent": reading.cpu_percent, "num_threads": reading.num_threads,
            "num_fds": reading.num_fds, "num_procs": reading.num_procs,
            "read_bytes": reading.read_bytes, "write_bytes": reading.write_bytes,
            "host_available_bytes": host_available_bytes(),
            "cgroup_memory_bytes": None, "gpu_memory_bytes": None, "gpu_util_percent": None,
        }
        if isinstance(self.selector, CgroupSelector):
            row["cgroup_memory_bytes"] = self.selector.read_memory_bytes()
        if gpu is not None:
            row["gpu_memory_bytes"], row["gpu_util_percent"] = gpu.read(reading.pids)
        return row
