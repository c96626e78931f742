"""Reading a samples CSV into a clean, sorted frame, repairing what can be (the writer is
llmsoak/sampler/samples_writer.py; the format is docs/formats.md, "Samples CSV").

Repairs (each leaves a note): a last line cut by a crash is dropped; common column names
(``time``, ``ts``, ``rss``, ``RSS`` ...) are mapped to the documented ones; non-numeric cells become
NaN (also "n/a", "NA", "null" and other spellings of missing: only an empty cell is silently
missing); lines with more fields than the header are skipped; rows without a timestamp are dropped;
millisecond timestamps are converted to seconds; unsorted rows are sorted; duplicate timestamps
keep their first row. What cannot be repaired (missing file, empty file, binary data, no timestamp
column, no numeric metric column, no data rows) raises ``CommandError`` (exit 2) naming the file
and line.
"""

from __future__ import annotations

import csv
import io
import os
import re
import warnings
from dataclasses import dataclass, field

from llmsoak.errors import EXIT_BAD_INPUT, CommandError
from llmsoak.formats import SAMPLES_ID_COLUMNS

# Lower-cased header spellings seen in the wild → documented column names.
COLUMN_ALIASES = {
    "time": "timestamp", "ts": "timestamp", "t": "timestamp", "epoch": "timestamp",
    "unix_time": "timestamp", "unix_ts": "timestamp", "time_s": "timestamp", "timestamp_s": "timestamp",
    "rss": "rss_bytes", "rss_b": "rss_bytes", "resident_bytes": "rss_bytes",
    "uss": "uss_bytes", "vms": "vms_bytes", "swap": "swap_bytes",
    "cpu": "cpu_percent", "cpu_pct": "cpu_percent",
    "threads": "num_threads", "fds": "num_fds", "procs": "num_procs",
    "gpu_memory": "gpu_memory_bytes", "gpu_mem_bytes": "gpu_memory_bytes",
    "cgroup_memory": "cgroup_memory_bytes",
}
_SNIFF_BYTES = 65536


@dataclass
class SamplesFrame:
    """A samples CSV as read: ``df`` sorted by ``timestamp`` (Unix s) with float columns."""

    df: object  # pandas.DataFrame (typed loosely so importing this module stays light)
    notes: list[str] = field(default_factory=list)
    """Human-readable repairs made while reading, e.g. "dropped the truncated last line 1234"."""
    path: str = ""

    @property
    def metric_columns(self) -> list[str]:
        """Numeric columns other than timestamp/pid/create_time that hold at least one value."""
        return [c for c in self.df.columns if c not in SAMPLES_ID_COLUMNS and self.df[c].notna().any()]


def _fail(path: str, line: int | None, problem: str) -> CommandError:
    where = f"{path}:{line}" if line else path
    return CommandError(f"{where}: {problem}", EXIT_BAD_INPUT)


def _canonical_name(raw: str) -> str:
    name = raw.strip().strip('"').strip()
    low = name.lower()
    if low in SAMPLES_ID_COLUMNS:
        return low
    return COLUMN_ALIASES.get(low, name)


