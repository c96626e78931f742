"""Open-loop arrivals are turns of the profile's sessions: history grows, patterns by weight."""

from __future__ import annotations

import statistics
import subprocess

import pytest

from llmsoak.capacity.steps import read_records
from tests.support.processes import REPO, llmsoak_cmd


@pytest.mark.slow
def test_open_loop_arrivals_continue_multi_turn_sessions_with_their_history(start_stub, tmp_path) -> None:
    stub = start_stub("--max-concurrency", "8", "--output-tokens", "12", "--itl-ms", "1", "--ttft-ms", "5")
    out = tmp_path / "run"
    # GIVEN the capacity-stub profile: active sessions of 3 turns (weight 3), casual of 2 (weight 1)
    proc = subprocess.run(
        llmsoak_cmd("capacity", "--profile", str(REPO / "profiles" / "capacity-stub.yaml"), "--out", str(out),
                    "--set", f"target.url={stub.url}", "--rates", "8,16", "--warmup", "0s", "--measure", "3s",
                    "--no-users", "--set", "capacity.refine=0", "--set", "capacity.target_rate=4"),
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [r for batch in (out / "capacity").glob("batch-*") for r in read_records(batch)]
    active = [r for r in rows if r["pattern"] == "active" and r["ok"]]
    casual = [r for r in rows if r["pattern"] == "casual" and r["ok"]]
    # THEN both patterns sent, roughly by weight, and each session went through its turns
    assert active and casual and len(active) > len(casual)
    assert {int(r["turn"]) for r in active} == {0, 1, 2}
    assert {int(r["turn"]) for r in casual} == {0, 1}
    # AND later turns carry the conversation so far (the server counts more prompt tokens)
    first = statistics.fmean(r["input_tokens"] for r in active if r["turn"] == 0)
    third = statistics.fmean(r["input_tokens"] for r in active if r["turn"] == 2)
    assert third > first + 2 * 12  # at least the two 12-token replies before it


@pytest.mark.slow
def test_a_step_missed_while_the_generator_fell_behind_is_measured_again(start_stub, tmp_path) -> None:
    import json

    stub = start_stub("--max-concurrency", "8", "--output-tokens", "5", "--itl-ms", "1", "--ttft-ms", "5")
    out = tmp_path / "run"
    # GIVEN a lag bound no generator meets (1 µs): every arrival is reached "late" and dropped
    proc = subprocess.run(
        llmsoak_cmd("capacity", "--profile", str(REPO / "profiles" / "capacity-stub.yaml"), "--out", str(out),
                    "--set", f"target.url={stub.url}", "--rates", "2,4", "--warmup", "0s", "--measure", "2s",
                    "--set", "capacity.max_lag_s=0.000001", "--set", "capacity.refine=0",
                    "--set", "capacity.target_rate=1"),
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    # THEN each rate step is marked, measured again, and set aside; no rate holds: exit 1
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("the generator fell behind at") == 2
    doc = json.loads((out / "capacity.json").read_text())
    rates = [s for s in doc["steps"] if s["kind"] == "rate"]
    assert [s["role"] for s in rates] == ["sweep", "sweep", "retry", "retry"]
    assert [s["superseded"] for s in rates] == [True, True, False, False]
    assert all(s["generator_behind"] and s["dropped"] > 0 for s in rates)
    assert doc["knee"]["rate_rps"] is None and doc["knee"]["users"] is None
    assert "NOT sustainable" in doc["verdict"][0]


@pytest.mark.slow
def test_open_loop_sessions_keep_their_history_inside_target_context_tokens(start_stub, tmp_path) -> None:
    stub = start_stub("--max-concurrency", "8", "--output-tokens", "12", "--itl-ms", "1", "--ttft-ms", "5")
    out = tmp_path / "run"
    # GIVEN the same sweep with a context window of 160 tokens: 64 for the reply, the rest for the prompt
    proc = subprocess.run(
        llmsoak_cmd("capacity", "--profile", str(REPO / "profiles" / "capacity-stub.yaml"), "--out", str(out),
                    "--set", f"target.url={stub.url}", "--set", "target.context_tokens=160", "--rates", "8,16",
                    "--warmup", "0s", "--measure", "3s", "--no-users", "--set", "capacity.refine=0",
                    "--set", "capacity.target_rate=4"),
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [r for batch in (out / "capacity").glob("batch-*") for r in read_records(batch)]
    active = [r for r in rows if r["pattern"] == "active" and r["ok"]]
    # THEN later turns were trimmed to fit (an opening message is sent whole, however long): their
    # prompts stay within the window less the reply's 64, where the whole conversation would not
    assert {int(r["turn"]) for r in active} == {0, 1, 2}
    later = [r["input_tokens"] for r in active if r["turn"] > 0]
    assert max(later) <= 160 - 64, sorted(later)[-10:]
    assert statistics.median(r["input_tokens"] for r in active if r["turn"] == 0) > 160 - 64


def test_a_step_that_fails_on_errors_names_the_servers_failures(start_stub, tmp_path) -> None:
    import json

    stub = start_stub("--max-concurrency", "8", "--output-tokens", "5", "--itl-ms", "1", "--ttft-ms", "5",
                      "--fault", "http_503=0.3", "--seed", "3")
    out = tmp_path / "run"
    proc = subprocess.run(
        llmsoak_cmd("capacity", "--profile", str(REPO / "profiles" / "capacity-stub.yaml"), "--out", str(out),
                    "--set", f"target.url={stub.url}", "--rates", "4,8", "--warmup", "0s", "--measure", "2s",
                    "--no-users", "--set", "capacity.refine=0"),
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    # THEN nothing meets a 1 % error SLO, and each step says which failures it saw
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads((out / "capacity.json").read_text())
    for step in doc["steps"]:
        assert not step["meets_slo"]
        # the failure class, the status and the server's own reason (the stub's "injected fault …")
        [reason] = list(step["failure_reasons"])
        assert reason.startswith("server_error: HTTP 503: injected fault"), reason
        assert any(r.startswith("error rate") and f"× {reason})" in r for r in step["reasons"])
    assert "× server_error: HTTP 503: injected fault" in proc.stdout
