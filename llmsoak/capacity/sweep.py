"""``llmsoak capacity``: sweep the load, find the knee, in req/s and in users of the profile's mix.

Order (each *batch* is one headless Locust run of ``locustfiles/capacity.py``, its plan and
request records under ``RUN/capacity/batch-NN/``):

1. the synchronous rate (closed loop, one request at a time) and the maximum throughput (closed
   loop, ``capacity.max_in_flight`` at a time);
2. ``capacity.steps`` open-loop rates from the first to the second (or ``capacity.rates``);
3. while every rate met the SLOs, a *probe* step at 1.25 × the highest (3 at most); then
   ``capacity.refine`` bisections between the highest rate that met the SLOs and the next one;
4. with ``capacity.users``: the number of users of the profile's patterns (closed loop, think
   times and all), bisected over ``capacity.user_iterations`` runs.

Every step: a discarded warm-up, then the measured window (llmsoak.capacity.steps). Results:
``RUN/capacity.json``, ``RUN/capacity.csv``, ``RUN/report.html`` (llmsoak.capacity.results,
llmsoak.capacity.report). The exit code (:func:`exit_code`) says whether the profile's
``capacity.target_rate`` / ``target_users`` is sustainable.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from llmsoak.capacity.plan import PLAN_ENV
from llmsoak.capacity.steps import Step, Window, measure, read_records
from llmsoak.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    EXIT_TARGET_UNAVAILABLE,
    CommandError,
)
from llmsoak.profile import CapacityConfig, Profile
from llmsoak.run.processes import free_port, tcp_answers

LOCUSTFILE = Path(__file__).resolve().parents[2] / "locustfiles" / "capacity.py"
STOP_WAIT_S = 30.0
PROBE_FACTOR = 1.25
"""When every rate of the sweep met the SLOs: another step at this multiple of the highest…"""
MAX_PROBES = 3
"""… at most this many times."""


def check_knee_inputs(profile: Profile) -> None:
    """A knee search needs a latency SLO: one line naming the field (exit 2) when it has none."""
    slo = profile.slo
    if slo.ttft_p95_ms is None and slo.e2e_p95_ms is None:
        raise CommandError(f"{profile.source_path or 'profile'}: slo: a knee search needs slo.ttft_p95_ms or "
                           "slo.e2e_p95_ms (the profile sets neither)", EXIT_BAD_INPUT)


@dataclass
class Sweep:
    """Everything measured; ``rate_knee`` / ``users_knee`` are the highest loads that met the SLOs."""

    steps: list[Step] = field(default_factory=list)
    synchronous_rps: float | None = None
    max_throughput_rps: float | None = None
    rate_knee: float | None = None
    rate_bound: str = "none"
    """``exact`` (a higher rate missed), ``at least`` (every rate met the SLOs) or ``none``."""
    rate_next_fail: float | None = None
    users_knee: int | None = None
    users_bound: str = "none"
    users_next_fail: int | None = None


def linspace(lo: float, hi: float, n: int) -> list[float]:
    """``n`` ≥ 2 evenly spaced values from ``lo`` to ``hi`` inclusive."""
    if n < 2:
        raise ValueError(f"steps: a sweep needs at least 2 steps (got {n})")
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def rate_knee(steps: list[Step]) -> tuple[float | None, float | None]:
    """(highest open-loop rate that met the SLOs, lowest rate above it that missed them)."""
    rates = sorted((s for s in steps if s.kind == "rate" and not s.superseded), key=lambda s: s.load)
    best = max((s.load for s in rates if s.meets_slo), default=None)
    above = [s.load for s in rates if not s.meets_slo and (best is None or s.load > best)]
    return best, (min(above) if above else None)


def search_users(test: Callable[[int], bool], start: int, iterations: int) -> tuple[int, int | None]:
    """(most users that passed, fewest that failed or None) after ``iterations`` calls of ``test``:
    doubling from ``start`` until a failure, then bisecting."""
    lo, hi, u = 0, None, max(1, start)
    for _ in range(iterations):
        if test(u):
            lo = u
            u = 2 * u if hi is None else (lo + hi) // 2
        else:
            hi = u
            u = (lo + hi) // 2
        if hi is not None and (hi - lo <= 1 or u <= lo):
            break
    return lo, hi


def estimate_users(profile: Profile, rate: float, e2e_s: float) -> int:
    """Users of the profile's mix that send ``rate`` req/s when a reply takes ``e2e_s``: each
    turn takes the reply plus the think time, each session adds its pause."""
    total_w = per_user = 0.0
    for spec in profile.patterns:
        w = float(spec.users if spec.users is not None else (spec.weight if spec.weight is not None else 1))
        turns = max(1.0, spec.turns_per_session.typical)
        cycle = turns * (e2e_s + spec.think_time_s.typical) + spec.session_pause_s.typical
        per_user += w * turns / max(cycle, 1e-3)
        total_w += w
    per_user /= max(total_w, 1e-9)
    return max(1, math.ceil(rate / max(per_user, 1e-9)))


class Driver:
    """Runs the batches of one sweep into ``root`` and prints one progress line per step."""

    def __init__(self, profile: Profile, profile_file: Path, root: Path, *, processes: int = 0,
                 log: Callable[[str], None] = print) -> None:
        self.profile = profile
        self.cfg: CapacityConfig = profile.capacity or CapacityConfig()
        self.profile_file = profile_file
        self.root = root
        self.processes = processes
        self.log = log
        self.batches = 0
        self.phase_counter = 0
        self.sweep = Sweep()
        self.on_step: Callable[[Sweep], None] | None = None
        """Called after every step (the live results file and the Capacity view)."""

    # -- Locust ---------------------------------------------------------------------------------
    def _argv(self, users: int, run_time_s: float) -> list[str]:
        argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--profile", str(self.profile_file),
                "--headless", "--host", self.profile.target.url, "-u", str(users), "-r", str(max(users, 1)),
                "-t", f"{math.ceil(run_time_s)}s", "--exit-code-on-error", "0", "--stop-timeout", "10",
                "--only-summary", "--loglevel", "WARNING"]
        if self.processes > 0:
            port = str(free_port())
            argv += ["--processes", str(self.processes), "--master-bind-host", "127.0.0.1",
                     "--master-bind-port", port, "--master-port", port]
        return argv

    def _batch(self, mode: str, phases: list[dict], users: int = 0) -> Path:
        self.batches += 1
        folder = self.root / "capacity" / f"batch-{self.batches:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        cfg = self.cfg
        workers = max(1, self.processes)
        plan = {"mode": mode, "records_dir": str(folder), "workers": workers, "phases": phases,
                "distribution": cfg.distribution, "burstiness": cfg.burstiness,
                "max_in_flight": cfg.max_in_flight, "max_lag_s": cfg.max_lag_s, "drain_s": cfg.drain_s,
                "seed": self.profile.run.seed}
        plan_path = folder / "plan.json"
        plan_path.write_text(json.dumps(plan, indent=1))
        span = sum(p["warmup_s"] + p["measure_s"] for p in phases)
        run_time = span + 1.0 if mode == "users" else span + len(phases) * (cfg.drain_s + 1.0) + 30.0
        log_path = self.root / "logs" / f"capacity-batch-{self.batches:02d}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, PLAN_ENV: str(plan_path)}
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(self._argv(users if mode == "users" else workers, run_time), env=env,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.time() + run_time + 60.0
            while proc.poll() is None and time.time() < deadline:
                if mode != "users" and _done_count(folder) >= workers:
                    break
                time.sleep(0.2)
        finally:
            _stop(proc)
        if proc.returncode == EXIT_BAD_INPUT and not any(folder.glob("requests-*.csv")):
            raise CommandError(f"Locust refused the profile: {_last_line(log_path)}")
        return folder

    # -- phases ---------------------------------------------------------------------------------
    def _phase(self, kind: str, value: float) -> dict:
        self.phase_counter += 1
        return {"index": self.phase_counter, "kind": kind, "value": value,
                "warmup_s": self.cfg.warmup_s, "measure_s": self.cfg.measure_s}

    def _rate_steps(self, rates: list[float], role: str) -> list[Step]:
        """Open-loop steps; one that missed the SLOs while its generator fell behind its schedule
        is measured once more (role ``retry``) and the first measurement is set aside."""
        steps = self._loop_steps([self._phase("rate", r) for r in rates], [role] * len(rates))
        for step in [s for s in steps if s.generator_behind and not s.meets_slo]:
            self.log(f"capacity: the generator fell behind at {step.load:g} req/s; measuring it again")
            step.superseded = True
            self._loop_steps([self._phase("rate", step.load)], ["retry"])
        return steps

    def _loop_steps(self, phases: list[dict], roles: list[str]) -> list[Step]:
        folder = self._batch("loop", phases)
        records = read_records(folder)
        windows = _phase_windows(folder)
        out = []
        for phase, role in zip(phases, roles, strict=True):
            rows = [r for r in records if r["phase"] == phase["index"]]
            step = measure(phase["kind"], phase["value"], rows, windows.get(phase["index"], []),
                           self.profile.slo, role=role)
            self._add(step)
            out.append(step)
        return out

    def _add(self, step: Step) -> None:
        self.sweep.steps.append(step)
        self.log(describe(step, len(self.sweep.steps)))
        if self.on_step is not None:
            self.on_step(self.sweep)

    def _users_step(self, users: int) -> Step:
        phase = self._phase("users", users)
        folder = self._batch("users", [phase], users=users)
        records = [r for r in read_records(folder) if r["phase"] == phase["index"]]
        t0 = min((r["t_sched"] for r in records), default=time.time())
        start = t0 + self.cfg.warmup_s
        windows = [Window(pid, start, start + self.cfg.measure_s) for pid in {r["pid"] for r in records}]
        step = measure("users", users, records, windows, self.profile.slo, role="users")
        self._add(step)
        return step

    # -- the sweep ------------------------------------------------------------------------------
    def run(self) -> Sweep:
        cfg, sw = self.cfg, self.sweep
        self.log(f"capacity: {self.profile.target.url}: synchronous rate and maximum throughput "
                 f"({cfg.warmup_s:g} s warm-up + {cfg.measure_s:g} s per step)")
        sync, top = self._loop_steps([self._phase("concurrency", 1), self._phase("concurrency", cfg.max_in_flight)],
                                     ["synchronous", "throughput"])
        if sync.requests == 0 or not (sync.achieved_rps > 0):
            raise CommandError(f"target {self.profile.target.url}: no request completed in the synchronous "
                               f"step (see {self.root / 'logs'})", EXIT_TARGET_UNAVAILABLE)
        sw.synchronous_rps, sw.max_throughput_rps = sync.achieved_rps, max(top.achieved_rps, sync.achieved_rps)
        rates = list(cfg.rates) or linspace(sw.synchronous_rps, sw.max_throughput_rps, cfg.steps)
        rates = [round(r, 4) for r in rates]
        self.log(f"capacity: {len(rates)} open-loop rates from {rates[0]:g} to {rates[-1]:g} req/s "
                 f"({cfg.distribution})")
        self._rate_steps(rates, "sweep")
        best, fail = rate_knee(sw.steps)
        for _ in range(MAX_PROBES):
            if fail is not None or best is None or cfg.rates:
                break
            # Every rate held: the closed-loop throughput may understate what the server takes
            # open loop. Steps above it, so the knee has an upper side to bisect towards.
            probe = round(best * PROBE_FACTOR, 4)
            self.log(f"capacity: every rate met the SLOs; probing {probe:g} req/s")
            self._rate_steps([probe], "probe")
            best, fail = rate_knee(sw.steps)
        for _ in range(cfg.refine):
            if fail is None:
                break
            lo = best if best is not None else 0.0
            mid = round((lo + fail) / 2, 4)
            if mid <= 0 or fail - lo < 0.02 * fail:
                break
            self._rate_steps([mid], "refine")
            best, fail = rate_knee(sw.steps)
        sw.rate_knee, sw.rate_next_fail = best, fail
        sw.rate_bound = "none" if best is None else ("exact" if fail is not None else "at least")
        if cfg.users and best is not None:
            knee_step = max((s for s in sw.steps if s.kind == "rate" and s.meets_slo), key=lambda s: s.load)
            e2e_s = (knee_step.latency_ms["e2e"]["p50"] or 0.0) / 1000.0
            start = cfg.max_users or estimate_users(self.profile, best, e2e_s)
            self.log(f"capacity: searching users of the profile's mix from {start} "
                     f"({cfg.user_iterations} runs at most)")
            lo, hi = search_users(lambda u: self._users_step(u).meets_slo, start, cfg.user_iterations)
            sw.users_knee = lo or None
            sw.users_next_fail = hi
            sw.users_bound = "none" if not lo else ("exact" if hi is not None else "at least")
        return sw


def describe(step: Step, number: int) -> str:
    """One progress line: the step's load, what it achieved, its p95s, goodput and SLO result."""
    unit = {"rate": "req/s offered", "concurrency": "in flight", "users": "users"}[step.kind]
    lat = step.latency_ms
    p95 = lambda name: "–" if lat[name]["p95"] is None else f"{lat[name]['p95']:.0f} ms"  # noqa: E731
    share = "–" if step.goodput_share is None else f"{step.goodput_share:.0%}"
    verdict = "meets the SLOs" if step.meets_slo else "misses: " + "; ".join(step.reasons)
    lag = f", lag p95 {step.lag_ms['p95']:.0f} ms" if step.kind == "rate" and step.lag_ms["p95"] else ""
    if step.generator_behind:
        lag += " (the generator fell behind its schedule: try --processes)"
    return (f"step {number} ({step.role}): {step.load:g} {unit} → {step.achieved_rps:.2f} req/s, "
            f"{step.output_tokens_per_s:.0f} tok/s, TTFT p95 {p95('ttft')}, E2E p95 {p95('e2e')}, "
            f"goodput {share} ({step.goodput_rps:.2f} req/s), {step.dropped} dropped{lag} — {verdict}")


