"""Analyse a whole run directory (docs/formats.md, "Run directory") into one verdict JSON dict.

``analyze_run(run_dir)`` finds what the run left behind (``samples/*.csv``, ``events.csv``,
``llm_timeseries.csv``, ``locust/stats.csv`` + ``stats_history.csv``, ``profile.yaml``,
``tracemalloc/*.jsonl``; where each lives is :class:`llmsoak.rundir.RunDir`), gives every metric
present a verdict with ``analyze_metric``, relates memory growth to the load, ranks growing
allocation sites, and returns a ``RunAnalysis`` whose ``.verdict`` is the verdict JSON of
docs/formats.md (schema 1) with the keys ``targets``, ``latency``, ``generator``, ``load``,
``tracemalloc`` and ``notes``. ``analyze_samples`` does the same for
one samples CSV. Writing files (charts, report.html, summary.md, verdict.json) is in ``report``.

Which metrics decide the exit code: ``DECIDING_METRICS`` of every target (memory, threads, file
descriptors). CPU, process count, latency, error rate and the load generator are reported with a
verdict each but only decide when asked (``include_latency`` adds latency and error-rate drift).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from llmsoak.analysis.llm_series import locust_totals, read_llm_timeseries, read_locust_history
from llmsoak.analysis.load_relation import relate_growth_to_load
from llmsoak.analysis.samples_reader import read_samples
from llmsoak.analysis.server_metrics import analyze_server, read_server_metrics
from llmsoak.analysis.tracemalloc_report import read_tracemalloc
from llmsoak.analysis.verdict import (
    analyze_metric,
    decided_by,
    overall_verdict,
    set_aside_too_short,
    too_short_note,
)
from llmsoak.errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK, CommandError
from llmsoak.events import read_events
from llmsoak.profile import Profile, ProfileError, load_profile
from llmsoak.rundir import GENERATOR_NAME, SERVER_METRICS_NAME, RunDir

SCHEMA = 1
#: Sampler columns analysed for a target, in report order.
TARGET_METRICS = ("rss_bytes", "uss_bytes", "swap_bytes", "cgroup_memory_bytes", "gpu_memory_bytes",
                  "cpu_percent", "num_threads", "num_fds", "num_procs")
#: Target metrics whose verdicts decide the overall verdict and the exit code.
DECIDING_METRICS = ("rss_bytes", "uss_bytes", "cgroup_memory_bytes", "gpu_memory_bytes",
                    "num_threads", "num_fds")
#: Metrics a memory limit applies to.
LIMITED_METRICS = ("rss_bytes", "uss_bytes", "cgroup_memory_bytes")
#: Per-minute series from llm_timeseries.csv given a verdict ("drift" is reported as "leak").
LATENCY_METRICS = ("ttft_p95_ms", "itl_p95_ms", "e2e_p95_ms", "error_rate_percent")
GENERATOR_METRICS = ("rss_bytes", "cpu_percent")


def metric_unit(metric: str) -> str:
    """The unit word of a column, from its name: bytes, percent, ms or count."""
    if metric.endswith("_bytes"):
        return "bytes"
    if metric.endswith("_percent"):
        return "percent"
    if metric.endswith("_ms"):
        return "ms"
    return "count"


@dataclass
class RunFiles:
    """What a run directory holds (None / empty when absent)."""

    root: Path
    samples: dict[str, Path]  # target name → samples CSV (the generator excluded)
    generator: Path | None
    events: Path | None
    llm_timeseries: Path | None
    locust_stats: Path | None
    locust_history: Path | None
    profile: Path | None
    run_json: Path | None
    tracemalloc: list[Path]
    server_metrics: Path | None = None
    """samples/server_metrics.csv: the target's own /metrics gauges (KV cache, queue)."""


def discover_run(run_dir: str | Path) -> RunFiles:
    """Find the run's files; CommandError (exit 2) if the directory or any samples are missing."""
    root = Path(run_dir)
    if not root.exists():
        raise CommandError(f"{root}: no such run directory")
    if not root.is_dir():
        raise CommandError(f"{root}: not a directory (for one samples CSV use --samples FILE.csv)")

    run = RunDir(root)

    def opt(path: Path) -> Path | None:
        return path if path.is_file() else None

    sample_files = sorted(run.samples.glob("*.csv")) if run.samples.is_dir() else []
    samples = {p.stem: p for p in sample_files if p.stem not in (GENERATOR_NAME, SERVER_METRICS_NAME)}
    generator = next((p for p in sample_files if p.stem == GENERATOR_NAME), None)
    if not samples:
        raise CommandError(f"{root}: no samples/<target>.csv in this run directory "
                           "(was the sampler running? analyse one file with --samples FILE.csv)")
    trace_dir = run.tracemalloc
    return RunFiles(root=root, samples=samples, generator=generator, events=opt(run.events),
                    llm_timeseries=opt(run.llm_timeseries), locust_stats=opt(run.locust_stats),
                    locust_history=opt(run.locust_history), profile=opt(run.profile),
                    run_json=opt(run.manifest), server_metrics=opt(run.server_metrics),
                    # the agent rotates a full file once, to FILE.jsonl.1
                    tracemalloc=sorted([*trace_dir.glob("*.jsonl"), *trace_dir.glob("*.jsonl.1")])
                    if trace_dir.is_dir() else [])


