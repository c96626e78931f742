"""The samples CSV writer (llmsoak/sampler/samples_writer.py): header, empty cells, crash repair,
clock steps back, disk full. Its reader's tests are tests/analysis/test_samples_reader.py."""

from __future__ import annotations

import csv

import pytest

from llmsoak.formats import SAMPLES_COLUMNS
from llmsoak.sampler import AppendingCsvWriter, SamplesWriteError
from llmsoak.sampler.samples_writer import format_value


def _rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_writer_appends_rows_with_header_and_empty_cells(tmp_path):
    # GIVEN a new file WHEN two rows are written THEN header + rows, None → empty cell
    path = tmp_path / "s.csv"
    with AppendingCsvWriter(path) as writer:
        assert writer.write_row({"timestamp": 1000.0, "pid": 5, "rss_bytes": 1024, "create_time": 999.25})
        assert writer.write_row({"timestamp": 1001.0, "pid": 5, "rss_bytes": 2048})
    rows = _rows(path)
    assert list(rows[0]) == list(SAMPLES_COLUMNS)
    assert [r["rss_bytes"] for r in rows] == ["1024", "2048"]
    assert rows[0]["create_time"] == "999.25" and rows[0]["uss_bytes"] == ""


def test_reopen_cuts_partial_line_and_refuses_older_rows(tmp_path):
    # GIVEN a file whose last line was cut by kill -9
    path = tmp_path / "s.csv"
    with AppendingCsvWriter(path) as writer:
        for ts in (10.0, 11.0, 12.0):
            writer.write_row({"timestamp": ts, "rss_bytes": int(ts)})
    with open(path, "ab") as fh:
        fh.write(b"13.000,77,12")
    # WHEN it is reopened and rows are appended, one of them from a clock that went back
    with AppendingCsvWriter(path) as writer:
        assert writer.repaired_bytes == len(b"13.000,77,12")
        assert writer.last_timestamp == 12.0
        assert not writer.write_row({"timestamp": 12.0, "rss_bytes": 1})
        assert not writer.write_row({"timestamp": 11.5, "rss_bytes": 1})
        assert writer.write_row({"timestamp": 14.0, "rss_bytes": 14})
        assert writer.rows_skipped == 2
    # THEN the file holds whole rows with strictly increasing timestamps
    stamps = [float(r["timestamp"]) for r in _rows(path)]
    assert stamps == [10.0, 11.0, 12.0, 14.0]


def test_reopen_file_with_other_columns_is_refused(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("timestamp,foo\n1,2\n")
    with pytest.raises(ValueError, match="other columns"):
        AppendingCsvWriter(path)
    assert path.read_text() == "timestamp,foo\n1,2\n"


def test_disk_full_raises_and_keeps_nothing_partial():
    # /dev/full fails every write with ENOSPC, like a full disk (no root or tmpfs needed)
    with pytest.raises(SamplesWriteError) as info:
        AppendingCsvWriter("/dev/full")
    assert "No space left" in str(info.value.strerror)


def test_format_value_keeps_unix_milliseconds_and_units():
    assert format_value(1795280262.24) == "1795280262.24"
    assert format_value(None) == "" and format_value(float("nan")) == ""
    assert format_value(12.3456789) == "12.3457" and format_value(3.0) == "3"


def test_what_the_writer_writes_the_reader_reads_back_unchanged(tmp_path):
    # GIVEN rows with every column, None cells and Unix times with milliseconds
    from llmsoak.analysis.samples_reader import read_samples

    path = tmp_path / "target.csv"
    rows = [{c: float(i * 100 + j) for j, c in enumerate(SAMPLES_COLUMNS)} for i in range(1, 4)]
    for i, row in enumerate(rows):
        row["timestamp"] = 1795280262.125 + i
        row["uss_bytes"] = None
    # WHEN the sampler's writer writes them and the analysis's reader reads the file
    with AppendingCsvWriter(path) as writer:
        for row in rows:
            assert writer.write_row(row)
    frame = read_samples(path)
    # THEN the reader sees the same columns, values and missing cells, and repairs nothing
    assert list(frame.df.columns) == list(SAMPLES_COLUMNS) and frame.notes == []
    for i, row in enumerate(rows):
        got = frame.df.iloc[i].to_dict()
        assert all((got[c] != got[c]) if row[c] is None else got[c] == row[c] for c in SAMPLES_COLUMNS), got
