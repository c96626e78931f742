"""Writing the samples CSV: crash-safe and append-only (the reader is llmsoak/analysis/samples_reader.py).

The columns are :data:`llmsoak.formats.SAMPLES_COLUMNS` (documented in docs/formats.md, "Samples
CSV"); :class:`AppendingCsvWriter` also writes other timestamped CSVs (the scraped /metrics).
Guarantees, so a week-long file survives ``kill -9``, power loss of the sampler and restarts:

- each row is written with one ``os.write`` on an ``O_APPEND`` descriptor (no user-space buffer),
  so a killed sampler loses at most the row being written;
- ``fsync`` runs at most every ``fsync_interval_s`` seconds (bounded loss on power failure,
  without paying for an fsync per row);
- reopening a file that ends in a partial line truncates that fragment, then appends after the
  last complete row; rows whose timestamp is not strictly greater than the last row's are skipped
  (a wall clock stepped backwards), so the file never holds duplicates or reordered rows;
- a failed write (disk full) truncates the file back to its last complete row and raises
  :class:`SamplesWriteError`, leaving what was written intact.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence

from llmsoak.formats import SAMPLES_COLUMNS

_TAIL_CHUNK_BYTES = 64 * 1024


class SamplesWriteError(OSError):
    """Writing the samples file failed (unwritable, disk full); the file holds only whole rows."""


def format_value(value: object) -> str:
    """One CSV cell: empty for None, integers plain, floats with enough precision for their unit."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:  # NaN → not available
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if abs(value) < 1e6:
            return f"{value:.6g}"
        return f"{value:.3f}".rstrip("0").rstrip(".")  # Unix times keep their milliseconds
    text = str(value)
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""').replace("\n", " ").replace("\r", " ") + '"'
    return text


def _read_tail(fd: int, size: int) -> bytes:
    start = max(0, size - _TAIL_CHUNK_BYTES)
    return os.pread(fd, size - start, start)


class AppendingCsvWriter:
    """Append rows of ``columns`` to ``path``; see the module docstring for the guarantees.

    ``columns[0]`` must be the float Unix ``timestamp``. Use as a context manager or call
    :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, columns: Sequence[str] = SAMPLES_COLUMNS, *,
                 fsync_interval_s: float = 10.0) -> None:
        self.path = os.fspath(path)
        self.columns = tuple(columns)
        self.fsync_interval_s = float(fsync_interval_s)
        self.last_timestamp: float | None = None
        """Timestamp of the last complete row in the file (Unix s), None when it has no rows."""
        self.rows_written = 0
        self.rows_skipped = 0
        """Rows refused because their timestamp was not after the last row's (clock went back)."""
        self.repaired_bytes = 0
        """Bytes of a partial last line cut off when the file was opened."""
        self._header_line = (",".join(self.columns) + "\n").encode()
        self._last_fsync = time.monotonic()
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as err:
            raise SamplesWriteError(err.errno, f"cannot open {self.path} for appending: {err.strerror}") from err
        try:
            self._size = self._recover()
        except (SamplesWriteError, ValueError):
            os.close(self._fd)
            raise
        except OSError as err:
            os.close(self._fd)
            raise SamplesWriteError(err.errno, f"cannot write {self.path}: {err.strerror}") from err

    # -- opening an existing file -------------------------------------------------------------
    def _recover(self) -> int:
        """Cut a partial last line, check the header, find the last timestamp; return the size."""
        size = os.fstat(self._fd).st_size
        if size:
            tail = _read_tail(self._fd, size)
            if not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n")
                new_size = size - len(tail) + cut + 1 if cut >= 0 else (size - len(tail) if size > len(tail) else 0)
                self.repaired_bytes = size - new_size
                os.ftruncate(self._fd, new_size)
                size = new_size
                tail = _read_tail(self._fd, size) if size else b""
        if size == 0:
            self._write_all(self._header_line)
            self._fsync()
            return len(self._header_line)
        first = os.pread(self._fd, min(size, 4096), 0).split(b"\n", 1)[0].decode(errors="replace")
        header = [c.strip().strip('"') for c in first.split(",")]
        if header != list(self.columns):
            raise ValueError(f"{self.path} exists with other columns ({first[:80]!r}); use a new file")
        self.last_timestamp = self._last_timestamp(tail)
        return size

    @staticmethod
    def _last_timestamp(tail: bytes) -> float | None:
        for line in reversed(tail.split(b"\n")):
            cell = line.split(b",", 1)[0].strip()
            try:
                return float(cell)
            except ValueError:
                continue  # header, empty line or damaged row
        return None

    # -- writing ------------------------------------------------------------------------------
    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _fsync(self) -> None:
        os.fsync(self._fd)
        self._last_fsync = time.monotonic()

    def write_row(self, row: Mapping[str, object]) -> bool:
        """Append one row (missing columns → empty cells). False when skipped as not increasing.

        Raises SamplesWriteError when the write fails; the file is cut back to its last whole row.
        """
        ts = float(row["timestamp"])  # type: ignore[arg-type]
        ts_cell = f"{ts:.3f}"
        ts = float(ts_cell)  # compare what is written, so equal-looking rows never pass
        if self.last_timestamp is not None and ts <= self.last_timestamp:
            self.rows_skipped += 1
            return False
        cells = [ts_cell] + [format_value(row.get(c)) for c in self.columns[1:]]
        line = (",".join(cells) + "\n").encode()
        try:
            self._write_all(line)
            if time.monotonic() - self._last_fsync >= self.fsync_interval_s:
                self._fsync()
        except OSError as err:
            self._cut_back()
            raise SamplesWriteError(err.errno, f"cannot write {self.path}: {err.strerror}") from err
        self._size += len(line)
        self.last_timestamp = ts
        self.rows_written += 1
        return True

    def _cut_back(self) -> None:
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            pass  # character devices (/dev/full) and vanished files cannot be truncated

    def close(self) -> None:
        """fsync and close; safe to call twice."""
        if self._fd < 0:
            return
        try:
            self._fsync()
        except OSError:
            pass  # /dev/full and pipes refuse fsync; the data is already written
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> AppendingCsvWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
