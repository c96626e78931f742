"""The run directory: where each file of a soak lives, for the parts that write and those that read.

``runs/<id>/`` with ``id = YYYYmmdd-HHMMSS-<profile name>``::

    run.json            manifest (llmsoak/run/manifest.py)
    profile.yaml        the resolved profile, secrets redacted
    orchestrator.pid    pid of the running ``llmsoak run`` (removed at its end)
    events.csv          timeline (columns and kinds: llmsoak/formats.py)
    samples/target.csv  the target's resources; samples/locust.csv the load generator's
    samples/server_metrics.csv  the target's own /metrics (KV cache, queue), when sampler.metrics_url
    clock_offsets.csv   with sampler.remote: the remote sampler's clock minus ours, per pull
    llm_timeseries.csv  per-minute LLM metrics (appended by every segment's Locust master)
    workers.json        remote workers seen by the master: joined, lost, refused, users shortfall
    locust/             stats.csv, failures.csv, exceptions.csv, report.html of the latest
                        segment, and stats_history.csv stitched over all segments
    locust/seg-NNN/     what Locust wrote during segment NNN (Locust rewrites its CSVs per process)
    logs/*.log          stdout+stderr of each child, size-capped
    tracemalloc/*.jsonl allocation snapshots of a Python target running the tracemalloc agent
    analysis/           checkpoint.json during the run; verdict.json, charts/, report.html,
                        summary.md from ``llmsoak analyze``

``llmsoak capacity`` writes its own run directory (same ``id`` scheme)::

    profile.yaml        the resolved profile, secrets redacted
    capacity.json       the sweep: settings, SLOs, knee (req/s and users), every step (schema 1)
    capacity.csv        one row per step (columns: llmsoak/capacity/results.py CSV_COLUMNS)
    report.html         charts: latency against throughput, goodput against load, knee marked
    charts/             the charts as PNG
    capacity/batch-NN/  one Locust run each: plan.json, requests-<pid>.csv, phases-<pid>.jsonl
    logs/               Locust's output per batch

The same table, for people: docs/formats.md ("Run directory").
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from llmsoak.errors import EXIT_IO_ERROR, CommandError

TARGET_NAME = "target"
"""Samples file stem of the target that ``llmsoak run`` watches (``samples/target.csv``)."""
GENERATOR_NAME = "locust"
"""Samples file stem of the load generator's own processes (``samples/locust.csv``)."""

SERVER_METRICS_NAME = "server_metrics"
"""File stem of the target's scraped Prometheus gauges (``samples/server_metrics.csv``): not a
samples CSV of a process tree, so readers of ``samples/*.csv`` leave it out."""

LOCUST_CSV_PREFIX = "stats"
"""Locust's ``--csv`` prefix inside a segment folder: it writes ``stats_stats.csv`` and so on."""
LOCUST_SEGMENT_STATS = f"{LOCUST_CSV_PREFIX}_stats.csv"
"""A segment's final request statistics (written when Locust ends; Aggregated row last)."""
LOCUST_SEGMENT_HISTORY = f"{LOCUST_CSV_PREFIX}_stats_history.csv"
"""A segment's 5-second history; ``locust/stats_history.csv`` is all of them in order."""
LOCUST_SEGMENT_REPORT = "report.html"
"""Locust's ``--html`` report inside a segment folder."""
LOCUST_SEGMENT_FILES = {LOCUST_SEGMENT_STATS: "stats.csv", f"{LOCUST_CSV_PREFIX}_failures.csv": "failures.csv",
                        f"{LOCUST_CSV_PREFIX}_exceptions.csv": "exceptions.csv",
                        LOCUST_SEGMENT_REPORT: "report.html"}
"""Segment file → its copy in ``locust/`` (from the latest segment that has them)."""

CAPACITY_JSON = "capacity.json"
"""``llmsoak capacity``'s result (llmsoak/capacity/results.py; docs/formats.md)."""
CAPACITY_CSV = "capacity.csv"
"""``llmsoak capacity``'s steps, one row each (llmsoak/capacity/results.py; docs/formats.md)."""
CAPACITY_REPORT = "report.html"
"""``llmsoak capacity``'s HTML report with its charts (llmsoak/capacity/report.py)."""
CAPACITY_BATCHES = "capacity"
"""Folder of a capacity run's Locust batches (``capacity/batch-NN/``)."""

_UNSAFE_RE = re.compile(r"[^A-Za-z0-9._-]+")


