"""What runs inside Locust during ``llmsoak capacity``: the plan's phases, one record per request.

``llmsoak capacity`` (llmsoak.capacity.sweep) writes a *plan* (JSON, path in
``$LLMSOAK_CAPACITY_PLAN``) and starts ``locustfiles/capacity.py``. Two modes:

- ``loop``: one :class:`CapacityUser` per process runs the plan's phases in order: a phase is an
  open-loop rate (llmsoak.locust.arrivals.OpenLoop: constant, Poisson or gamma arrivals, the rate
  split exactly across ``--processes``) or a closed-loop concurrency (ClosedLoop: 1 = the
  synchronous rate, ``max_in_flight`` = the maximum throughput). Each arrival is one turn of a
  session (the profile's patterns, by weight: prompt sources, turns, lengths, history); think
  times do not apply (the schedule decides when requests go out).
- ``users``: the profile's own user classes (closed loop, think times and all) with a recording
  :meth:`send`: the driver runs Locust with ``-u N`` to measure N users.

Each process appends ``requests-<pid>.csv`` (:data:`REQUEST_COLUMNS`) and, in ``loop`` mode,
``phases-<pid>.jsonl`` (one line per phase: its windows and the generator's counts, then a
``{"done": true}`` line) under the plan's ``records_dir``. With ``--processes`` the master tells
the workers when to start (so the rate split lines up) once all are spawned.
"""

from __future__ import annotations

import collections
import csv
import json
import os
import random
import sys
import time
from pathlib import Path

import gevent
from gevent.event import AsyncResult
from locust import task
from locust.runners import MasterRunner, WorkerRunner

from llmsoak.capacity.plan import PLAN_ENV, REQUEST_COLUMNS
from llmsoak.errors import EXIT_BAD_INPUT
from llmsoak.locust.arrivals import ClosedLoop, OpenLoop, arrival_times
from llmsoak.locust.open_loop_sessions import OpenLoopSessions
from llmsoak.locust.user_classes import build_user_classes, class_attributes
from llmsoak.locust.users import LLMChatUser

START_MESSAGE = "llmsoak_capacity_start"
START_DELAY_S = 0.5
"""Master → workers: start this long after the message, so every worker starts at the same time."""

_start = AsyncResult()
_plan_taken = [False]


def load_plan() -> dict:
    path = os.environ.get(PLAN_ENV)
    if not path:
        _die(f"no capacity plan: ${PLAN_ENV} is not set (this locustfile is started by `llmsoak capacity`)")
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        _die(f"${PLAN_ENV}={path}: cannot read the plan: {err}")
    raise AssertionError  # unreachable


