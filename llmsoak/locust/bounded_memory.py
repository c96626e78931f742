"""Keep the Locust master's (or local runner's) memory bounded over a 168-hour run.

Locust 2.47 keeps three things forever on the node that aggregates stats:

1. ``StatsEntry.num_reqs_per_sec`` / ``num_fail_per_sec``: one dict item per second per stats
   row (and for the Aggregated row). With ~30 rows (HTTP + LLM metric rows per pattern) a week is
   ~18 M items, gigabytes. Locust only reads the last ~12 s of them (``current_rps``,
   ``current_fail_per_sec``; ``total_rps`` uses ``num_requests`` and the start time), and merges
   worker reports by adding keys. **Trimmed** to the last :data:`KEEP_PER_SECOND_S` seconds.
2. ``RequestStats.history``: a row every 5 s for the charts (~1 KB each; 120,960 rows a week),
   sent whole to each browser page load and rendered in the HTML report. **Thinned**: once it
   exceeds :data:`MAX_HISTORY_ROWS`, the rows older than the newest :data:`KEEP_HISTORY_ROWS`
   keep every second row, so the charts still span the whole run at decreasing resolution.
3. ``RequestStats.errors``: one item per distinct error text. llmsoak's own failures are
   normalised (a bounded set), but other code may put ids in messages. **Capped** at
   :data:`MAX_ERRORS` rows: the least recently seen are dropped and their occurrences summed
   into one row ``"llmsoak: N occurrences of trimmed distinct errors"``.

Nothing else is touched: cumulative counts, histograms (``response_times``, ~300 keys at most)
and the response-time cache (Locust bounds it to ~20 s) stay exact, so the final report is
unchanged apart from the chart resolution. Workers need none of this: they send and reset their
stats every 3 s. What this module reaches into is Locust's, so it does so through
llmsoak.locust.internals.
"""

from __future__ import annotations

import logging
import time

import gevent
from locust.runners import WorkerRunner

from llmsoak.locust import internals

logger = logging.getLogger(__name__)

KEEP_PER_SECOND_S = 120
"""Seconds of per-second request/failure counters kept per stats row (Locust reads ~12)."""
MAX_HISTORY_ROWS = 4000
"""Chart history rows kept at most (a row every 5 s: the newest ~1 h at full resolution)."""
KEEP_HISTORY_ROWS = 720
"""Newest chart history rows never thinned (1 h at Locust's 5 s interval)."""
MAX_ERRORS = 500
"""Distinct error rows kept at most."""
TRIM_INTERVAL_S = 60.0
"""How often the trimming greenlet runs on the master/local runner."""

_TRIMMED_ERROR = "llmsoak: trimmed distinct errors"


def _trim_per_second(counter: dict, keep_from: int) -> int:
    if not counter:
        return 0
    # Keys are whole Unix seconds inserted in rising order, so old ones are at the front.
    stale = [t for t in counter if t < keep_from]
    for t in stale:
        del counter[t]
    return len(stale)


def trim_per_second(stats, now_s: float) -> int:
    """Drop per-second counters older than ``now_s - KEEP_PER_SECOND_S``; return items removed."""
    keep_from = int(now_s) - KEEP_PER_SECOND_S
    removed = 0
    for entry in internals.stats_rows(stats):
        for counter in internals.per_second_counters(entry):
            removed += _trim_per_second(counter, keep_from)
    return removed


def thin_history(stats) -> int:
    """Halve the resolution of the older chart history once it is too long; return rows removed."""
    history = internals.chart_history(stats)
    if len(history) <= MAX_HISTORY_ROWS:
        return 0
    old, recent = history[:-KEEP_HISTORY_ROWS], history[-KEEP_HISTORY_ROWS:]
    thinned = old[::2]
    # Replace in place: Locust and the web UI hold a reference to this very list.
    history[:] = thinned + recent
    return len(old) - len(thinned)


def cap_errors(stats) -> int:
    """Keep at most MAX_ERRORS distinct errors; fold the least recently seen into one row."""
    errors = internals.error_rows(stats)
    if len(errors) <= MAX_ERRORS:
        return 0
    by_age = sorted(errors.items(), key=lambda kv: kv[1].last_seen or 0)
    excess = len(errors) - MAX_ERRORS + 1  # +1 leaves room for the summary row
    folded = 0
    for key, err in by_age:
        if excess <= 0:
            break
        if err.error == _TRIMMED_ERROR:
            continue
        folded += err.occurrences
        del errors[key]
        excess -= 1
    summary_key, new_row = internals.error_row("llmsoak", "trimmed", _TRIMMED_ERROR)
    summary = errors.get(summary_key)
    if summary is None:
        summary = errors[summary_key] = new_row
    summary.occurrences += folded
    return folded


def trim(stats, now_s: float) -> dict:
    """One trimming pass over a RequestStats; returns what was removed (for logs and tests)."""
    return {"per_second_items": trim_per_second(stats, now_s),
            "history_rows": thin_history(stats),
            "error_occurrences_folded": cap_errors(stats)}


def install(environment) -> None:
    """Run :func:`trim` every TRIM_INTERVAL_S on this node (not on workers: they reset anyway)."""
    if isinstance(environment.runner, WorkerRunner):
        return

    def loop() -> None:
        while True:
            gevent.sleep(TRIM_INTERVAL_S)
            try:
                trim(environment.stats, time.time())
            except Exception:  # noqa: BLE001 - trimming must never stop a soak
                logger.exception("llmsoak: trimming Locust stats failed")

    gevent.spawn(loop)
