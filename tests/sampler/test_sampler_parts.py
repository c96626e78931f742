"""Sampler parts that need no target process: the schedule, /metrics parsing, the live state, and
the NVML reader (against a fake pynvml: no NVIDIA driver can run here). The CSV writer's tests are
in test_samples_writer.py."""

from __future__ import annotations

import os
import sys
import threading
import types

import pytest

from llmsoak.formats import SAMPLES_COLUMNS
from llmsoak.sampler.gpu import NvmlReader, open_gpu_reader
from llmsoak.sampler.live import LiveState, parse_listen
from llmsoak.sampler.metrics_scrape import parse_prometheus_text
from llmsoak.sampler.schedule import Schedule


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
    state = LiveState("t", "pid 1", 1.0, SAMPLES_COLUMNS)
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
        "AppendingCsvWriter", "CgroupSelector", "MatchSelector", "PidSelector",
        "PortSelector", "Sampler", "SamplesWriteError", "Selector", "build_selector",
        "default_events_path"}
    assert os.path.basename(sampler_pkg.default_events_path("/r/samples/x.csv")) == "events.csv"
    assert str(sampler_pkg.default_events_path("/r/samples/x.csv")) == "/r/events.csv"
    assert str(sampler_pkg.default_events_path("/r/other/x.csv")) == "/r/other/events.csv"