def _die(message: str) -> None:
    sys.stderr.write(f"llmsoak: {message}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_BAD_INPUT)


class Recorder:
    """Appends one row per request to ``<records_dir>/requests-<pid>.csv`` (flushed per row:
    the driver may stop Locust at any moment)."""

    def __init__(self, records_dir: str) -> None:
        self.dir = Path(records_dir)
        self._fh = None
        self._writer = None

    def _open(self):
        if self._fh is None:
            path = self.dir / f"requests-{os.getpid()}.csv"
            new = not path.exists()
            self._fh = open(path, "a", newline="", buffering=1)  # noqa: SIM115 - lives as long as the process
            self._writer = csv.writer(self._fh)
            if new:
                self._writer.writerow(REQUEST_COLUMNS)
        return self._writer

    def request(self, phase: int, pattern: str, t_sched: float, lag_s: float, result, turn: int | None = None) -> None:
        itl = (sum(result.itl_ms) / len(result.itl_ms)) if result.itl_ms else None
        self._open().writerow((phase, pattern, f"{t_sched:.4f}", f"{lag_s * 1000:.2f}", f"{time.time():.4f}",
                               1 if result.ok else 0, result.status, result.failure_class or "",
                               _ms(result.ttft_ms), _ms(result.e2e_ms), _ms(result.tpot_ms), _ms(itl),
                               result.output_token_count,
                               "" if result.input_tokens is None else result.input_tokens,
                               "" if turn is None else turn,
                               "" if result.ok else result.failure_message[:300]))
        self._fh.flush()

    def phase(self, row: dict) -> None:
        with open(self.dir / f"phases-{os.getpid()}.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


class CapacityUser(OpenLoopSessions, LLMChatUser):
    """One per process in ``loop`` mode: runs the plan's phases; each arrival is one turn."""

    abstract = True
    plan: dict = {}
    patterns: tuple = ()
    pattern_weights: tuple = ()
    recorder: Recorder | None = None
    session_prefix = "llmsoak-capacity"

    def wait_time(self) -> float:
        return 0.0

    @task
    def run_plan(self) -> None:
        if _plan_taken[0]:  # one plan per process: a second user (uneven dispatch) only waits
            self._sleep(3600)
            return
        _plan_taken[0] = True
        plan = self.plan
        runner = self.environment.runner
        index, workers = getattr(runner, "worker_index", 0) or 0, int(plan.get("workers") or 1)
        if workers > 1:
            try:
                start = _start.get(timeout=60.0)
            except gevent.Timeout:
                start = time.time()
        else:
            start = time.time() + 0.1
        self._idle = collections.deque()
        seed = plan.get("seed")
        self.arrival_rng = random.Random(None if seed is None else f"{seed}/arrivals/{index}")
        for phase in plan["phases"]:
            start = max(start, time.time())
            self._run_phase(phase, start, index, min(index, workers - 1), workers)
            start = start + phase["warmup_s"] + phase["measure_s"] + 0.2
        self.recorder.phase({"pid": os.getpid(), "worker": index, "done": True})
        # The driver stops Locust once every process is done; waiting through Locust's wait()
        # lets that stop end the user at once instead of after --stop-timeout.
        self._sleep(3600)

    def _run_phase(self, phase: dict, start: float, index: int, slot: int, workers: int) -> None:
        plan = self.plan
        span = phase["warmup_s"] + phase["measure_s"]
        number = phase["index"]
        row = {"pid": os.getpid(), "worker": index, "phase": number, "kind": phase["kind"],
               "value": phase["value"], "start": start, "measure_start": start + phase["warmup_s"],
               "measure_end": start + span}

        def send(scheduled_at: float) -> None:
            self.one_turn(number, scheduled_at)

        if phase["kind"] == "rate":
            loop = OpenLoop(send, max_in_flight=max(1, plan["max_in_flight"] // workers + (slot < plan["max_in_flight"] % workers)),
                            max_lag_s=plan["max_lag_s"])
            times = arrival_times(phase["value"], plan["distribution"], burstiness=plan.get("burstiness", 1.0),
                                  workers=workers, index=slot, rng=self.arrival_rng)
            stats = loop.run(times, span, start=start)
            row["drained"] = loop.drain(plan["drain_s"])
        else:
            total = int(phase["value"])
            mine = total // workers + (1 if slot < total % workers else 0)
            gevent.sleep(max(0.0, start - time.time()))
            if mine:
                stats = ClosedLoop(send, concurrency=mine).run(span, start=start)
            else:
                gevent.sleep(max(0.0, start + span - time.time()))
                stats = ClosedLoop(send, concurrency=1).stats
            row["drained"] = True
        row.update(scheduled=stats.scheduled, sent=stats.sent, dropped_full=stats.dropped_full,
                   dropped_late=stats.dropped_late, peak_in_flight=stats.peak_in_flight,
                   lag_max_ms=round(stats.lag_max_s * 1000, 2))
        self.recorder.phase(row)

    @property
    def max_idle_sessions(self) -> int:
        return int(self.plan["max_in_flight"])

    def record_turn(self, phase: int, pattern: str, scheduled_at: float, lag_s: float, result, turn: int) -> None:
        self.recorder.request(phase, pattern, scheduled_at, lag_s, result, turn=turn)


class _RecordingMixin:
    """``users`` mode: the profile's user classes, each request also recorded (phase from the plan)."""

    recorder: Recorder | None = None
    phase_index: int = 0

    def send(self, messages, session_id):
        t = time.time()
        result = super().send(messages, session_id)
        self.recorder.request(self.phase_index, self.pattern.name, t, 0.0, result)
        return result


def user_classes(profile, prompt_source, plan: dict) -> dict[str, type]:
    """The Locust user classes of ``plan`` (name → class) for the locustfile's globals."""
    recorder = Recorder(plan["records_dir"])
    if plan["mode"] == "users":
        out = {}
        for name, cls in build_user_classes(profile, prompt_source=prompt_source).items():
            rec_name = f"Recording{name}"
            # A pattern's fixed ``users`` count becomes its weight: the search sets the total
            # (-u N) and the mix keeps the profile's proportions.
            fixed = int(getattr(cls, "fixed_count", 0) or 0)
            out[rec_name] = type(rec_name, (_RecordingMixin, cls), {
                "recorder": recorder, "phase_index": int(plan["phases"][0]["index"]),
                "fixed_count": 0, "weight": fixed or cls.weight,
                "__module__": __name__, "abstract": False})
        return out
    first = profile.patterns[0]
    attrs = class_attributes(profile, first, scale=1, prompt_source=prompt_source)
    attrs.update(fixed_count=0, weight=1, abstract=False, __module__=__name__, plan=plan, recorder=recorder,
                 patterns=tuple(profile.patterns),
                 pattern_weights=tuple(1.0 if spec.users is not None else float(spec.weight if spec.weight is not None else 1)
                                       for spec in profile.patterns),
                 # FastHttpSession's connection pool: as many as may be in flight, or requests queue unseen
                 concurrency=int(plan["max_in_flight"]) + 1)
    return {"CapacityUser": type("CapacityUser", (CapacityUser,), attrs)}


def init_environment(environment, **_kwargs) -> None:
    """Workers start when the master says so (once every worker has its user)."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message(START_MESSAGE, lambda msg, **_kw: _start.set(float(msg.data["at"])))
    elif isinstance(runner, MasterRunner):
        def _go(**_kw) -> None:
            runner.send_message(START_MESSAGE, {"at": time.time() + START_DELAY_S})
        environment.events.spawning_complete.add_listener(_go)