def read_samples(path: str | os.PathLike) -> SamplesFrame:
    """Read and repair a samples CSV; see the module docstring for what is repaired."""
    import numpy as np
    import pandas as pd

    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
            fh.seek(max(0, size - 1))
            last_byte = fh.read(1)
    except FileNotFoundError:
        raise _fail(path, None, "no such file") from None
    except IsADirectoryError:
        raise _fail(path, None, "is a directory, expected a samples CSV file") from None
    except OSError as err:
        raise _fail(path, None, f"cannot read: {err.strerror or err}") from None
    if size == 0 or not head.strip():
        raise _fail(path, 1, "file is empty (expected a header row starting with timestamp)")
    if b"\x00" in head:
        raise _fail(path, 1, "binary data, not a CSV text file")
    try:
        text_head = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if len(head) == _SNIFF_BYTES and err.start > _SNIFF_BYTES - 4:
            text_head = head[: err.start].decode("utf-8")
        else:
            line = head[: err.start].count(b"\n") + 1
            raise _fail(path, line, "not UTF-8 text; is this really a samples CSV?") from None
    header_line = text_head.lstrip("\ufeff").splitlines()[0]
    raw_names = next(csv.reader(io.StringIO(header_line)))
    notes: list[str] = []

    names: list[str] = []
    for raw in raw_names:
        name = _canonical_name(raw)
        if name != raw.strip():
            if name in SAMPLES_ID_COLUMNS and raw.strip().lower() == name:
                pass
            else:
                notes.append(f"column {raw.strip()!r} read as {name!r}")
        names.append(name)
    if "timestamp" not in names:
        raise _fail(path, 1, f"no timestamp column in the header (found: {', '.join(n for n in names if n) or 'nothing'})")
    if names.count("timestamp") > 1:
        raise _fail(path, 1, "more than one timestamp column in the header")
    seen: set[str] = set()
    usecols: list[int] = []
    for i, name in enumerate(names):
        if name and name not in seen:
            seen.add(name)
            usecols.append(i)
    col_names = [names[i] for i in usecols]

    truncated = size > 0 and last_byte not in (b"\n", b"\r")
    bad_lines: list[str] = []
    n_cols = len(raw_names)
    # Columns are read by position with one spare column: a line with one field too many fills the
    # spare, one with more is reported by pandas and skipped (with ``usecols`` pandas would cut
    # such lines to the header silently). Only an empty cell is missing: "n/a", "NA", "null" ...
    # fail the fast float read and are counted as non-numeric cells below.
    read_kwargs = dict(
        header=None, skiprows=1, names=list(range(n_cols + 1)), index_col=False, engine="c",
        keep_default_na=False, on_bad_lines="warn", skip_blank_lines=True, encoding="utf-8",
        encoding_errors="replace",
    )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                df = pd.read_csv(path, dtype=np.float64, na_values=[""], **read_kwargs)
                coerced = False
            except (ValueError, TypeError):
                # A non-numeric cell somewhere: read as text and coerce column by column (slower path).
                df = pd.read_csv(path, dtype=str, **read_kwargs)
                coerced = True
        for w in caught:  # the fast read may have warned before it failed: count each line once
            bad_lines.extend(n for n in re.findall(r"[Ll]ine (\d+)", str(w.message)) if n not in bad_lines)
    except pd.errors.EmptyDataError:
        df = pd.DataFrame(columns=range(n_cols + 1))
        coerced = False
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        match = re.search(r"line (\d+)", str(err))
        raise _fail(path, int(match.group(1)) if match else None, f"cannot parse as CSV ({str(err).splitlines()[0]})") from None
    skipped = sorted(int(n) for n in bad_lines)

    def line_of(row: int) -> int:
        """File line of data row ``row`` (0-based), counting the header and the skipped lines."""
        line = row + 2
        for n in skipped:
            if n <= line:
                line += 1
        return line

    n_read = len(df)
    spare = df[n_cols]
    extra = np.array(spare.notna() & (spare.str.strip() != "") if coerced else spare.notna(), dtype=bool)
    if truncated and n_read:
        extra[-1] = False  # reported as truncated below
    too_many = sorted(skipped + [line_of(int(r)) for r in np.flatnonzero(extra)])
    df = df[~extra] if extra.any() else df
    rows_left = np.flatnonzero(~extra)  # df row → row as read, for line numbers
    df = df[usecols]
    df.columns = col_names

    def line_at(row: int) -> int:
        return line_of(int(rows_left[row]))

    if truncated and len(df):
        df = df.iloc[:-1]
        notes.append(f"dropped the truncated last line {line_of(n_read - 1)} (no newline at the end: the writer was cut off)")
    if too_many:
        shown = ", ".join(str(n) for n in too_many[:3]) + (" ..." if len(too_many) > 3 else "")
        notes.append(f"skipped {len(too_many)} line(s) with more fields than the {n_cols} header columns (line {shown})")

    if coerced:
        for name in col_names:
            text = df[name].str.strip()
            values = pd.to_numeric(text, errors="coerce")
            bad = values.isna() & (text != "")
            if name == "timestamp" and bad.mean() > 0.5:
                # Maybe ISO dates: accept them, in seconds since the epoch.
                when = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
                if when.notna().mean() > 0.5:
                    values = (when - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
                    bad = values.isna() & (text != "")
                    notes.append("timestamp column holds dates: converted to Unix seconds")
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                notes.append(f"{int(bad.sum())} non-numeric cell(s) in {name!r} read as missing "
                             f"(first at line {line_at(row)}: {text.iloc[row][:20]!r})")
            df[name] = values.astype(np.float64)

    if len(df) == 0 and too_many:
        raise _fail(path, too_many[0], f"every data line has more fields than the {n_cols} "
                    "columns of the header")
    if len(df) == 0:
        raise _fail(path, 2, "no data rows after the header")
    ts = df["timestamp"].to_numpy()
    missing_ts = ~np.isfinite(ts)
    if missing_ts.all():
        raise _fail(path, 2, "no row has a numeric timestamp")
    if missing_ts.any():
        first = line_at(int(np.flatnonzero(missing_ts)[0]))
        notes.append(f"dropped {int(missing_ts.sum())} row(s) without a timestamp (first at line {first})")
        df = df[~missing_ts]
    if df["timestamp"].median() > 1e11:  # milliseconds since the epoch (year > 5138 in seconds)
        df["timestamp"] = df["timestamp"] / 1000.0
        notes.append("timestamps look like milliseconds: divided by 1000")
    ts = df["timestamp"].to_numpy()
    if len(ts) > 1 and bool((np.diff(ts) < 0).any()):
        notes.append(f"{int((np.diff(ts) < 0).sum())} row(s) out of time order: sorted by timestamp")
        df = df.sort_values("timestamp", kind="stable")
    dup = df["timestamp"].duplicated(keep="first").to_numpy()
    if dup.any():
        notes.append(f"dropped {int(dup.sum())} row(s) with a duplicate timestamp (kept the first)")
        df = df[~dup]
    df = df.reset_index(drop=True)

    frame = SamplesFrame(df=df, notes=notes, path=path)
    if not frame.metric_columns:
        raise _fail(path, 1, "no numeric metric column besides timestamp/pid/create_time (e.g. rss_bytes)")
    return frame