def exit_code(sweep: Sweep, cfg: CapacityConfig) -> tuple[int, list[str]]:
    """0: the targets are sustainable (or none is set) · 1: one is not · 3: cannot tell (a target
    above every load measured while all of them met the SLOs). With the sentences saying why."""
    code, lines = EXIT_OK, []

    def worse(new: int) -> None:
        nonlocal code
        order = (EXIT_OK, EXIT_INCONCLUSIVE, EXIT_FAILED)
        code = max(code, new, key=order.index)

    for name, target, knee, bound, unit in (
            ("target_rate", cfg.target_rate, sweep.rate_knee, sweep.rate_bound, "req/s"),
            ("target_users", cfg.target_users, sweep.users_knee, sweep.users_bound, "users")):
        if target is None:
            continue
        if knee is not None and target <= knee:
            lines.append(f"capacity.{name} {target:g} {unit}: sustainable (knee {knee:g} {unit})")
        elif bound == "at least":
            worse(EXIT_INCONCLUSIVE)
            lines.append(f"capacity.{name} {target:g} {unit}: not measured (every load up to {knee:g} "
                         f"{unit} met the SLOs)")
        else:
            worse(EXIT_FAILED)
            knee_text = "no load met the SLOs" if knee is None else f"knee {knee:g} {unit}"
            lines.append(f"capacity.{name} {target:g} {unit}: NOT sustainable ({knee_text})")
    return code, lines


def _phase_windows(folder: Path) -> dict[int, list[Window]]:
    out: dict[int, list[Window]] = {}
    for path in folder.glob("phases-*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if row.get("done") or "phase" not in row:
                continue
            out.setdefault(int(row["phase"]), []).append(Window(
                int(row["pid"]), float(row["measure_start"]), float(row["measure_end"]),
                scheduled=int(row.get("scheduled", 0)), sent=int(row.get("sent", 0)),
                dropped=int(row.get("dropped_full", 0)) + int(row.get("dropped_late", 0)),
                late=int(row.get("dropped_late", 0)),
                lag_max_ms=float(row.get("lag_max_ms", 0.0))))
    return out


def _done_count(folder: Path) -> int:
    n = 0
    for path in folder.glob("phases-*.jsonl"):
        try:
            n += sum(1 for line in path.read_text().splitlines() if '"done": true' in line)
        except OSError:
            pass
    return n


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT Locust (its workers follow), then the process group we started, if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1][-300:] if lines else "empty log"


def target_answers(url: str) -> bool:
    """Whether something accepts TCP connections at ``url``'s host and port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return tcp_answers(parts.hostname or "127.0.0.1", port)
