"""Open-loop arrivals as the load of a run: the profile's ``arrivals`` section (docs/profiles.md).

With ``arrivals: {rate, distribution, burstiness, max_in_flight, max_lag_s}`` the users of the
run are replaced by one open-loop driver per Locust process (:class:`ArrivalsUser`, built on
``llmsoak capacity``'s :class:`~llmsoak.capacity.locust_side.CapacityUser`): requests go out on a
schedule (llmsoak.locust.arrivals: constant, Poisson or gamma) whether or not earlier replies came
back, each one turn of a session drawn from the profile's patterns (prompt sources, turns,
history) and sent through the chat user's request code, so Locust's stats and the LLM metrics
are the usual ones. The rate and ``max_in_flight`` are split across ``--processes``: the master
tells the workers how many they are and when to start (:data:`START_MESSAGE`) once all have
their driver. An arrival due while ``max_in_flight`` requests are outstanding, or reached more
than ``max_lag_s`` late, is dropped and counted, never sent late; every send's lag is recorded.
Both go to llm_timeseries.csv (``arrivals_scheduled``, ``arrivals_dropped``, ``lag_p95_ms``,
``lag_max_ms`` on the ``all`` row, through llmsoak.locust.timeseries).

:class:`ArrivalsShape` keeps one driver per process for ``run.duration`` (or ``-t``).
"""

from __future__ import annotations

import collections
import logging
import random
import time
from collections.abc import Iterator

import gevent
from gevent.event import AsyncResult
from locust.runners import MasterRunner, WorkerRunner

from llmsoak.locust import internals
from llmsoak.locust.arrivals import OpenLoop, arrival_times
from llmsoak.locust.open_loop_sessions import OpenLoopSessions
from llmsoak.locust.shapes import ProfileShape
from llmsoak.locust.timeseries import get_llm_state
from llmsoak.locust.user_classes import class_attributes
from llmsoak.locust.users import LLMChatUser
from llmsoak.profile import LoadConfig, Profile

START_MESSAGE = "llmsoak_arrivals_start"
START_DELAY_S = 0.5
"""Master → workers: start this long after the message, so every worker starts at the same time."""
START_TIMEOUT_S = 60.0
"""A worker that hears nothing from the master this long starts alone (as worker 0 of 1)."""
REPORT_INTERVAL_S = 1.0
"""How often the driver moves its counts of scheduled and dropped arrivals into the time series."""
USER_CLASS = "ArrivalsUser"

_start = [AsyncResult()]
"""(start time, number of processes) from the master; a fresh one for every test (web UI restarts)."""
_taken = [False]


