"""The run directory: one folder holds everything a soak produced (DESIGN.md "Run directory").

``runs/<id>/`` with ``id = YYYYmmdd-HHMMSS-<profile name>``::

    run.json            manifest (see manifest.py)
    profile.yaml        the resolved profile, secrets redacted
    orchestrator.pid    pid of the running ``llmsoak run`` (removed at its end)
    locust/             stats*.csv, failures.csv, exceptions.csv, report.html: the latest segment's
                        files, and stats_history.csv stitched over all segments
    locust/seg-NNN/     what Locust wrote during segment NNN (Locust rewrites its CSVs per process)
    llm_timeseries.csv  per-minute LLM metrics (appended by every segment's master)
    samples/target.csv  the target's resources; samples/locust.csv the generator's
    events.csv          timeline: start, stop, restart, segment, checkpoint, alert
    logs/*.log          stdout+stderr of each child, size-capped
    analysis/           verdict.json, checkpoint.json, report.html, ...
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from llmsoak.errors import CommandError

_UNSAFE_RE = re.compile(r"[^A-Za-z0-9._-]+")


def run_id(profile_name: str, now: float | None = None) -> str:
    """``20250101-120000-<profile name>`` (name made filesystem-safe, at most 40 characters)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    safe = _UNSAFE_RE.sub("-", profile_name).strip("-.")[:40] or "run"
    return f"{stamp}-{safe}"


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory (``root``)."""

    root: Path

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
    def locust(self) -> Path:
        return self.root / "locust"

    def segment_dir(self, index: int) -> Path:
        """Where Locust writes its CSVs and HTML report during segment ``index`` (1-based)."""
        return self.locust / f"seg-{index:03d}"

    @property
    def llm_timeseries(self) -> Path:
        return self.root / "llm_timeseries.csv"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def target_samples(self) -> Path:
        return self.samples / "target.csv"

    @property
    def locust_samples(self) -> Path:
        return self.samples / "locust.csv"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def analysis(self) -> Path:
        return self.root / "analysis"

    @property
    def verdict(self) -> Path:
        return self.analysis / "verdict.json"

    @property
    def checkpoint(self) -> Path:
        return self.analysis / "checkpoint.json"

    @property
    def report(self) -> Path:
        return self.analysis / "report.html"

    def create(self) -> RunDir:
        """Create the folders (existing ones are kept: resume appends)."""
        for path in (self.root, self.locust, self.samples, self.logs, self.analysis):
            path.mkdir(parents=True, exist_ok=True)
        return self


def new_run_dir(out: str | Path | None, profile_name: str, base: str | Path = "runs") -> RunDir:
    """The run directory for a new run: ``out`` if given (must be empty or absent), else ``base/<id>``."""
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
        raise CommandError(f"cannot create run directory {root}: {err.strerror}", 5) from err
