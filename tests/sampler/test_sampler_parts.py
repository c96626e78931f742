"""Sampler parts that need no target process: the CSV writer, the schedule, /metrics parsing,
the live state, and the NVML reader (against a fake pynvml: no NVIDIA driver can run here)."""

from __future__ import annotations

import csv
import os
import sys
import threading
import types

import pytest

from llmsoak.sampler import COLUMNS, AppendingCsvWriter, SamplesWriteError
from llmsoak.sampler.gpu import NvmlReader, open_gpu_reader
from llmsoak.sampler.live import LiveState, parse_listen
from llmsoak.sampler.metrics_scrape import parse_prometheus_text
from llmsoak.sampler.samples_csv import format_value
from llmsoak.sampler.schedule import Schedule


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
    assert list(rows[0]) == list(COLUMNS)
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


def test_schedule_is_drift_free_and_reports_overruns():
    # GIVEN a fake monotonic clock WHEN ticks are on time or late THEN the grid never shifts
    now = [100.0]
    stop = threading.Event()
    schedule = Schedule(1.0, clock=lambda: now[0])
    first = schedule.wait(stop)
    assert first.index == 0 and first.skipped == 0
    now[0] = 101.05  # on time (within one interval)
    tick = schedule.wait(stop)
    assert tick.index == 1 and tick.skipped == 0
    assert schedule.due_in_s() == pytest.approx(0.95)
    now[0] = 104.5  # a sample overran: ticks 2 and 3 were missed
    tick = schedule.wait(stop)
    assert (tick.index, tick.skipped) == (4, 2)
    assert schedule.overruns == 1 and schedule.skipped_total == 2
    assert schedule.due_in_s() == pytest.approx(0.5)  # realigned to the grid, no burst
    stop.set()
    assert schedule.wait(stop) is None


def test_prometheus_text_parsing():
    text = ("# HELP vllm:num_requests_waiting waiting\n# TYPE vllm:num_requests_waiting gauge\n"
            'vllm:num_requests_waiting{model_name="m"} 3\n'
            "vllm:gpu_cache_usage_perc 0.25 1700000000000\nbroken line here\n")
    assert list(parse_prometheus_text(text)) == [
        ("vllm:num_requests_waiting", '{model_name="m"}', 3.0),
        ("vllm:gpu_cache_usage_perc", "", 0.25)]


def test_live_state_bounds_and_history_minutes():
    state = LiveState("t", "pid 1", 1.0, COLUMNS)
    assert state._ring.maxlen == 3600
    for i in range(200):  # 200 s of samples → 4 minutes of history
        state.add_sample({"timestamp": 600.0 + i, "pid": 1, "rss_bytes": 1000 + (i % 60)})
    hist = state.history()
    assert hist["columns"][-1] == "rss_bytes_min"
    assert len(hist["rows"]) == 4
    assert hist["rows"][0][-1] == 1000  # rss min of the first minute
    assert len(state.samples(since=700.0)["rows"]) == 99
    state.set_status("attached", 1, 1)
    metrics = state.prometheus()
    assert 'llmsoak_sampler_up{target="t"} 1' in metrics
    assert 'llmsoak_target_rss_bytes{target="t"} 1019' in metrics


def test_parse_listen():
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen(":9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:80") == ("::1", 80)


class _FakeNvml(types.ModuleType):
    """A stand-in for pynvml: two GPUs, processes 10 (both GPUs) and 99 (not in the tree)."""

    class NVMLError(Exception):
        pass

    def __init__(self):
        super().__init__("pynvml")
        self.shutdown_called = False

    def nvmlInit(self):  # noqa: N802 - NVML's names
        pass

    def nvmlShutdown(self):  # noqa: N802
        self.shutdown_called = True

    def nvmlDeviceGetCount(self):  # noqa: N802
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):  # noqa: N802
        return f"gpu{i}"

    def nvmlDeviceGetComputeRunningProcesses(self, handle):  # noqa: N802
        p = types.SimpleNamespace
        if handle == "gpu0":
            return [p(pid=10, usedGpuMemory=3 * 2**30), p(pid=99, usedGpuMemory=2**30)]
        return [p(pid=10, usedGpuMemory=2**30), p(pid=11, usedGpuMemory=2**29)]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle):  # noqa: N802
        raise self.NVMLError("not supported")

    def nvmlDeviceGetUtilizationRates(self, handle):  # noqa: N802
        return types.SimpleNamespace(gpu=80 if handle == "gpu0" else 40, memory=10)


def test_nvml_reader_sums_tree_processes_with_fake_driver(monkeypatch):
    """MOCK: no NVIDIA driver or GPU exists on this machine, so a fake pynvml module stands in
    for nvidia-ml-py. It checks our use of NVML's API (per-process memory of the tree's pids on
    every device, device utilisation where the tree runs), not the driver."""
    fake = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    reader, note = open_gpu_reader()
    assert note is None and isinstance(reader, NvmlReader)
    assert reader.read({10, 11}) == (3 * 2**30 + 2**30 + 2**29, 60.0)
    assert reader.read({99}) == (2**30, 80.0)
    assert reader.read({12345}) == (0, None)
    reader.close()
    assert fake.shutdown_called


def test_gpu_absent_gives_one_info_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails like an uninstalled package
    reader, note = open_gpu_reader()
    assert reader is None and "nvidia-ml-py not installed" in note


def test_public_surface():
    import llmsoak.sampler as sampler_pkg

    assert set(sampler_pkg.__all__) == {
        "COLUMNS", "AppendingCsvWriter", "CgroupSelector", "MatchSelector", "PidSelector",
        "PortSelector", "Sampler", "SamplesWriteError", "Selector", "build_selector",
        "default_events_path"}
    assert os.path.basename(sampler_pkg.default_events_path("/r/samples/x.csv")) == "events.csv"
    assert str(sampler_pkg.default_events_path("/r/samples/x.csv")) == "/r/events.csv"
    assert str(sampler_pkg.default_events_path("/r/other/x.csv")) == "/r/other/events.csv"
