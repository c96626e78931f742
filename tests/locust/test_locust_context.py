"""Histories kept inside a context window, end to end against the reference target (no engine).

GIVEN the stub (which reports usage.prompt_tokens) and a profile with ``target.context_tokens``,
WHEN headless Locust with two workers runs long multi-turn sessions without think time,
THEN every prompt the stub counted fits the window less ``max_tokens``, histories were trimmed
(logged per worker), and the size's source is logged. (Against real vLLM and llama.cpp:
tests/engines/test_vllm_llmsoak.py, test_llamacpp_llmsoak.py.)
"""

from __future__ import annotations

import re

from support.locust_runs import run_locust, stats_rows
from support.processes import local_master_args


def test_histories_stay_inside_target_context_tokens(start_stub, tmp_path):
    stub = start_stub("--ttft-ms", "2", "--itl-ms", "0", "--output-tokens", "40")
    profile = tmp_path / "ctx.yaml"
    profile.write_text(
        "name: ctx\ndescription: test\ntarget:\n  url: http://127.0.0.1:9\n  model: m\n"
        "  context_tokens: 400\npatterns:\n"
        "  active: {users: 2, think_time_s: 0, first_message_delay_s: 0, turns_per_session: 30,\n"
        "           session_pause_s: 0, max_tokens: 40, prompt_tokens: 40, max_history_turns: 1000}\n"
        "load:\n  shape: none\n")
    out = tmp_path / "out"
    proc = run_locust(profile, stub.url, out, users=2, seconds=6, extra=local_master_args(2))
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = proc.stdout + proc.stderr
    assert "context window 400 tokens (from target.context_tokens)" in log, log[-2000:]
    trimmed = [int(n) for n in re.findall(r"(\d+) requests sent with a trimmed history", log)]
    assert sum(trimmed) >= 10, log[-2000:]
    rows = stats_rows(out)
    name = "/v1/chat/completions [active]"
    assert int(rows[("POST", name)]["Failure Count"]) == 0
    prompt_max = int(float(rows[("IN_TOKENS", name)]["Max Response Time"]))
    assert 150 <= prompt_max <= 400 - 40, prompt_max  # grew, and stayed inside the window
