"""Reading the Locust side's LLM snapshot into flat per-pattern rows for tables, charts and alerts.

``get_llm_state(environment).snapshot()`` (llmsoak.locust.plugin) gives per-pattern current and
cumulative LLM metrics, each a ``Window.summary()`` dict (``ttft_p95_ms``, ``failures_by_class``,
``tokens_per_s``, ...). This module only reads it; it never reaches into the plugin's internals.
"""

from __future__ import annotations

from typing import Any

SUMMARY_FIELDS = ("requests", "failures", "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms", "itl_p50_ms",
                  "itl_p95_ms", "tpot_p50_ms", "e2e_p50_ms", "e2e_p95_ms", "e2e_p99_ms",
                  "input_tokens", "output_tokens", "tokens_per_s")


def read_snapshot(environment) -> tuple[dict | None, str | None]:
    """``(snapshot, None)`` from the Locust side, or ``(None, reason)`` when it is not there."""
    try:
        from llmsoak.locust.plugin import get_llm_state
    except ImportError as err:
        return None, f"llmsoak's Locust plugin is not available: {err}"
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


def _patterns(snapshot: dict) -> dict[str, Any]:
    for key in ("patterns", "by_pattern"):
        value = snapshot.get(key)
        if isinstance(value, dict):
            return value
    return {k: v for k, v in snapshot.items() if isinstance(v, dict) and ("current" in v or "cumulative" in v)}


def _window(entry: dict, which: str) -> dict:
    value = entry.get(which)
    if isinstance(value, dict):
        return value
    return entry if which == "cumulative" and "requests" in entry else {}


def _users(entry: dict, snapshot: dict, name: str) -> int | None:
    for source in (entry, entry.get("current") or {}):
        if isinstance(source, dict) and isinstance(source.get("users"), (int, float)):
            return int(source["users"])
    users = snapshot.get("users")
    if isinstance(users, dict) and isinstance(users.get(name), (int, float)):
        return int(users[name])
    return None


def pattern_rows(snapshot: dict | None) -> list[dict]:
    """One flat row per pattern (``all`` last): users, cumulative counts and percentiles, current rates.

    Keys: ``pattern``, ``users``, every SUMMARY_FIELDS key from the cumulative window,
    ``failures_by_class`` (dict), ``current_*`` for the current window's percentiles and tokens/s,
    and ``error_rate`` (cumulative failed fraction, None before the first request).
    """
    if not isinstance(snapshot, dict):
        return []
    rows = []
    patterns = _patterns(snapshot)
    for name, entry in patterns.items():
        if not isinstance(entry, dict):
            continue
        cum, cur = _window(entry, "cumulative"), _window(entry, "current")
        row: dict[str, Any] = {"pattern": str(name), "users": _users(entry, snapshot, str(name))}
        for key in SUMMARY_FIELDS:
            row[key] = cum.get(key)
        row["failures_by_class"] = dict(cum.get("failures_by_class") or {})
        for key in ("ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms", "itl_p50_ms", "e2e_p95_ms", "tokens_per_s",
                    "requests", "failures"):
            row[f"current_{key}"] = cur.get(key)
        requests = row.get("requests") or 0
        row["error_rate"] = (row.get("failures") or 0) / requests if requests else None
        cur_requests = row.get("current_requests") or 0
        row["current_error_rate"] = (row.get("current_failures") or 0) / cur_requests if cur_requests else None
        rows.append(row)
    rows.sort(key=lambda r: (r["pattern"] == "all", r["pattern"]))
    return rows


def overall_row(rows: list[dict]) -> dict | None:
    """The ``all`` row, or None (a snapshot with a single pattern and no ``all`` → that pattern)."""
    for row in rows:
        if row["pattern"] == "all":
            return row
    return rows[0] if len(rows) == 1 else None


def format_failures(by_class: dict) -> str:
    """``{"http": 3, "timeout": 0}`` → ``"http 3"`` (zeros left out; ``"none"`` when all zero)."""
    parts = [f"{cls} {n}" for cls, n in sorted(by_class.items()) if n]
    return ", ".join(parts) if parts else "none"
