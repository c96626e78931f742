"""llmsoak's Locust users against llama-cpp-python's server: cut-short streams named, context kept.

GIVEN llama-cpp-python's server with the tiny GGUF and ``--n_ctx 1024`` on 127.0.0.1,
WHEN headless Locust (a master and two workers) runs several llmsoak users against it,
THEN with its default ``interrupt_requests`` the streams it cuts short are ``cut_short``
failures whose message names the cause and the fix, and with ``--interrupt_requests False``
there are none; growing histories with ``target.context_tokens`` (it reports its context
nowhere) never overflow.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from support.locust_runs import run_locust, series_rows, stats_rows
from support.processes import local_master_args

# Three users asking for 150 tokens each, back to back: one request at a time is served, so
# under the default settings almost every stream is overlapped by another.
OVERLAPPING = ("  talker: {base: stress, users: 3, think_time_s: 0, first_message_delay_s: 0,\n"
               "           turns_per_session: 1, session_pause_s: 0, max_tokens: 150, prompt_tokens: 20,\n"
               "           history: false}\n")


def _profile(tmp_path: Path, server, patterns: str, *, extra: str = "", name: str = "l") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\ndescription: engine test\ntarget:\n  url: {server.url}\n  flavour: openai\n"
        f"  model: {server.model}\n  timeout_s: 60\n{extra}patterns:\n{patterns}load:\n  shape: none\n")
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


def test_interrupted_streams_are_cut_short_and_say_why(start_llamacpp, tmp_path):
    server = start_llamacpp()  # default: interrupt_requests on
    out = tmp_path / "interrupt"
    proc = run_locust(_profile(tmp_path, server, OVERLAPPING), server.url, out, users=3, seconds=10,
                      extra=local_master_args(2), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    messages = _failure_messages(out)
    classes = _class_totals(out)
    print(f"interrupt on: failures by class {classes}")
    assert classes.get("cut_short", 0) >= 3, messages
    assert set(classes) <= {"cut_short", "disconnect"}, messages  # disconnect: cut before any [DONE]
    assert any("cut_short:" in m and "--interrupt_requests false" in m for m in messages), messages


def test_without_interrupt_requests_no_stream_is_cut_short(start_llamacpp, tmp_path):
    server = start_llamacpp(interrupt_requests=False)
    out = tmp_path / "queue"
    proc = run_locust(_profile(tmp_path, server, OVERLAPPING, name="q"), server.url, out, users=3,
                      seconds=10, extra=local_master_args(2), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = stats_rows(out)
    http = rows[("POST", "/v1/chat/completions [talker]")]
    print("interrupt off:", http["Request Count"], "requests,", http["Failure Count"], "failures")
    assert int(http["Request Count"]) >= 3 and int(http["Failure Count"]) == 0, _failure_messages(out)


def test_histories_fit_the_context_given_in_the_profile(start_llamacpp, tmp_path):
    server = start_llamacpp(interrupt_requests=False)
    patterns = ("  talker: {base: active, users: 2, think_time_s: 0, first_message_delay_s: 0,\n"
                "           turns_per_session: 40, session_pause_s: 0, max_tokens: 48, prompt_tokens: 150,\n"
                "           history: true, max_history_turns: 1000}\n")
    profile = _profile(tmp_path, server, patterns, extra="  context_tokens: 1024\n", name="ctx")
    out = tmp_path / "ctx"
    proc = run_locust(profile, server.url, out, users=2, seconds=40, extra=local_master_args(2), timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "context window 1024 tokens (from target.context_tokens)" in log, log[-3000:]
    assert re.search(r"[1-9]\d* requests sent with a trimmed history", log), log[-3000:]
    # llama-cpp-python sends no usage: the estimate stays uncalibrated (2.5 chars a token) and safe
    rows = stats_rows(out)
    http = rows[("POST", "/v1/chat/completions [talker]")]
    print("context_tokens 1024:", http["Request Count"], "requests,", http["Failure Count"], "failures;",
          re.findall(r"\d+ requests sent with a trimmed history, \d+ oldest turns dropped", log))
    assert int(http["Request Count"]) >= 8 and int(http["Failure Count"]) == 0, _failure_messages(out)
