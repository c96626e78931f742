"""Per-minute LLM time series (llmsoak.locust.timeseries): windows, worker→master merging, the CSV."""

from __future__ import annotations

from llmsoak.locust.results import RequestResult
from llmsoak.locust.timeseries import COLUMNS, LLMState, TimeseriesCSV


def _ok(ttft=50.0, itl=(5.0, 5.0), tokens=3) -> RequestResult:
    return RequestResult(status=200, ttft_ms=ttft, e2e_ms=ttft + sum(itl), itl_ms=list(itl),
                         content_chunks=len(itl) + 1, output_tokens=tokens, input_tokens=10, text="x")


def test_workers_to_master_gives_the_same_rows_as_one_process(tmp_path):
    t0 = 1_800_000_000.0  # a minute boundary
    local = LLMState(["active", "stress"], role="local")
    workers = [LLMState(["active", "stress"], role="worker") for _ in range(2)]
    master = LLMState(["active", "stress"], role="master")
    for i in range(100):
        pattern = "active" if i % 3 else "stress"
        result = _ok(ttft=40 + i) if i % 10 else RequestResult(status=0).fail("disconnect", "reset")
        local.record(pattern, result, t0 + i)
        workers[i % 2].record(pattern, result, t0 + i)
        if i % 7 == 0:
            for w in workers:
                master.merge_report(w.take_report())
    for w in workers:
        master.merge_report(w.take_report())
    for state in (local, master):
        state.started_at = t0
    rows_local = local.close_minutes(t0 + 200, final=True)
    rows_master = master.close_minutes(t0 + 200, final=True)
    assert rows_local == rows_master
    all_rows = [r for r in rows_master if r["pattern"] == "all"]
    assert sum(r["requests"] for r in all_rows) == 100
    assert sum(r["fail_disconnect"] for r in all_rows) == 10
    csv_file = TimeseriesCSV(tmp_path / "llm_timeseries.csv")
    csv_file.append(rows_master)
    csv_file.append(rows_master)
    lines = (tmp_path / "llm_timeseries.csv").read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 1 + 2 * len(rows_master)
    snap = master.snapshot()
    assert snap["patterns"]["stress"]["cumulative"]["requests"] == 34
    assert snap["all"]["cumulative"]["failures_by_class"]["disconnect"] == 10


def test_minutes_close_only_after_the_grace_period_and_late_data_is_kept():
    t0 = 1_800_000_000.0
    state = LLMState(["active"], role="master", grace_s=10)
    state.merge_report([[t0, "active", _window_data()]])
    assert state.close_minutes(t0 + 65) == []          # minute ended 5 s ago: wait
    rows = state.close_minutes(t0 + 71)
    assert [r["requests"] for r in rows] == [1, 1]
    state.merge_report([[t0, "active", _window_data()]])  # a late worker report
    assert state.late_reports == 1
    rows = state.close_minutes(t0 + 200, final=True)
    assert sum(r["requests"] for r in rows if r["pattern"] == "all") == 1
    assert not state.windows


def _window_data() -> dict:
    w = LLMState(["active"], role="worker")
    w.record("active", _ok(), 1_800_000_001.0)
    return w.take_report()[0][2]
