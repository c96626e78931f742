"""llmsoak's Locust users against a real vLLM: histories kept inside the context, failures that say why.

GIVEN vLLM serving the tiny model with ``--max-model-len 1024`` on 127.0.0.1,
WHEN headless Locust (a master and two workers) runs llmsoak's users against it,
THEN growing chat histories are trimmed to the context the server reports (no context_overflow
failure, trimming logged), and what vLLM refuses is reported with vLLM's own reason, in the
right class.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from support.locust_runs import run_locust, series_rows, stats_rows
from support.processes import local_master_args


def _profile(tmp_path: Path, server, patterns: str, *, model: str | None = None, name: str = "v") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\ndescription: engine test\ntarget:\n  url: {server.url}\n  flavour: openai\n"
        f"  model: {model or server.model}\n  timeout_s: 60\n"
        f"patterns:\n{patterns}load:\n  shape: none\n")
    return path


def _failure_messages(out: Path) -> dict[str, int]:
    with open(out / "st_failures.csv", newline="") as fh:
        return {row["Error"]: int(row["Occurrences"]) for row in csv.DictReader(fh)}


def _class_totals(out: Path) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in series_rows(out):
        if row["pattern"] == "all":
            for key, value in row.items():
                if key.startswith("fail_") and value and int(value):
                    totals[key[5:]] = totals.get(key[5:], 0) + int(value)
    return totals


def test_growing_histories_stay_inside_the_context_vllm_reports(vllm_server, tmp_path):
    # GIVEN sessions of up to 40 turns, each adding about 60 prompt and 64 reply tokens: the history
    # outgrows 1024 tokens after about 8 turns unless it is trimmed
    patterns = ("  talker: {base: active, users: 4, think_time_s: 0, first_message_delay_s: 0, turns_per_session: 40,\n"
                "           session_pause_s: 0, max_tokens: 64, prompt_tokens: 60, history: true,\n"
                "           max_history_turns: 1000}\n")
    profile = _profile(tmp_path, vllm_server, patterns)
    out = tmp_path / "context"
    proc = run_locust(profile, vllm_server.url, out, users=4, seconds=45, extra=local_master_args(2),
                      timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    # THEN the size came from vLLM, every process trimmed, and nothing overflowed
    assert "context window 1024 tokens (from GET /v1/models max_model_len)" in log, log[-3000:]
    trimmed = [int(n) for n in re.findall(r"(\d+) requests sent with a trimmed history", log)]
    assert trimmed and sum(trimmed) >= 4, log[-3000:]
    classes = _class_totals(out)
    assert classes.get("context_overflow", 0) == 0, _failure_messages(out)
    rows = stats_rows(out)
    http = rows[("POST", "/v1/chat/completions [talker]")]
    assert int(http["Request Count"]) >= 40 and int(http["Failure Count"]) == 0, _failure_messages(out)
    # the prompts grew close to the context and stayed under it (less the reply's 64 tokens)
    prompt_max = int(float(rows[("IN_TOKENS", "/v1/chat/completions [talker]")]["Max Response Time"]))
    print(f"requests {http['Request Count']}, trimmed {sum(trimmed)}, prompt tokens max {prompt_max}")
    assert 600 <= prompt_max <= 1024 - 64, prompt_max


def test_what_vllm_refuses_is_reported_with_its_reason_and_class(vllm_server, tmp_path):
    # GIVEN one pattern whose prompts are far longer than the context (no history to trim) and a
    # profile naming a model vLLM does not serve
    long = "  huge: {base: stress, users: 1, think_time_s: 0.2, first_message_delay_s: 0, turns_per_session: 1,\n" \
           "         session_pause_s: 0, max_tokens: 8, prompt_tokens: 3000, history: false}\n"
    out = tmp_path / "long"
    proc = run_locust(_profile(tmp_path, vllm_server, long, name="long"), vllm_server.url, out,
                      users=1, seconds=4, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    messages = _failure_messages(out)
    assert _class_totals(out) == {"context_overflow": sum(messages.values())}, messages
    assert any("context_overflow: HTTP 400: This model's maximum context length is N tokens. However, "
               "your prompt contains at least N input tokens" in m for m in messages), messages

    out = tmp_path / "model"
    short = long.replace("prompt_tokens: 3000", "prompt_tokens: 20")
    proc = run_locust(_profile(tmp_path, vllm_server, short, model="no-such-model", name="model"),
                      vllm_server.url, out, users=1, seconds=4, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    messages = _failure_messages(out)
    assert _class_totals(out) == {"http": sum(messages.values())}, messages
    assert any("http: HTTP 404: The model `…` does not exist." in m for m in messages), messages