def share(total: int, workers: int, slot: int) -> int:
    """Process ``slot``'s part of ``total`` over ``workers`` processes (at least 1)."""
    return max(1, total // workers + (1 if slot < total % workers else 0))


class ArrivalsUser(OpenLoopSessions, LLMChatUser):
    """One per Locust process: sends the profile's arrivals for the whole run."""

    abstract = True
    arrivals = None
    """The profile's ArrivalsConfig."""
    session_prefix = "llmsoak-arrivals"

    def wait_time(self) -> float:
        return 0.0

    def drive(self) -> None:
        if _taken[0]:  # one driver per process: a second user (uneven dispatch) only waits
            self._sleep(3600)
            return
        _taken[0] = True
        cfg = self.arrivals
        runner = self.environment.runner
        index = getattr(runner, "worker_index", 0) or 0
        if isinstance(runner, WorkerRunner):
            try:
                start, workers, slot = _start[0].get(timeout=START_TIMEOUT_S)
            except gevent.Timeout:
                logging.getLogger("llmsoak.shape").warning(
                    "arrivals: no start message from the master in %.0f s; this worker sends the whole rate alone",
                    START_TIMEOUT_S)
                start, workers, slot = time.time(), 1, 0
        else:
            start, workers, slot = time.time() + 0.1, 1, 0
        if slot is None or not 0 <= slot < workers:
            slot = index % workers
        max_in_flight = share(cfg.max_in_flight, workers, slot)
        self.max_idle_sessions = max_in_flight
        self._idle = collections.deque()
        state = get_llm_state(self.environment)
        state.arrivals_on = True

        def send(scheduled_at: float) -> None:
            state.record_arrivals(lag_ms=max(0.0, time.time() - scheduled_at) * 1000.0)
            self.one_turn(0, scheduled_at)

        loop, times = open_loop_for(cfg, send, workers=workers, slot=slot, rng=random.Random())
        reporter = gevent.spawn(_report_counts, loop, state)
        try:
            loop.run(times, float("inf"), start=start, should_stop=lambda: internals.user_is_stopping(self))
        finally:
            reporter.kill()
            _move_counts(loop, state)
        self._sleep(3600)  # a graceful stop ends the user here at once


def open_loop_for(cfg, send, *, workers: int, slot: int, rng: random.Random) -> tuple[OpenLoop, Iterator[float]]:
    """The sending loop and the arrival times (offsets, endless) of process ``slot`` of ``workers``
    for the profile's ArrivalsConfig ``cfg``."""
    loop = OpenLoop(send, max_in_flight=share(cfg.max_in_flight, workers, slot), max_lag_s=cfg.max_lag_s)
    times = arrival_times(cfg.rate, cfg.distribution, burstiness=cfg.burstiness, workers=workers,
                          index=slot, rng=rng)
    return loop, times


def _report_counts(loop: OpenLoop, state) -> None:
    while True:
        gevent.sleep(REPORT_INTERVAL_S)
        _move_counts(loop, state)


def _move_counts(loop: OpenLoop, state) -> None:
    """Add the arrivals scheduled and dropped since the last call to this minute of the series."""
    st = loop.stats
    reported = getattr(loop, "_reported", (0, 0))
    now = (st.scheduled, st.dropped)
    if now != reported:
        state.record_arrivals(scheduled=now[0] - reported[0], dropped=now[1] - reported[1])
        loop._reported = now


def user_classes(profile: Profile, prompt_source) -> dict[str, type]:
    """{name: class} for the locustfile's globals: the driver and its :class:`ArrivalsShape`."""
    first = profile.patterns[0]
    attrs = class_attributes(profile, first, scale=1, prompt_source=prompt_source)
    cfg = profile.arrivals
    attrs.update(fixed_count=0, weight=1, abstract=False, __module__=__name__, arrivals=cfg,
                 patterns=tuple(profile.patterns),
                 pattern_weights=tuple(1.0 if spec.users is not None else float(spec.weight if spec.weight is not None else 1)
                                       for spec in profile.patterns),
                 # FastHttpSession's connection pool: as many as may be in flight, or requests queue unseen
                 concurrency=int(cfg.max_in_flight) + 1)
    user = type(USER_CLASS, (ArrivalsUser,), attrs)
    user.tasks = [ArrivalsUser.drive]  # not the inherited chat_session
    shape = type("ArrivalsShape", (ArrivalsShape,), {
        "abstract": False, "__module__": __name__, "arrivals": cfg,
        "load": LoadConfig(shape="constant", users=1, spawn_rate=1.0),
        "run_duration_s": profile.run.duration_s, "events_path": profile.run.events_path})
    return {USER_CLASS: user, "ArrivalsShape": shape}


class ArrivalsShape(ProfileShape):
    """One :class:`ArrivalsUser` per Locust process until ``run.duration`` (or ``-t``)."""

    abstract = True
    arrivals = None

    def capture_common_options(self, options) -> None:
        if getattr(options, "num_users", None) or getattr(options, "spawn_rate", None):
            logging.getLogger("llmsoak.shape").warning(
                "the profile's arrivals section sets the load: -u/--users and -r/--spawn-rate are ignored "
                "(-t/--run-time still ends the run)")

    def target(self, t_s: float) -> tuple[int, float, str]:
        runner = getattr(self, "runner", None)
        processes = max(1, int(getattr(runner, "worker_count", 1) or 1)) if isinstance(runner, MasterRunner) else 1
        return processes, float(processes), "arrivals"

    def _maybe_log(self, users: int, rate: float, stage: str, wall_s: float) -> None:
        if self._logged_users == users:
            return
        self._logged_users = users
        cfg = self.arrivals
        self._emit(f"arrivals: {cfg.rate:g} req/s {cfg.distribution} over {users} "
                   f"process{'es' if users != 1 else ''}, max_in_flight {cfg.max_in_flight}")

    def _end(self, why: str) -> None:
        if not self._ended:
            self._ended = True
            self._emit(f"arrivals: end ({why})")


def init_environment(environment) -> None:
    """Workers start when the master says so, with the number of processes sharing the rate."""
    runner = environment.runner

    def _reset(**_kw) -> None:  # a test started again (web UI) gets a driver and a start of its own
        _taken[0] = False
        _start[0] = AsyncResult()

    environment.events.test_stop.add_listener(_reset)
    if isinstance(runner, WorkerRunner):
        runner.register_message(START_MESSAGE, lambda msg, **_kw: _start[0].set(
            (float(msg.data["at"]), max(1, int(msg.data["workers"])), msg.data.get("slot"))))
    elif isinstance(runner, MasterRunner):
        def _go(**_kw) -> None:
            # Each worker its own slot 0..N-1 (Locust's worker_index grows as workers reconnect).
            at = time.time() + START_DELAY_S
            states = internals.worker_states(runner)
            ids = sorted(i for i, state in states.items() if state in ("spawning", "running")) or sorted(states)
            for slot, client_id in enumerate(ids):
                runner.send_message(START_MESSAGE, {"at": at, "workers": len(ids), "slot": slot}, client_id=client_id)
        environment.events.spawning_complete.add_listener(_go)
