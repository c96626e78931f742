"""``register(environment)``: attach llmsoak's LLM metrics, time series and memory bounds to Locust.

Call it from an ``init`` listener (the locustfile does). It works the same on a local runner,
a master and its workers (``--processes N`` or ``--master``/``--worker``):

* workers put their per-minute LLM windows into Locust's ``report_to_master`` payload
  (key ``llmsoak_minutes``), the master merges them in ``worker_report``;
* the master (or the local runner) samples users per pattern every 5 s, writes each finished
  minute to ``llm_timeseries.csv`` and the rest at ``quitting``;
* llmsoak.locust.bounded_memory trims the master's per-second counters and chart history.

The live numbers are read through :func:`llmsoak.locust.timeseries.get_llm_state` — the API the
web UI renders.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from pathlib import Path

import gevent
from locust.runners import MasterRunner, WorkerRunner

from llmsoak.locust import bounded_memory, internals
from llmsoak.locust.timeseries import ARRIVALS_REPORT_KEY, REPORT_KEY, LLMState, TimeseriesCSV, get_llm_state
from llmsoak.locust.user_classes import PATTERN_OF_CLASS
from llmsoak.rundir import RunDir

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 5.0
"""How often the master/local runner samples users per pattern and closes finished minutes."""


def add_arguments(parser) -> None:
    """Locust ``init_command_line_parser`` hook: ``--llm-timeseries PATH``."""
    parser.add_argument(
        "--llm-timeseries", type=str, default=None, include_in_web_ui=False,
        help="CSV the master appends per-minute LLM metrics to (default: $LLMSOAK_RUN_DIR/"
             "llm_timeseries.csv, else ./llm_timeseries.csv)")


def timeseries_path(options) -> Path:
    """Where this run's llm_timeseries.csv goes (the option, else LLMSOAK_RUN_DIR, else cwd)."""
    explicit = getattr(options, "llm_timeseries", None) if options is not None else None
    if explicit:
        return Path(explicit)
    return RunDir(Path(os.environ.get("LLMSOAK_RUN_DIR") or ".")).llm_timeseries


def role(runner) -> str:
    """``"master"``, ``"worker"`` or ``"local"``: what this Locust process is."""
    if isinstance(runner, MasterRunner):
        return "master"
    if isinstance(runner, WorkerRunner):
        return "worker"
    return "local"


def users_by_pattern(runner) -> dict[str, int]:
    """Current users per pattern; on a master, as the workers last reported them."""
    out: dict[str, int] = {}
    for class_name, n in internals.users_per_class(runner).items():
        pattern = PATTERN_OF_CLASS.get(class_name)
        if pattern is not None:
            out[pattern] = out.get(pattern, 0) + n
    return out


def write_final_stats_csv(environment) -> None:
    """Rewrite ``--csv``'s ``_stats.csv`` and ``_failures.csv`` once the run is over.

    Locust rewrites those files every second from a greenlet that is not run again after the
    users stop, so they can miss the last second (requests that finished during a graceful
    stop). Written atomically with Locust's own CSV formatter, so the columns are Locust's.
    """
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    if not prefix:
        return
    requests_csv, failures_csv = internals.stats_csv_writers(environment)
    for suffix, write in (("_stats.csv", requests_csv), ("_failures.csv", failures_csv)):
        path = Path(prefix + suffix)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                write(csv.writer(fh))
            os.replace(tmp, path)
        except OSError as exc:
            logger.error("llmsoak: cannot write %s: %s", path, exc)


def register(environment, patterns: list[str] | tuple[str, ...] = ()) -> LLMState:
    """Attach every llmsoak listener to ``environment`` (whose runner exists: call from ``init``)."""
    runner = environment.runner
    state = get_llm_state(environment)
    state.role = role(runner)
    for name in patterns:
        if name not in state.patterns:
            state.patterns.append(name)
    events = environment.events

    if state.role == "worker":
        def on_report_to_master(client_id, data, **_kw):
            data[REPORT_KEY] = state.take_report()
            if state.arrival_minutes:
                data[ARRIVALS_REPORT_KEY] = state.take_arrivals_report()
        events.report_to_master.add_listener(on_report_to_master)
        return state

    if state.role == "master":
        def on_worker_report(client_id, data, **_kw):
            rows = data.get(REPORT_KEY)
            if rows:
                state.merge_report(rows)
            arrivals = data.get(ARRIVALS_REPORT_KEY)
            if arrivals:
                state.merge_arrivals_report(arrivals)
        events.worker_report.add_listener(on_worker_report)

    writer = TimeseriesCSV(timeseries_path(environment.parsed_options))

    def on_test_start(**_kw):
        state.stopped_at = None
        if state.started_at is None:
            state.started_at = time.time()

    def on_test_stop(**_kw):
        state.stopped_at = time.time()

    def flush(final: bool) -> None:
        try:
            writer.append(state.close_minutes(time.time(), final=final))
        except OSError as exc:  # a full disk must not kill the load test; say it once per minute
            logger.error("llmsoak: cannot write %s: %s", writer.path, exc)

    def sampler() -> None:
        while True:
            gevent.sleep(SAMPLE_INTERVAL_S)
            if runner.state not in ("ready", "stopped") or state.started_at is not None:
                state.sample_users(users_by_pattern(runner))
                flush(final=False)

    def on_quitting(**_kw):
        if state.started_at is not None:
            flush(final=True)
        write_final_stats_csv(environment)

    events.test_start.add_listener(on_test_start)
    events.test_stop.add_listener(on_test_stop)
    events.quitting.add_listener(on_quitting)
    gevent.spawn(sampler)
    bounded_memory.install(environment)
    return state
