"""Per-minute load and LLM series of a run: ``llm_timeseries.csv`` or Locust's ``stats_history.csv``.

``read_llm_timeseries(path)`` returns one row per minute and pattern (the columns of
:data:`llmsoak.formats.LLM_TIMESERIES_COLUMNS`, documented in docs/formats.md: ``timestamp``
minute start in Unix seconds, ``users``, ``requests``, ``failures``, ``fail_*``, ``ttft_p50_ms`` …,
``tokens_per_s``). ``read_locust_history(path)`` turns Locust's 5-second
``stats_history.csv`` (Aggregated rows) into the same per-minute shape, for runs without the LLM
series. Both repair what they can (non-numeric cells, unsorted or duplicate rows, short lines) and
say so in ``.notes``; what they cannot read raises CommandError naming the file and line.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from llmsoak.errors import CommandError
from llmsoak.formats import FAILURE_CLASSES, LLM_LATENCY_COLUMNS_MS, LLM_TIMESERIES_COLUMNS

#: Every column but ``pattern``: read as numbers (a missing one is added, empty).
NUMERIC_COLUMNS = tuple(c for c in LLM_TIMESERIES_COLUMNS if c != "pattern")


@dataclass
class LoadSeries:
    """Per-minute rows (``df``, sorted by timestamp then pattern), where they came from, repairs made."""

    df: object  # pandas.DataFrame; typed loosely so importing this module stays light
    path: Path
    source: str  # "llm_timeseries" | "locust_history"
    notes: list[str] = field(default_factory=list)

    def overall(self):
        """The ``pattern == "all"`` rows indexed 0..n-1 (one per minute)."""
        df = self.df
        return df[df["pattern"] == "all"].reset_index(drop=True)

    def patterns(self) -> list[str]:
        """Pattern names other than "all", in first-seen order."""
        return [p for p in dict.fromkeys(self.df["pattern"]) if p != "all"]


def _read_csv_tolerant(path: Path, notes: list[str]):
    """All cells as strings; lines with too many fields are dropped with a note naming them."""
    import pandas as pd

    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except pd.errors.ParserError:
        pass  # a malformed line: reread slowly to name and drop the bad lines
    except (OSError, UnicodeDecodeError) as err:
        raise CommandError(f"{path}: cannot read: {err}") from None
    bad: list[int] = []
    try:
        with path.open(newline="", errors="replace") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                return pd.DataFrame()
            rows = []
            for row in reader:
                if len(row) > len(header):
                    bad.append(reader.line_num)
                    continue
                rows.append(row + [""] * (len(header) - len(row)))
    except (OSError, csv.Error) as err:
        raise CommandError(f"{path}: cannot read: {err}") from None
    shown = ", ".join(str(n) for n in bad[:5]) + (" …" if len(bad) > 5 else "")
    notes.append(f"{path.name}: skipped {len(bad)} malformed line(s) with too many fields (line {shown})")
    return pd.DataFrame(rows, columns=header)


def _to_numeric(df, columns, path: Path, notes: list[str]) -> None:
    import pandas as pd

    bad_cells = 0
    for col in columns:
        if col not in df.columns:
            continue
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        bad_cells += int((num.isna() & (raw.astype(str).str.strip() != "")).sum())
        df[col] = num.astype(float)
    if bad_cells:
        notes.append(f"{path.name}: {bad_cells} non-numeric cell(s) treated as missing")


def _sort_dedupe(df, keys: list[str], path: Path, notes: list[str]):
    if not df["timestamp"].is_monotonic_increasing:
        notes.append(f"{path.name}: rows were not in time order; sorted")
    df = df.sort_values(keys, kind="stable")
    dup = df.duplicated(keys, keep="last")
    if dup.any():
        notes.append(f"{path.name}: {int(dup.sum())} duplicate row(s) for the same minute dropped (kept the last)")
        df = df[~dup]
    return df.reset_index(drop=True)


def read_llm_timeseries(path: str | Path) -> LoadSeries | None:
    """Read ``llm_timeseries.csv``; None when the file is empty (no minute written yet)."""
    path = Path(path)
    notes: list[str] = []
    df = _read_csv_tolerant(path, notes)
    if df.empty and len(df.columns) == 0:
        return None
    df.columns = [str(c).strip() for c in df.columns]
    if "timestamp" not in df.columns:
        raise CommandError(f"{path}: line 1: no 'timestamp' column (header: {', '.join(df.columns)[:200]})")
    if "pattern" not in df.columns:
        notes.append(f"{path.name}: no 'pattern' column; every row taken as pattern 'all'")
        df["pattern"] = "all"
    df["pattern"] = df["pattern"].astype(str).str.strip().replace("", "all")
    _to_numeric(df, NUMERIC_COLUMNS, path, notes)
    missing_ts = df["timestamp"].isna()
    if missing_ts.any():
        notes.append(f"{path.name}: {int(missing_ts.sum())} row(s) without a timestamp dropped")
        df = df[~missing_ts]
    if df.empty:
        return None
    for col in NUMERIC_COLUMNS:
        if col not in df.columns:
            df[col] = float("nan")
    df = _sort_dedupe(df, ["timestamp", "pattern"], path, notes)
    if not (df["pattern"] == "all").any():
        notes.append(f"{path.name}: no 'all' rows; summed the patterns per minute")
        df = _add_all_rows(df)
    return LoadSeries(df=df, path=path, source="llm_timeseries", notes=notes)


def _add_all_rows(df):
    import pandas as pd

    sums = ["users", "requests", "failures", *(f"fail_{c}" for c in FAILURE_CLASSES),
            "input_tokens", "output_tokens", "tokens_per_s"]
    agg = df.groupby("timestamp", as_index=False)[sums].sum(min_count=1)
    # Percentiles do not add: take the worst pattern's value as a conservative stand-in.
    worst = df.groupby("timestamp", as_index=False)[list(LLM_LATENCY_COLUMNS_MS)].max()
    agg = agg.merge(worst, on="timestamp")
    agg["pattern"] = "all"
    return pd.concat([df, agg], ignore_index=True).sort_values(["timestamp", "pattern"]).reset_index(drop=True)


def read_locust_history(path: str | Path) -> LoadSeries | None:
    """Locust's ``stats_history.csv`` Aggregated rows resampled to one row per minute."""
    import numpy as np
    import pandas as pd

    path = Path(path)
    notes: list[str] = []
    raw = _read_csv_tolerant(path, notes)
    if raw.empty:
        return None
    raw.columns = [str(c).strip() for c in raw.columns]
    needed = ("Timestamp", "Name", "Total Request Count")
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise CommandError(f"{path}: line 1: missing column(s) {', '.join(missing)} "
                           "(expected Locust's stats_history.csv)")
    agg = raw[raw["Name"].astype(str) == "Aggregated"].copy()
    cols = {"Timestamp": "timestamp", "User Count": "users", "Total Request Count": "total_requests",
            "Total Failure Count": "total_failures", "Requests/s": "rps",
            "50%": "e2e_p50_ms", "95%": "e2e_p95_ms", "99%": "e2e_p99_ms"}
    agg = agg[[c for c in cols if c in agg.columns]].rename(columns=cols)
    _to_numeric(agg, list(cols.values()), path, notes)
    agg = agg.dropna(subset=["timestamp"])
    if agg.empty:
        return None
    agg = _sort_dedupe(agg, ["timestamp"], path, notes)
    minute = (agg["timestamp"] // 60) * 60
    grouped = agg.groupby(minute)
    out = pd.DataFrame({"timestamp": grouped["timestamp"].first().index.astype(float)})
    last_total = grouped["total_requests"].max().to_numpy(dtype=float)
    # Counters restart from 0 when Locust restarts: count only positive steps.
    # Locust's counters start at 0 with the run (and again after a restart of Locust).
    out["requests"] = np.clip(np.diff(last_total, prepend=0.0), 0, None)
    if "total_failures" in agg:
        last_fail = grouped["total_failures"].max().to_numpy(dtype=float)
        out["failures"] = np.clip(np.diff(last_fail, prepend=0.0), 0, None)
        out["fail_other"] = out["failures"]
    for col in ("users", "e2e_p50_ms", "e2e_p95_ms", "e2e_p99_ms"):
        if col in agg:
            out[col] = grouped[col].median().to_numpy(dtype=float)
    for col in NUMERIC_COLUMNS:
        if col not in out:
            out[col] = float("nan")
    out["pattern"] = "all"
    notes.append(f"{path.name}: no llm_timeseries.csv; throughput and latency from Locust's history "
                 "(end-to-end response times only, no TTFT/ITL)")
    return LoadSeries(df=out, path=path, source="locust_history", notes=notes)


def locust_totals(path: str | Path) -> dict:
    """Request, failure and session counts from Locust's ``stats.csv`` (Aggregated row).

    Sessions are the DELETE requests that close a chat session (``DELETE /chat/{id}``), when the
    run made any; None otherwise.
    """
    import pandas as pd

    path = Path(path)
    notes: list[str] = []
    df = _read_csv_tolerant(path, notes)
    if df.empty or "Name" not in df.columns or "Request Count" not in df.columns:
        return {}
    counts = pd.to_numeric(df["Request Count"], errors="coerce")
    fails = pd.to_numeric(df.get("Failure Count", pd.Series(dtype=str)), errors="coerce")
    names = df["Name"].astype(str)
    is_agg = names == "Aggregated"
    out: dict = {"requests": float(counts[is_agg].sum()) if is_agg.any() else float(counts.sum())}
    if len(fails):
        out["failures"] = float(fails[is_agg].sum()) if is_agg.any() else float(fails.sum())
    types = df["Type"].astype(str).str.upper() if "Type" in df.columns else pd.Series([""] * len(df))
    session_rows = (~is_agg) & (types == "DELETE") & names.str.contains("chat|session", case=False)
    out["sessions"] = float(counts[session_rows].sum()) if session_rows.any() else None
    return out
