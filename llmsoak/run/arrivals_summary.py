"""The end-of-run line of a run whose load is open-loop arrivals (the profile's ``arrivals``).

Read from the ``all`` rows of llm_timeseries.csv (streamed: a week of minutes is fine): arrivals
whose time came, arrivals dropped (never sent late), and the lag between schedule and send, so a
saturated generator is visible on the terminal rather than mistaken for a slow server.
"""

from __future__ import annotations

import csv
from pathlib import Path


def _num(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def totals(llm_timeseries: Path) -> dict | None:
    """``{"scheduled", "dropped", "lag_p95_ms", "lag_max_ms"}`` over the run, or None when the
    file has no arrivals (no such section, or written before these columns). ``lag_p95_ms`` is
    the largest minute's p95 (an upper bound of the run's)."""
    scheduled = dropped = 0
    lag_p95 = lag_max = None
    seen = False
    try:
        with open(llm_timeseries, newline="", errors="replace") as fh:
            for row in csv.DictReader(fh):
                if row.get("pattern") != "all":
                    continue
                n = _num(row.get("arrivals_scheduled"))
                if n is None:
                    continue
                seen = True
                scheduled += int(n)
                dropped += int(_num(row.get("arrivals_dropped")) or 0)
                for name, value in (("p95", _num(row.get("lag_p95_ms"))), ("max", _num(row.get("lag_max_ms")))):
                    if value is None:
                        continue
                    if name == "p95":
                        lag_p95 = value if lag_p95 is None else max(lag_p95, value)
                    else:
                        lag_max = value if lag_max is None else max(lag_max, value)
    except OSError:
        return None
    if not seen:
        return None
    return {"scheduled": scheduled, "dropped": dropped, "lag_p95_ms": lag_p95, "lag_max_ms": lag_max}


def summary_line(figures: dict) -> str:
    scheduled, dropped = figures["scheduled"], figures["dropped"]
    share = f" ({100.0 * dropped / scheduled:.1f} %)" if scheduled else ""
    lag = ("no request sent" if figures["lag_max_ms"] is None
           else f"lag schedule→send p95 ≤ {figures['lag_p95_ms']:.1f} ms, max {figures['lag_max_ms']:.1f} ms")
    hint = " — the generator could not keep the schedule: drops are not server latency" if dropped else ""
    return f"arrivals: {scheduled} due, {dropped} dropped{share}; {lag}{hint}"
