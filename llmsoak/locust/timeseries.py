"""Per-minute LLM time series: aggregation on every node, one CSV writer (master or local runner).

Users on a local runner or a worker call :meth:`LLMState.record` for each request; the request
lands in the window of its *completion* minute (``floor(t / 60) * 60``) for its pattern, and in the
pattern's cumulative window. Workers ship their minute windows to the master inside Locust's own
``report_to_master`` payload (every 3 s) as mergeable histograms and clear them; the master merges
them with :meth:`LLMState.merge_report`. A minute is written once it is ``grace_s`` past its end,
so the last worker reports have arrived; a report for an already written minute (a worker that
was blocked) is folded into the oldest open minute and counted in ``late_reports``.

Memory is bounded: only open minutes are held (two or three), plus one cumulative window per
pattern, whose histograms have at most a few hundred 1 % buckets each. The CSV grows by one row
per pattern per minute plus an ``all`` row: 168 h × 60 × 6 rows × ~150 bytes ≈ 9 MB, whatever
the request rate.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

from llmsoak.formats import LLM_LATENCY_COLUMNS_MS, LLM_TIMESERIES_COLUMNS
from llmsoak.locust.metrics import LogHistogram, Window
from llmsoak.locust.results import RequestResult

COLUMNS = LLM_TIMESERIES_COLUMNS
"""llm_timeseries.csv header (docs/formats.md); timestamps are minute starts in Unix seconds."""

REPORT_KEY = "llmsoak_minutes"
"""Key of the worker → master payload inside Locust's report_to_master data."""

ARRIVALS_REPORT_KEY = "llmsoak_arrivals"
"""Key of the open-loop arrivals' minutes (schedule, drops, lag) in the same payload."""

MINUTE_S = 60

_STATE_ATTR = "_llmsoak_state"


