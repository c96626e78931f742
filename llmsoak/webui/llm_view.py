"""Reading the Locust side's LLM snapshot into flat per-pattern rows for tables, charts and alerts.

``get_llm_state(environment).snapshot()`` (llmsoak.locust.timeseries) gives, per pattern and for
``all``, ``users``, ``current`` (the last finished minute's llm_timeseries.csv row, or None) and
``cumulative`` (a summary: ``ttft_p95_ms``, ``failures_by_class``, ``tokens_per_s``, ...). This
module only reads that snapshot; it never reaches into the Locust side's state.
"""

from __future__ import annotations

from typing import Any

from llmsoak.locust.timeseries import get_llm_state

SUMMARY_FIELDS = ("requests", "failures", "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms", "itl_p50_ms",
                  "itl_p95_ms", "tpot_p50_ms", "e2e_p50_ms", "e2e_p95_ms", "e2e_p99_ms",
                  "input_tokens", "output_tokens", "tokens_per_s")


def read_snapshot(environment) -> tuple[dict | None, str | None]:
    """``(snapshot, None)`` from the Locust side, or ``(None, reason)`` when it is not there."""
    try:
        state = get_llm_state(environment)
    except Exception as err:  # noqa: BLE001 - the page must say why, not crash
        return None, f"no LLM state on this environment: {type(err).__name__}: {err}"
    if state is None:
        return None, "no LLM state yet: is the locustfile llmsoak's (locustfiles/llm_chat.py)?"
    try:
        return state.snapshot(), None
    except Exception as err:  # noqa: BLE001
        return None, f"LLM snapshot failed: {type(err).__name__}: {err}"


def _entries(snapshot: dict) -> list[tuple[str, dict]]:
    """``[(pattern, entry), ...]`` with the snapshot's top-level ``all`` entry last."""
    patterns = snapshot.get("patterns")
    out = [(str(k), v) for k, v in (patterns.items() if isinstance(patterns, dict) else ()) if isinstance(v, dict)]
    if isinstance(snapshot.get("all"), dict):
        out = [(k, v) for k, v in out if k != "all"] + [("all", snapshot["all"])]
    return out


def pattern_rows(snapshot: dict | None) -> list[dict]:
    """One flat row per pattern (``all`` last): users, cumulative counts and percentiles, recent values.

    Keys: ``pattern``, ``users``, every SUMMARY_FIELDS key from the cumulative window,
    ``failures_by_class`` (dict), ``error_rate`` (cumulative failed fraction, None before the first
    request), and ``current_*`` (TTFT percentiles, tokens/s, requests, failures, error rate) from
    the last finished minute, or from the whole run until the first minute has finished
    (``current_span`` says which: ``"minute"`` or ``"run"``).
    """
    if not isinstance(snapshot, dict):
        return []
    rows = []
    for name, entry in _entries(snapshot):
        cum = entry.get("cumulative") if isinstance(entry.get("cumulative"), dict) else {}
        cur = entry.get("current") if isinstance(entry.get("current"), dict) else None
        users = entry.get("users")
        row: dict[str, Any] = {"pattern": name, "users": int(users) if isinstance(users, (int, float)) else None}
        for key in SUMMARY_FIELDS:
            row[key] = cum.get(key)
        row["failures_by_class"] = dict(cum.get("failures_by_class") or {})
        requests = row.get("requests") or 0
        row["error_rate"] = (row.get("failures") or 0) / requests if requests else None
        recent = cur if cur is not None else cum
        row["current_span"] = "minute" if cur is not None else "run"
        for key in ("ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms", "e2e_p95_ms", "tokens_per_s", "requests", "failures"):
            row[f"current_{key}"] = recent.get(key)
        cur_requests = row.get("current_requests") or 0
        row["current_error_rate"] = (row.get("current_failures") or 0) / cur_requests if cur_requests else None
        rows.append(row)
    return rows


def overall_row(rows: list[dict]) -> dict | None:
    """The ``all`` row, or None when the snapshot has none."""
    for row in rows:
        if row["pattern"] == "all":
            return row
    return None


def format_failures(by_class: dict) -> str:
    """``{"http": 3, "timeout": 0}`` → ``"http 3"`` (zeros left out; ``"none"`` when all zero)."""
    parts = [f"{cls} {n}" for cls, n in sorted(by_class.items()) if n]
    return ", ".join(parts) if parts else "none"
