"""Open-loop arrivals are turns of the profile's sessions: history grows, patterns by weight."""

from __future__ import annotations

import statistics
import subprocess

from llmsoak.capacity.steps import read_records
from tests.support.processes import REPO, llmsoak_cmd


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