def minute_of(t: float) -> int:
    return int(t // MINUTE_S) * MINUTE_S


class LLMState:
    """LLM metrics of this node: open minute windows, cumulative windows, last written rows.

    ``role`` is ``"local"``, ``"worker"`` or ``"master"``. All times are Unix seconds.
    Read it through :meth:`snapshot` (see :func:`get_llm_state`).
    """

    def __init__(self, patterns: list[str] | tuple[str, ...] = (), *, role: str = "local",
                 grace_s: float = 10.0) -> None:
        self.role = role
        self.grace_s = grace_s
        self.patterns: list[str] = list(patterns)
        self.windows: dict[tuple[int, str], Window] = {}
        self.cumulative: dict[str, Window] = {}
        self.users: dict[str, int] = {}
        """Users per pattern, last sampled (master: as reported by the workers)."""
        self.users_by_minute: dict[tuple[int, str], int] = {}
        self.last_rows: dict[str, dict] = {}
        """The last written CSV row per pattern (and "all"), as a dict of COLUMNS."""
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.written_until: int | None = None
        """End of the last written minute; minutes before it are closed."""
        self.late_reports = 0
        self.arrivals_on = False
        """Whether this run's load is open-loop arrivals (the ``arrivals_*`` columns are filled)."""
        self.arrival_minutes: dict[int, ArrivalsWindow] = {}

    # -- recording (local runner, workers) -------------------------------------------------
    def _pattern(self, pattern: str) -> None:
        if pattern not in self.patterns:
            self.patterns.append(pattern)

    def record(self, pattern: str, result: RequestResult, now: float | None = None) -> None:
        """Count one finished request (success or failure) of ``pattern``."""
        now = time.time() if now is None else now
        if self.started_at is None:
            self.started_at = now
        minute = minute_of(now)
        if self.written_until is not None and minute < self.written_until:
            minute = self.written_until
        key = (minute, pattern)
        window = self.windows.get(key)
        if window is None:
            self._pattern(pattern)
            window = self.windows[key] = Window()
        window.add_result(result)
        if self.role != "worker":
            cumulative = self.cumulative.get(pattern)
            if cumulative is None:
                cumulative = self.cumulative[pattern] = Window()
            cumulative.add_result(result)

    # -- open-loop arrivals (the profile's arrivals section) ----------------------------------
    def _arrivals_window(self, minute: int) -> ArrivalsWindow:
        if self.written_until is not None and minute < self.written_until:
            minute = self.written_until
        window = self.arrival_minutes.get(minute)
        if window is None:
            window = self.arrival_minutes[minute] = ArrivalsWindow()
        return window

    def record_arrivals(self, *, scheduled: int = 0, dropped: int = 0, lag_ms: float | None = None,
                        now: float | None = None) -> None:
        """Count arrivals whose time came, arrivals dropped, and one send's lag (ms)."""
        now = time.time() if now is None else now
        self.arrivals_on = True
        if self.started_at is None:
            self.started_at = now
        window = self._arrivals_window(minute_of(now))
        window.scheduled += scheduled
        window.dropped += dropped
        if lag_ms is not None:
            window.lag.add(max(lag_ms, 0.001))
            window.lag_max_ms = max(window.lag_max_ms, lag_ms)

    def take_arrivals_report(self) -> list:
        """Worker: serialise and clear the arrivals' minutes."""
        out = [[minute, w.scheduled, w.dropped, w.lag.serialize(), w.lag_max_ms]
               for minute, w in self.arrival_minutes.items()]
        self.arrival_minutes.clear()
        return out

    def merge_arrivals_report(self, rows: list) -> None:
        """Master: merge a worker's :meth:`take_arrivals_report` rows."""
        self.arrivals_on = True
        for minute, scheduled, dropped, lag, lag_max_ms in rows:
            if self.started_at is None:
                self.started_at = float(minute)
            window = self._arrivals_window(int(minute))
            window.scheduled += int(scheduled)
            window.dropped += int(dropped)
            window.lag.merge(lag)
            window.lag_max_ms = max(window.lag_max_ms, float(lag_max_ms))

    # -- worker → master ---------------------------------------------------------------------
    def take_report(self) -> list:
        """Worker: serialise and clear the minute windows (deltas since the last report)."""
        out = [[minute, pattern, w.serialize()] for (minute, pattern), w in self.windows.items()]
        self.windows.clear()
        return out

    def merge_report(self, rows: list) -> None:
        """Master: merge a worker's :meth:`take_report` rows."""
        for minute, pattern, data in rows:
            minute = int(minute)
            if self.started_at is None:
                self.started_at = float(minute)
            if self.written_until is not None and minute < self.written_until:
                minute = self.written_until
                self.late_reports += 1
            key = (minute, pattern)
            window = self.windows.get(key)
            if window is None:
                self._pattern(pattern)
                window = self.windows[key] = Window()
            window.merge(data)
            cumulative = self.cumulative.get(pattern)
            if cumulative is None:
                cumulative = self.cumulative[pattern] = Window()
            cumulative.merge(data)

    # -- users ------------------------------------------------------------------------------
    def sample_users(self, users_by_pattern: dict[str, int], now: float | None = None) -> None:
        """Remember the current users per pattern (the row's ``users`` is the minute's maximum)."""
        now = time.time() if now is None else now
        minute = minute_of(now)
        for pattern, n in users_by_pattern.items():
            self._pattern(pattern)
            key = (minute, pattern)
            self.users_by_minute[key] = max(self.users_by_minute.get(key, 0), n)
        self.users = dict(users_by_pattern)

    # -- closing minutes into rows ------------------------------------------------------------
    def close_minutes(self, now: float | None = None, *, final: bool = False) -> list[dict]:
        """Rows (dicts of COLUMNS) for every minute that is complete; all open ones if ``final``."""
        now = time.time() if now is None else now
        if self.started_at is None:
            return []
        first = self.written_until if self.written_until is not None else minute_of(self.started_at)
        if final:
            last_open = max([m for m, _ in self.windows] + list(self.arrival_minutes) + [minute_of(now)])
            end = last_open + MINUTE_S
        else:
            end = minute_of(now - self.grace_s)
        rows: list[dict] = []
        for minute in range(first, end, MINUTE_S):
            rows.extend(self._rows_for(minute, now))
        if end > first:
            self.written_until = end
        return rows

    def _rows_for(self, minute: int, now: float) -> list[dict]:
        start = max(float(minute), self.started_at or minute)
        stop = min(float(minute + MINUTE_S), self.stopped_at or now, now)
        span_s = max(stop - start, 1.0)
        total = Window()
        users_total = 0
        rows = []
        for pattern in self.patterns:
            window = self.windows.pop((minute, pattern), None) or Window()
            users = self.users_by_minute.pop((minute, pattern), self.users.get(pattern, 0))
            users_total += users
            total.merge(window.serialize())
            rows.append(_row(minute, pattern, users, window, span_s))
        all_row = _row(minute, "all", users_total, total, span_s)
        arrivals = self.arrival_minutes.pop(minute, None)
        if self.arrivals_on:
            arrivals = arrivals or ArrivalsWindow()
            p95 = arrivals.lag.percentile(0.95)
            all_row.update(arrivals_scheduled=arrivals.scheduled, arrivals_dropped=arrivals.dropped,
                           lag_p95_ms=None if p95 is None else round(min(p95, arrivals.lag_max_ms), 3),
                           lag_max_ms=round(arrivals.lag_max_ms, 3) if arrivals.lag.count else None)
        rows.append(all_row)
        for row in rows:
            self.last_rows[row["pattern"]] = row
        # Forget user samples of minutes now closed (bounded even when no request ever came).
        for key in [k for k in self.users_by_minute if k[0] < minute + MINUTE_S]:
            del self.users_by_minute[key]
        return rows

    # -- the public read API ---------------------------------------------------------------------
    def snapshot(self) -> dict:
        """Per-pattern current and cumulative LLM metrics; see :func:`get_llm_state` for the schema."""
        now = time.time()
        elapsed = max((self.stopped_at or now) - (self.started_at or now), 1.0)
        patterns = {}
        all_window = Window()
        for pattern in self.patterns:
            cumulative = self.cumulative.get(pattern) or Window()
            all_window.merge(cumulative.serialize())
            patterns[pattern] = {
                "users": self.users.get(pattern, 0),
                "current": self.last_rows.get(pattern),
                "cumulative": cumulative.summary(elapsed),
            }
        return {
            "timestamp": now, "role": self.role, "started_at": self.started_at,
            "elapsed_s": round(elapsed, 3), "late_reports": self.late_reports,
            "patterns": patterns,
            "all": {"users": sum(self.users.values()), "current": self.last_rows.get("all"),
                    "cumulative": all_window.summary(elapsed)},
        }


class ArrivalsWindow:
    """One minute of open-loop arrivals: how many came due, how many were dropped, send lags."""

    __slots__ = ("scheduled", "dropped", "lag", "lag_max_ms")

    def __init__(self) -> None:
        self.scheduled = 0
        self.dropped = 0
        self.lag = LogHistogram()
        self.lag_max_ms = 0.0


def get_llm_state(environment) -> LLMState:
    """This node's :class:`LLMState`, kept on the Locust ``environment`` (created on first use).

    ``get_llm_state(env).snapshot()`` returns a JSON-ready dict, stable for the web UI::

        {"timestamp": unix_s, "role": "local"|"master"|"worker", "started_at": unix_s|None,
         "elapsed_s": float, "late_reports": int,
         "patterns": {"active": {"users": int,
                                 "current": ROW | None,      # the last written minute
                                 "cumulative": SUMMARY}, ...},
         "all": {"users": int, "current": ROW | None, "cumulative": SUMMARY}}

    ROW is one llm_timeseries.csv row as a dict (columns in docs/formats.md). SUMMARY has
    ``requests``, ``failures``, ``failures_by_class`` {http, timeout, disconnect, malformed,
    empty, other}, ``ttft_p50_ms``, ``ttft_p95_ms``, ``ttft_p99_ms``, ``itl_p50_ms``,
    ``itl_p95_ms``, ``tpot_p50_ms``, ``e2e_p50_ms``, ``e2e_p95_ms``, ``e2e_p99_ms`` (None when no
    data), ``input_tokens``, ``output_tokens``, ``tokens_per_s`` (output tokens over the elapsed
    run) and ``output_tokens_approximate`` (True when some counts are chunks, not server usage).
    On a master the numbers cover all workers.
    """
    state = getattr(environment, _STATE_ATTR, None)
    if state is None:
        state = LLMState()
        setattr(environment, _STATE_ATTR, state)
    return state


def _row(minute: int, pattern: str, users: int, w: Window, span_s: float) -> dict:
    s = w.summary(span_s)
    row = {"timestamp": minute, "pattern": pattern, "users": users, "requests": w.requests,
           "failures": w.failures_total}
    for cls, n in w.failures.items():
        row[f"fail_{cls}"] = n
    for col in LLM_LATENCY_COLUMNS_MS:
        row[col] = s[col]
    row["input_tokens"] = w.input_tokens
    row["output_tokens"] = w.output_tokens
    row["tokens_per_s"] = s["tokens_per_s"]
    return row


class TimeseriesCSV:
    """Appends rows to llm_timeseries.csv: header once, every row flushed (a crash loses none)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.rows_written = 0

    def append(self, rows: list[dict]) -> None:
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(COLUMNS)
            for row in rows:
                writer.writerow(["" if row.get(c) is None else row.get(c) for c in COLUMNS])
            fh.flush()
        self.rows_written += len(rows)
