"""Top growing allocation sites from ``tracemalloc/*.jsonl`` (written by ``llmsoak.tracemalloc_agent``).

Each JSONL line is one snapshot: ``{"timestamp", "elapsed_s", "traced_bytes", "top": [{"file",
"line", "size_diff_bytes", "count_diff", "size_bytes"}, ...]}``. A site's growth is its last
``size_diff_bytes`` (the agent diffs against its baseline snapshot) or, without it, the change of
``size_bytes`` between its first and last appearance; its rate is the least-squares slope of
``size_bytes`` over time, in bytes per hour. Malformed lines are skipped and counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SiteGrowth:
    """One allocation site (``file:line``) and how much it grew, in bytes and bytes per hour."""

    file: str
    line: int
    growth_bytes: float
    growth_bytes_per_hour: float | None
    size_bytes: float
    count_diff: float | None
    snapshots: int

    @property
    def site(self) -> str:
        return f"{self.file}:{self.line}"

    def to_json(self) -> dict:
        return {"site": self.site, "file": self.file, "line": self.line,
                "growth_bytes": self.growth_bytes, "growth_bytes_per_hour": self.growth_bytes_per_hour,
                "size_bytes": self.size_bytes, "count_diff": self.count_diff, "snapshots": self.snapshots}


@dataclass
class TracemallocReport:
    """Snapshots read, the traced heap's growth and the top growing sites (largest growth first)."""

    files: list[str]
    snapshots: int
    duration_s: float
    traced_bytes_first: float | None
    traced_bytes_last: float | None
    traced_growth_bytes_per_hour: float | None
    top: list[SiteGrowth]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"files": self.files, "snapshots": self.snapshots, "duration_s": self.duration_s,
                "traced_bytes_first": self.traced_bytes_first, "traced_bytes_last": self.traced_bytes_last,
                "traced_growth_bytes_per_hour": self.traced_growth_bytes_per_hour,
                "top": [s.to_json() for s in self.top]}


def _slope_per_hour(times_s: list[float], values: list[float]) -> float | None:
    n = len(times_s)
    if n < 2:
        return None
    mt, mv = sum(times_s) / n, sum(values) / n
    var = sum((t - mt) ** 2 for t in times_s)
    if var <= 0:
        return None
    return 3600.0 * sum((t - mt) * (v - mv) for t, v in zip(times_s, values, strict=True)) / var


def _num(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out else None  # NaN → None


def read_tracemalloc(paths: list[Path], top_n: int = 10) -> TracemallocReport | None:
    """Read the snapshots in ``paths`` (in time order) and rank sites; None when there are none."""
    records: list[tuple[float, dict]] = []
    notes: list[str] = []
    for path in paths:
        bad = 0
        try:
            with Path(path).open(errors="replace") as fh:
                for line in fh:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        bad += 1
                        continue
                    if not isinstance(rec, dict):
                        bad += 1
                        continue
                    t = _num(rec.get("timestamp"))
                    if t is None:
                        t = _num(rec.get("elapsed_s"))
                    if t is None:
                        bad += 1
                        continue
                    records.append((t, rec))
        except OSError as err:
            notes.append(f"{Path(path).name}: cannot read ({err.strerror or err})")
            continue
        if bad:
            notes.append(f"{Path(path).name}: skipped {bad} malformed line(s)")
    if not records:
        return None
    records.sort(key=lambda r: r[0])
    t0 = records[0][0]
    traced_t, traced_v = [], []
    sites: dict[tuple[str, int], dict] = {}
    for t, rec in records:
        traced = _num(rec.get("traced_bytes"))
        if traced is not None:
            traced_t.append(t - t0)
            traced_v.append(traced)
        for entry in rec.get("top") or []:
            if not isinstance(entry, dict):
                continue
            key = (str(entry.get("file", "?")), int(_num(entry.get("line")) or 0))
            site = sites.setdefault(key, {"t": [], "size": [], "diff": None, "count": None})
            size = _num(entry.get("size_bytes"))
            if size is not None:
                site["t"].append(t - t0)
                site["size"].append(size)
            diff = _num(entry.get("size_diff_bytes"))
            if diff is not None:
                site["diff"] = diff
            count = _num(entry.get("count_diff"))
            if count is not None:
                site["count"] = count
    ranked = []
    for (file, line), s in sites.items():
        sizes = s["size"]
        if s["diff"] is not None:
            growth = s["diff"]
        elif len(sizes) >= 2:
            growth = sizes[-1] - sizes[0]
        else:
            continue
        ranked.append(SiteGrowth(file=file, line=line, growth_bytes=growth,
                                 growth_bytes_per_hour=_slope_per_hour(s["t"], sizes),
                                 size_bytes=sizes[-1] if sizes else float("nan"),
                                 count_diff=s["count"], snapshots=len(sizes)))
    ranked.sort(key=lambda s: s.growth_bytes, reverse=True)
    return TracemallocReport(
        files=[str(p) for p in paths], snapshots=len(records), duration_s=records[-1][0] - t0,
        traced_bytes_first=traced_v[0] if traced_v else None,
        traced_bytes_last=traced_v[-1] if traced_v else None,
        traced_growth_bytes_per_hour=_slope_per_hour(traced_t, traced_v),
        top=[s for s in ranked if s.growth_bytes > 0][:top_n], notes=notes)
