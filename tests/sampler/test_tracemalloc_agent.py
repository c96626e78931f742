"""The tracemalloc agent names the growing line of a real leaking Python process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.processes import REPO

LEAKY = """
import time

cache = []

def handle_request(i):
    cache.append("x" * 100_000)  # LEAK: never evicted
    return len(cache)

def churn():
    tmp = [bytes(1000) for _ in range(50)]  # freed at once: no growth
    return len(tmp)

i = 0
deadline = time.monotonic() + float(__import__("sys").argv[1])
while time.monotonic() < deadline:
    handle_request(i)
    churn()
    i += 1
    time.sleep(0.01)
"""
LEAK_LINE = 7  # line of 'cache.append' in LEAKY (line 1 is the empty line after the quotes)


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def leaky(tmp_path) -> Path:
    script = tmp_path / "leaky_app.py"
    script.write_text(LEAKY)
    assert script.read_text().splitlines()[LEAK_LINE - 1].strip().startswith("cache.append")
    return script


def test_runner_names_the_leaking_line(leaky, tmp_path):
    # GIVEN a program leaking 100 kB per request, run under the agent's runner
    out = tmp_path / "tm.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "llmsoak.tracemalloc_agent", "--out", str(out), "--interval", "0.5",
         "--warmup", "0.3", "--top", "5", "--", str(leaky), "2.5"],
        capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    # THEN every record has the documented shape and names leaky_app.py:7 as the top grower
    records = _records(out)
    assert len(records) >= 3  # periodic dumps plus the final one at exit
    for rec in records:
        assert set(rec) == {"timestamp", "elapsed_s", "traced_bytes", "top"}
        assert set(rec["top"][0]) == {"file", "line", "size_diff_bytes", "count_diff", "size_bytes"}
    last = records[-1]
    top = last["top"][0]
    assert top["file"].endswith("leaky_app.py") and top["line"] == LEAK_LINE
    assert top["size_diff_bytes"] > 5_000_000 and top["count_diff"] > 50
    growth = [r["top"][0]["size_diff_bytes"] for r in records if r["top"][0]["line"] == LEAK_LINE]
    assert growth == sorted(growth)


def test_environment_variable_starts_agent_on_import(leaky, tmp_path):
    # GIVEN LLMSOAK_TRACEMALLOC set WHEN the target imports the agent THEN it dumps without code change
    out = tmp_path / "env.jsonl"
    code = ("import llmsoak.tracemalloc_agent as t, runpy, sys, time; sys.argv = ['x', '1.5'];"
            f"runpy.run_path({str(leaky)!r}, run_name='__main__'); t.stop()")
    env = {**os.environ, "LLMSOAK_TRACEMALLOC": str(out), "LLMSOAK_TRACEMALLOC_INTERVAL": "0.4",
           "LLMSOAK_TRACEMALLOC_WARMUP": "0.2", "LLMSOAK_TRACEMALLOC_NFRAME": "3"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    top = _records(out)[-1]["top"][0]
    assert top["file"].endswith("leaky_app.py") and top["line"] == LEAK_LINE
    assert len(top["traceback"]) >= 2  # nframe 3 → the caller is named too


def test_in_process_start_and_rotation(tmp_path):
    import llmsoak.tracemalloc_agent as agent_mod

    agent = agent_mod.Agent(tmp_path / "a.jsonl", interval_s=60, nframe=1, warmup_s=0, top=3, max_bytes=600)
    agent.start()
    try:
        time.sleep(0.05)
        held = [bytearray(1000) for _ in range(100)]
        for _ in range(6):
            agent.dump()
    finally:
        agent.stop(final_dump=False)
    assert held
    assert (tmp_path / "a.jsonl.1").exists()  # rotated once past max_bytes
    assert (tmp_path / "a.jsonl").stat().st_size <= 600 + 1000