@dataclass
class SeriesResult:
    """One analysed series: the frame it came from and its MetricVerdict."""

    metric: str
    df: object  # pandas.DataFrame with timestamp, the metric [, pid, create_time]
    verdict: object  # llmsoak.analysis.verdict.MetricVerdict

    def verdict_json(self) -> dict:
        return _clean_json(self.verdict.to_json())


@dataclass
class TargetResult:
    """All series analysed for one samples CSV."""

    name: str
    source: Path
    df: object
    series: dict[str, SeriesResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    limit_bytes: float | None = None
    """The memory limit its verdicts used (given, the profile's, or the cgroup limit in its samples)."""

    def to_json(self) -> dict:
        deciding, _ = set_aside_too_short(s.verdict for m, s in self.series.items() if m in DECIDING_METRICS)
        return {"source": str(self.source), "verdict": overall_verdict(deciding) if deciding else "inconclusive",
                "metrics": {m: s.verdict_json() for m, s in self.series.items()}}


@dataclass
class RunAnalysis:
    """Everything ``llmsoak analyze`` found: ``verdict`` is the JSON written to verdict.json."""

    root: Path | None
    verdict: dict
    targets: dict[str, TargetResult]
    primary: str
    t0_s: float
    limit_bytes: float | None = None
    load: object = None  # llm_series.LoadSeries or None
    latency: dict[str, SeriesResult] = field(default_factory=dict)
    generator: TargetResult | None = None
    tracemalloc: object = None  # tracemalloc_report.TracemallocReport or None
    events: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    server: object = None  # server_metrics.ServerMetrics or None

    @property
    def exit_code(self) -> int:
        return {"ok": EXIT_OK, "leak": EXIT_FAILED}.get(self.verdict["verdict"], EXIT_INCONCLUSIVE)


def _clean_json(value):
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def analyze_series(df, metric: str, *, limit: float | None = None,
                   min_growth_pct_per_hour: float | None = None) -> SeriesResult | None:
    """Verdict of one column of ``df``; None when it holds fewer than two values."""
    cols = ["timestamp", metric] + [c for c in ("pid", "create_time") if c in df.columns]
    sub = df[cols].dropna(subset=[metric])
    if len(sub) < 2:
        return None
    sub = sub.reset_index(drop=True)
    mv = analyze_metric(sub, metric, limit=limit, min_growth_pct_per_hour=min_growth_pct_per_hour,
                        unit=metric_unit(metric))
    return SeriesResult(metric=metric, df=sub, verdict=mv)


def _analyze_target(name: str, path: Path, metrics: tuple[str, ...] | list[str], limit, min_growth) -> TargetResult:

    frame = read_samples(path)
    if limit is None:
        limit = cgroup_limit(frame.df)
    result = TargetResult(name=name, source=path, df=frame.df, limit_bytes=limit,
                          notes=[f"{path.name}: {n}" for n in frame.notes])
    for metric in metrics:
        if metric not in frame.df.columns:
            continue
        values = frame.df[metric]
        if metric not in DECIDING_METRICS and values.notna().any() and (values.fillna(0) == 0).all():
            result.notes.append(f"{path.name}: {metric} is 0 throughout: not analysed")
            continue
        res = analyze_series(frame.df, metric, limit=limit if metric in LIMITED_METRICS else None,
                             min_growth_pct_per_hour=min_growth)
        if res is not None:
            result.series[metric] = res
    return result


def cgroup_limit(df) -> float | None:
    """The latest ``cgroup_limit_bytes`` in a samples frame (the container's memory limit), if sampled."""
    if "cgroup_limit_bytes" not in df.columns:
        return None
    values = df["cgroup_limit_bytes"].dropna()
    values = values[values > 0]
    return float(values.iloc[-1]) if len(values) else None


def profile_of_run(path: Path | None, notes: list[str]) -> Profile | None:
    """The run's ``profile.yaml`` as a typed :class:`llmsoak.profile.Profile`, or None.

    None without a file, and None with a note when it does not validate (a run directory of an
    older llmsoak, or a hand-written file): the analysis then goes on without the profile's
    settings. The analysis reads no prompts, so the profile's prompt file is not looked for (a
    run directory copied to another machine has none).
    """
    if path is None:
        return None
    try:
        return load_profile(path, {"prompts.source": "builtin", "prompts.path": None})
    except ProfileError as err:
        notes.append(f"{path.name} not used: it is not a valid profile for this llmsoak version "
                     f"({str(err).removeprefix(str(path) + ': ')[:160]}); no memory limit from it")
        return None


def _latency_frame(load):
    """Per-minute "all" rows with an error-rate column in percent (minutes without requests dropped)."""
    overall = load.overall().copy()
    with_req = overall["requests"] > 0
    overall["error_rate_percent"] = (100.0 * overall["failures"].fillna(0) / overall["requests"]).where(with_req)
    return overall


def analyze_run(run_dir: str | Path, *, limit: float | None = None,
                min_growth_pct_per_hour: float | None = None, include_latency: bool = False) -> RunAnalysis:
    """Analyse every metric of a run directory (no files written; see ``report.write_outputs``)."""
    files = discover_run(run_dir)
    notes: list[str] = []
    if limit is None:
        profile = profile_of_run(files.profile, notes)
        if profile is not None and profile.slo.memory_limit_bytes is not None:
            limit = float(profile.slo.memory_limit_bytes)
    targets = {name: _analyze_target(name, path, TARGET_METRICS, limit, min_growth_pct_per_hour)
               for name, path in files.samples.items()}
    primary = next((n for n, t in targets.items() if "rss_bytes" in t.series), next(iter(targets)))
    for t in targets.values():
        notes.extend(t.notes)
    generator = None
    if files.generator is not None:
        try:
            generator = _analyze_target(GENERATOR_NAME, files.generator, GENERATOR_METRICS, None,
                                        min_growth_pct_per_hour)
            notes.extend(generator.notes)
        except CommandError as err:
            notes.append(f"load generator samples not analysed: {err}")

    load = None
    if files.llm_timeseries is not None:
        load = read_llm_timeseries(files.llm_timeseries)
        if load is None:
            notes.append("llm_timeseries.csv is empty: no per-minute LLM metrics")
    if load is None and files.locust_history is not None:
        load = read_locust_history(files.locust_history)
    if load is not None:
        notes.extend(load.notes)
    elif files.llm_timeseries is None:
        notes.append("no llm_timeseries.csv or locust/stats_history.csv: latency, throughput and "
                     "load-awareness are not available")

    latency: dict[str, SeriesResult] = {}
    if load is not None:
        overall = _latency_frame(load)
        for metric in LATENCY_METRICS:
            if metric in overall and overall[metric].notna().sum() >= 2:
                res = analyze_series(overall, metric, min_growth_pct_per_hour=min_growth_pct_per_hour)
                if res is not None:
                    latency[metric] = res

    totals = locust_totals(files.locust_stats) if files.locust_stats is not None else {}
    load_json = None
    prim = targets[primary]
    mem_metric = next((m for m in ("rss_bytes", "uss_bytes", "cgroup_memory_bytes") if m in prim.series), None)
    if mem_metric is not None and (load is not None or totals):
        load_json = relate_growth_to_load(prim.df, mem_metric, load.overall() if load is not None else None, totals)
        if prim.series[mem_metric].verdict.verdict == "ok":
            load_json["follows_load"] = None
            load_json["summary"] = (f"{mem_metric} did not grow beyond its threshold (verdict ok): "
                                    "no growth to attribute to the load.")

    trace = read_tracemalloc(files.tracemalloc) if files.tracemalloc else None
    if trace is not None:
        notes.extend(trace.notes)
    events = read_events(files.events) if files.events is not None else []
    server = read_server_metrics(files.server_metrics) if files.server_metrics is not None else None

    analysis = RunAnalysis(root=files.root, verdict={}, targets=targets, primary=primary,
                           t0_s=_start_time(targets, load), limit_bytes=targets[primary].limit_bytes, load=load,
                           latency=latency, generator=generator, tracemalloc=trace, events=events,
                           notes=notes, server=server)
    analysis.verdict = build_verdict(analysis, source=str(files.root), load_json=load_json,
                                     include_latency=include_latency)
    return analysis


def analyze_samples(path: str | Path, metric: str = "rss_bytes", *, limit: float | None = None,
                    min_growth_pct_per_hour: float | None = None) -> RunAnalysis:
    """Analyse one column of one samples CSV (``llmsoak analyze --samples``)."""

    path = Path(path)
    frame = read_samples(path)
    if metric not in frame.df.columns:
        raise CommandError(f"{path}:1: no {metric!r} column (columns: {', '.join(frame.metric_columns)}; "
                           "choose one with --metric)")
    if limit is None and metric in LIMITED_METRICS:
        limit = cgroup_limit(frame.df)
    res = analyze_series(frame.df, metric, limit=limit, min_growth_pct_per_hour=min_growth_pct_per_hour)
    if res is None:
        raise CommandError(f"{path}: fewer than two values in {metric!r}: nothing to analyse")
    target = TargetResult(name=path.stem, source=path, df=frame.df, series={metric: res},
                          notes=[f"{path.name}: {n}" for n in frame.notes])
    analysis = RunAnalysis(root=None, verdict={}, targets={target.name: target}, primary=target.name,
                           t0_s=float(frame.df["timestamp"].iloc[0]), limit_bytes=limit,
                           notes=list(target.notes))
    analysis.verdict = build_verdict(analysis, source=str(path), load_json=None, deciding=(metric,))
    return analysis


def _start_time(targets: dict[str, TargetResult], load) -> float:
    starts = [float(t.df["timestamp"].iloc[0]) for t in targets.values() if len(t.df)]
    if load is not None and len(load.df):
        starts.append(float(load.df["timestamp"].iloc[0]))
    return min(starts) if starts else 0.0


def build_verdict(analysis: RunAnalysis, *, source: str, load_json: dict | None,
                  include_latency: bool = False, deciding: tuple[str, ...] = DECIDING_METRICS) -> dict:
    """The verdict JSON (docs/formats.md, "verdict.json", schema 1) for an analysed run."""
    deciding_verdicts = [s.verdict for t in analysis.targets.values()
                         for m, s in t.series.items() if m in deciding]
    # A count too short to resolve (one fd at 0.25/h takes 8 h) does not hide memory's answer.
    deciding_verdicts, set_aside = set_aside_too_short(deciding_verdicts)
    many = len(analysis.targets) > 1
    for v in set_aside:
        name = next((t.name for t in analysis.targets.values()
                     if any(s.verdict is v for s in t.series.values())), "")
        note = too_short_note(v)
        if many and name:
            note = f"{name}: {note}"
        if note not in analysis.notes:
            analysis.notes.append(note)
    if include_latency:
        deciding_verdicts += [s.verdict for s in analysis.latency.values()]
    prim = analysis.targets[analysis.primary]
    overall = overall_verdict(deciding_verdicts) if deciding_verdicts else "inconclusive"
    named = [(m, s.verdict) for t in analysis.targets.values() for m, s in t.series.items() if m in deciding]
    named += [(m, s.verdict) for m, s in analysis.latency.items()] if include_latency else []
    out: dict = {
        "schema": SCHEMA,
        "verdict": overall,
        "source": source,
        "target": analysis.primary,
        "metrics": {m: s.verdict_json() for m, s in prim.series.items()},
        "decided_by": decided_by(named, overall, deciding_verdicts),
        "limit_bytes": analysis.limit_bytes,
    }
    if not deciding_verdicts:
        analysis.notes.append("no memory, thread or fd series to decide on: verdict inconclusive")
    if len(analysis.targets) > 1:
        out["targets"] = {n: t.to_json() for n, t in analysis.targets.items()}
    if analysis.latency:
        out["latency"] = {m: s.verdict_json() for m, s in analysis.latency.items()}
    if analysis.generator is not None and analysis.generator.series:
        out["generator"] = analysis.generator.to_json()
    if load_json is not None:
        out["load"] = _clean_json(load_json)
    if analysis.tracemalloc is not None:
        out["tracemalloc"] = _clean_json(analysis.tracemalloc.to_json())
    if analysis.server is not None:
        out["server"] = _clean_json(analyze_server(analysis.server))
    first = min((float(t.df["timestamp"].iloc[0]) for t in analysis.targets.values()), default=None)
    last = max((float(t.df["timestamp"].iloc[-1]) for t in analysis.targets.values()), default=None)
    out["window"] = {"start": first, "end": last,
                     "duration_h": (last - first) / 3600.0 if first is not None else None,
                     "samples": int(len(prim.df))}
    out["notes"] = list(analysis.notes)
    return _clean_json(out)


def load_verdict_json(path: str | Path) -> dict:
    """Read a verdict.json written earlier (for comparisons); CommandError if unreadable."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CommandError(f"{path}: cannot read verdict JSON ({err})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise CommandError(f"{path}: not a schema-{SCHEMA} verdict JSON")
    return data


def latest_run_dir(runs_dir: str | Path = "runs") -> Path:
    """The most recently modified directory under ``runs_dir`` that holds ``samples/*.csv``."""
    root = Path(runs_dir)
    candidates = [p for p in root.glob("*/") if RunDir(p).samples.is_dir()] if root.is_dir() else []
    if not candidates:
        raise CommandError(f"{root}: no run directory with samples/ found (pass RUN_DIR explicitly)")
    return max(candidates, key=lambda p: p.stat().st_mtime)
