"""Stub faults → exactly one Locust failure of the right class; distributed runs merge exactly.

GIVEN the reference target injecting every fault kind at random (at most one per request),
WHEN a headless Locust run sends requests, THEN each failure class count equals the number of
faults of the kinds mapped to it (contracts.md), and the Aggregated row equals the stub's
requests_total. With ``--processes 2`` the master's totals are the same sums.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from support.locust_runs import (
    LOCUSTFILE,
    aggregated,
    count,
    failures,
    run_locust,
    series_rows,
    stats_rows,
    stub_json,
    write_profile,
)
from support.processes import local_master_args

from llmsoak.formats import FAILURE_CLASSES

FAULT_CLASS = {"http_429": "rate_limited", "http_500": "server_error", "http_503": "server_error",
               "reset_before_headers": "disconnect", "reset_mid_stream": "disconnect",
               "stall": "timeout", "malformed_chunk": "malformed", "empty_response": "empty",
               "context_overflow": "context_overflow", "error_event": "server_error",
               "interrupted": "cut_short"}
NOT_STREAMED = {"interrupted": "disconnect"}  # half a JSON body, then the connection closes


def _class_counts(out) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in series_rows(out):
        if row["pattern"] == "all":
            for cls in FAILURE_CLASSES:
                totals[cls] = totals.get(cls, 0) + int(row[f"fail_{cls}"])
    return totals


@pytest.mark.slow
@pytest.mark.parametrize("flavour,endpoint,stream,chat_stream", [
    ("openai", "chat", True, "none"),
    ("ollama", "generate", True, "none"),
    ("chat", "chat", False, "none"),
])
def test_each_fault_is_one_failure_of_its_class(start_stub, tmp_path, flavour, endpoint, stream, chat_stream):
    stub = start_stub("--ttft-ms", "5", "--itl-ms", "1", "--stall-s", "30", "--seed", "7")
    stub_json(stub.url, "/_stub/faults", {name: 0.06 for name in FAULT_CLASS})
    profile = write_profile(tmp_path, flavour=flavour, endpoint=endpoint, stream=stream,
                            chat_stream=chat_stream, timeout_s=1, stress_users=4)
    out = tmp_path / "faults"
    proc = run_locust(profile, stub.url, out, users=7, seconds=8)
    assert proc.returncode == 0, proc.stderr[-2000:]
    served = stub_json(stub.url, "/_stub/stats")
    injected = served["faults_injected"]
    expected: dict[str, int] = {}
    classes = {**FAULT_CLASS, **(NOT_STREAMED if not stream else {})}
    for name, n in injected.items():
        expected[classes[name]] = expected.get(classes[name], 0) + n
    assert sum(expected.values()) >= 10, f"too few faults to judge: {injected}"
    got = {cls: n for cls, n in _class_counts(out).items() if n}
    assert got == expected, f"injected {injected}"
    rows = stats_rows(out)
    assert failures(rows, "POST") == sum(injected.values())
    assert count(rows, "POST") == served["requests_total"]
    assert int(aggregated(rows)["Request Count"]) == count(rows, "POST") + count(rows, "DELETE")
    # Normalised messages: one error row per (name, class/detail), never per request.
    with open(out / "st_failures.csv") as fh:
        messages = [row["Error"] for row in csv.DictReader(fh)]
    assert len(messages) <= 4 * len(FAULT_CLASS)
    # The server's own reason is in the message, ids and numbers normalised.
    assert any("server_error: HTTP 500: injected fault http_N" in m for m in messages), messages
    assert any("context_overflow: HTTP 400: This model's maximum context length is N tokens." in m
               for m in messages), messages
    assert any("injected fault error_event" in m and "<id>" in m for m in messages), messages


@pytest.mark.slow
def test_two_worker_processes_give_the_same_totals(start_stub, tmp_path):
    stub = start_stub("--ttft-ms", "5", "--itl-ms", "1", "--seed", "3")
    stub_json(stub.url, "/_stub/faults", {"http_500": 0.05, "reset_mid_stream": 0.05})
    profile = write_profile(tmp_path, stress_users=4)
    out = tmp_path / "dist"
    proc = run_locust(profile, stub.url, out, users=8, seconds=8, extra=local_master_args(2))
    assert proc.returncode == 0, proc.stderr[-2000:]
    served = stub_json(stub.url, "/_stub/stats")
    rows = stats_rows(out)
    assert int(aggregated(rows)["Request Count"]) == served["requests_total"] == count(rows, "POST")
    assert int(aggregated(rows)["Failure Count"]) == sum(served["faults_injected"].values())
    series = [r for r in series_rows(out) if r["pattern"] == "all"]
    assert sum(int(r["requests"]) for r in series) == served["requests_total"]
    assert sum(int(r["failures"]) for r in series) == sum(served["faults_injected"].values())
    ok = count(rows, "POST") - failures(rows, "POST")
    assert count(rows, "TTFT") == ok  # metric rows merged from both workers, one per success
    # The time series is written once (by the master): one "all" row per minute.
    minutes = [r["timestamp"] for r in series]
    assert len(minutes) == len(set(minutes))


def test_invalid_profile_exits_2_with_one_line_before_any_request(start_stub, tmp_path):
    stub = start_stub()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntarget:\n  url: http://127.0.0.1:9\n  flavour: telepathy\n")
    proc = subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
                           "--profile", str(bad), "-H", stub.url, "-t", "3s"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "bad.yaml" in lines[0] and "flavour" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert stub_json(stub.url, "/_stub/stats")["requests_total"] == 0


def test_api_key_comes_from_the_environment_and_is_never_written(start_stub, tmp_path):
    stub = start_stub("--ttft-ms", "1", "--itl-ms", "0")
    profile = write_profile(tmp_path)
    text = profile.read_text().replace("  model: m\n", "  model: m\n  api_key_env: LLMSOAK_TEST_KEY\n")
    profile.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
                           "--profile", str(profile), "-H", stub.url, "-t", "2s"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2 and "LLMSOAK_TEST_KEY" in proc.stderr
    out = tmp_path / "keyed"
    import os
    secret = "sk-test-very-secret-value"
    os.environ["LLMSOAK_TEST_KEY"] = secret
    try:
        proc = run_locust(profile, stub.url, out, users=4, seconds=2)
    finally:
        del os.environ["LLMSOAK_TEST_KEY"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert secret not in proc.stdout + proc.stderr
    for path in out.iterdir():
        assert secret not in path.read_text(errors="replace"), path
    assert json.loads((out / "final.json").read_text())
