"""read_samples: any column order, repairs with notes, one clear error naming file and line."""

from __future__ import annotations

import math

import pytest

from llmsoak.analysis.samples_reader import read_samples
from llmsoak.errors import EXIT_BAD_INPUT, CommandError


def _write(tmp_path, text, name="s.csv", mode="w"):
    p = tmp_path / name
    if mode == "wb":
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def test_minimal_file_any_column_order(tmp_path):
    # GIVEN only a metric and timestamp, metric first
    p = _write(tmp_path, "rss_bytes,timestamp\n100,1\n110,2\n120,3\n")
    # WHEN read
    frame = read_samples(p)
    # THEN the frame is sorted floats with no repairs
    assert list(frame.df["timestamp"]) == [1.0, 2.0, 3.0]
    assert list(frame.df["rss_bytes"]) == [100.0, 110.0, 120.0]
    assert frame.notes == []
    assert frame.metric_columns == ["rss_bytes"]


def test_truncated_last_line_is_dropped_with_a_note(tmp_path):
    # GIVEN a crash cut the last line mid-number
    p = _write(tmp_path, "timestamp,rss_bytes,pid\n1,100,7\n2,110,7\n3,12")
    frame = read_samples(p)
    # THEN the cut line is gone and the note names it
    assert list(frame.df["timestamp"]) == [1.0, 2.0]
    assert any("truncated last line 4" in n for n in frame.notes)


def test_non_numeric_cells_unsorted_and_duplicates_are_repaired(tmp_path):
    # GIVEN a non-numeric cell, rows out of order and a duplicate timestamp
    p = _write(tmp_path, "timestamp,rss_bytes\n1,100\n3,oops\n2,110\n2,111\n4,130\n")
    frame = read_samples(p)
    # THEN the cell is NaN, rows sorted, the duplicate dropped (first kept), each with a note
    assert list(frame.df["timestamp"]) == [1.0, 2.0, 3.0, 4.0]
    assert frame.df["rss_bytes"][1] == 110.0
    assert math.isnan(frame.df["rss_bytes"][2])
    text = " | ".join(frame.notes)
    assert "non-numeric" in text and "line 3" in text
    assert "sorted" in text and "duplicate" in text


def test_renamed_columns_are_mapped_with_a_note(tmp_path):
    # GIVEN common alternative names
    p = _write(tmp_path, "time,RSS,threads\n1,100,4\n2,110,4\n")
    frame = read_samples(p)
    # THEN they are read as the documented names
    assert {"timestamp", "rss_bytes", "num_threads"} <= set(frame.df.columns)
    assert any("'time' read as 'timestamp'" in n for n in frame.notes)
    assert any("'RSS' read as 'rss_bytes'" in n for n in frame.notes)


def test_millisecond_and_iso_timestamps_become_seconds(tmp_path):
    p = _write(tmp_path, "timestamp,rss_bytes\n1700000000000,1\n1700000001000,2\n")
    assert list(read_samples(p).df["timestamp"]) == [1.7e9, 1.7e9 + 1]
    p = _write(tmp_path, "timestamp,rss_bytes\n2023-11-14T22:13:20Z,1\n2023-11-14T22:13:21Z,2\n", "iso.csv")
    assert list(read_samples(p).df["timestamp"]) == [1.7e9, 1.7e9 + 1]


@pytest.mark.parametrize(
    ("content", "mode", "expected"),
    [
        ("", "w", ":1: file is empty"),
        ("timestamp,rss_bytes\n", "w", ":2: no data rows"),
        ("when,rss_bytes\n1,2\n", "w", ":1: no timestamp column"),
        ("timestamp,pid\n1,2\n2,2\n", "w", ":1: no numeric metric column"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "wb", ":1: binary data"),
        ("timestamp,rss_bytes\nx,1\ny,2\n", "w", ":2: no row has a numeric timestamp"),
    ],
)
def test_unreadable_input_is_one_clear_error_naming_file_and_line(tmp_path, content, mode, expected):
    # GIVEN input that cannot be repaired
    p = _write(tmp_path, content, mode=mode)
    # WHEN read THEN one CommandError (exit 2) names the file and the line
    with pytest.raises(CommandError) as info:
        read_samples(p)
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert str(p) + expected in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        read_samples(tmp_path / "nope.csv")
    with pytest.raises(CommandError, match="is a directory"):
        read_samples(tmp_path)


def test_empty_cells_are_missing_not_errors(tmp_path):
    # GIVEN a sampler row where GPU memory is not available (empty cell = not available)
    p = _write(tmp_path, "timestamp,rss_bytes,gpu_memory_bytes\n1,100,\n2,110,\n")
    frame = read_samples(p)
    assert frame.notes == []
    assert frame.metric_columns == ["rss_bytes"]


@pytest.mark.parametrize("spelling", ["n/a", "NA", "null", "NaN", "None", "#N/A"])
def test_na_spellings_are_counted_like_other_non_numeric_cells(tmp_path, spelling):
    # GIVEN a writer that spells a missing value instead of leaving the cell empty
    p = _write(tmp_path, f"timestamp,rss_bytes\n1,100\n2,{spelling}\n3,\n4,{spelling}\n5,140\n")
    frame = read_samples(p)
    # THEN those cells are missing and a note counts them (the empty cell is silently missing)
    assert frame.df["rss_bytes"].isna().tolist() == [False, True, True, True, False]
    assert f"2 non-numeric cell(s) in 'rss_bytes' read as missing (first at line 3: {spelling!r})" in frame.notes


@pytest.mark.parametrize("first", [False, True])
def test_lines_with_too_many_fields_are_skipped_with_a_note(tmp_path, first):
    # GIVEN a line with one field too many and one with three too many (first data line or later)
    rows = ["1,100", "2,110", "3,120,999", "4,130", "5,140,7,8,9", "6,150"]
    if first:
        rows[0], rows[2] = "1,100,999", "3,120"
    p = _write(tmp_path, "timestamp,rss_bytes\n" + "\n".join(rows) + "\n")
    frame = read_samples(p)
    # THEN both lines are dropped (never cut to the header) and the note names their lines
    bad = 2 if first else 4
    assert sorted(frame.df["timestamp"]) == sorted({1.0, 2.0, 3.0, 4.0, 6.0} - {1.0 if first else 3.0})
    assert f"skipped 2 line(s) with more fields than the 2 header columns (line {bad}, 6)" in frame.notes


def test_line_numbers_in_notes_count_skipped_lines(tmp_path):
    # GIVEN a skipped line before a non-numeric cell
    p = _write(tmp_path, "timestamp,rss_bytes\n1,100\n2,110,5\n3,oops\n4,130\n")
    frame = read_samples(p)
    # THEN the non-numeric cell is reported on its real line (4), not the row's index
    assert any("first at line 4: 'oops'" in n for n in frame.notes), frame.notes


def test_every_line_too_long_is_one_clear_error(tmp_path):
    p = _write(tmp_path, "timestamp,rss_bytes\n1,100,1\n2,110,1\n")
    with pytest.raises(CommandError) as err:
        read_samples(p)
    assert err.value.exit_code == EXIT_BAD_INPUT
    assert str(err.value) == f"{p}:2: every data line has more fields than the 2 columns of the header"