def run_id(profile_name: str, now: float | None = None) -> str:
    """``20250101-120000-<profile name>`` (name made filesystem-safe, at most 40 characters)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    safe = _UNSAFE_RE.sub("-", profile_name).strip("-.")[:40] or "run"
    return f"{stamp}-{safe}"


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory (``root``); nothing is read or created until asked."""

    root: Path

    # -- written by llmsoak run ------------------------------------------------------------------
    @property
    def manifest(self) -> Path:
        return self.root / "run.json"

    @property
    def profile(self) -> Path:
        return self.root / "profile.yaml"

    @property
    def pid_file(self) -> Path:
        return self.root / "orchestrator.pid"

    @property
    def events(self) -> Path:
        return self.root / "events.csv"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    # -- written by the samplers -----------------------------------------------------------------
    @property
    def samples(self) -> Path:
        return self.root / "samples"

    def samples_of(self, name: str) -> Path:
        """The samples CSV of the watched tree called ``name`` (``samples/<name>.csv``)."""
        return self.samples / f"{name}.csv"

    @property
    def target_samples(self) -> Path:
        return self.samples_of(TARGET_NAME)

    @property
    def locust_samples(self) -> Path:
        return self.samples_of(GENERATOR_NAME)

    @property
    def server_metrics(self) -> Path:
        """The target's own /metrics gauges on the sampler's clock (columns: SERVER_METRICS_COLUMNS)."""
        return self.samples_of(SERVER_METRICS_NAME)

    @property
    def clock_offsets(self) -> Path:
        """A remote sampler's clock against the orchestrator's, per pull (``sampler.remote`` only)."""
        return self.root / "clock_offsets.csv"

    # -- written by Locust -----------------------------------------------------------------------
    @property
    def locust(self) -> Path:
        return self.root / "locust"

    def segment_dir(self, index: int) -> Path:
        """Where Locust writes its CSVs and HTML report during segment ``index`` (1-based)."""
        return self.locust / f"seg-{index:03d}"

    @property
    def locust_stats(self) -> Path:
        return self.locust / "stats.csv"

    @property
    def locust_history(self) -> Path:
        return self.locust / "stats_history.csv"

    @property
    def llm_timeseries(self) -> Path:
        return self.root / "llm_timeseries.csv"

    @property
    def workers(self) -> Path:
        """Remote workers as the master saw them (llmsoak.locust.worker_join): counts, shortfall."""
        return self.root / "workers.json"

    # -- written by the target (tracemalloc agent) -------------------------------------------------
    @property
    def tracemalloc(self) -> Path:
        return self.root / "tracemalloc"

    # -- written by the analysis -----------------------------------------------------------------
    @property
    def analysis(self) -> Path:
        return self.root / "analysis"

    @property
    def checkpoint(self) -> Path:
        return self.analysis / "checkpoint.json"

    @property
    def verdict(self) -> Path:
        return self.analysis / "verdict.json"

    @property
    def report(self) -> Path:
        return self.analysis / "report.html"

    @property
    def summary(self) -> Path:
        return self.analysis / "summary.md"

    @property
    def charts(self) -> Path:
        return self.analysis / "charts"

    def create(self) -> RunDir:
        """Create the folders (existing ones are kept: resume appends)."""
        for path in (self.root, self.locust, self.samples, self.logs, self.analysis):
            path.mkdir(parents=True, exist_ok=True)
        return self


def new_run_dir(out: str | Path | None, profile_name: str, base: str | Path = "runs") -> RunDir:
    """The run directory for a new run: ``out`` if given (must be empty or absent), else ``base/<id>``.

    Raises CommandError: exit 2 for an ``out`` that holds files, exit 5 when it cannot be created.
    """
    if out is not None:
        root = Path(out)
        # scripts/soak.sh creates the folder with only the orchestrator's own log in it.
        if root.exists() and (not root.is_dir() or any(p.name != "orchestrator.log" for p in root.iterdir())):
            raise CommandError(f"--out {root}: exists and is not empty (use --resume {root} to continue it)")
    else:
        root = Path(base) / run_id(profile_name)
        n = 2
        while root.exists():  # two runs started in the same second
            root = Path(base) / f"{run_id(profile_name)}-{n}"
            n += 1
    try:
        return RunDir(root.resolve()).create()
    except OSError as err:
        raise CommandError(f"cannot create run directory {root}: {err.strerror}", EXIT_IO_ERROR) from err
