"""Helpers for the Locust integration tests: test profiles in tmp_path, headless runs, CSV reading."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "locustfiles" / "llm_chat.py"

FAST_PATTERNS = """
patterns:
  active: {users: 1, think_time_s: 0.1, first_message_delay_s: 0, turns_per_session: 3, session_pause_s: 0.1, max_tokens: MAXTOK, prompt_tokens: 30}
  casual: {users: 1, think_time_s: 0.2, first_message_delay_s: 0, turns_per_session: 2, session_pause_s: 0.2, max_tokens: MAXTOK, prompt_tokens: 20}
  sporadic: {users: 1, think_time_s: 0.1, first_message_delay_s: 0, turns_per_session: 2, session_pause_s: 0.3, max_tokens: MAXTOK, prompt_tokens: 20}
  stress: {users: STRESS, max_tokens: MAXTOK, prompt_tokens: 200}
"""


def write_profile(tmp_path: Path, *, flavour="openai", endpoint="chat", stream=True, chat_stream="none",
                  timeout_s=5, max_tokens=12, stress_users=1, name="t") -> Path:
    chat = ""
    if flavour == "chat":
        chat = f"\n  chat: {{stream: {chat_stream}}}"
    text = (f"name: {name}\ndescription: test\ntarget:\n  url: http://127.0.0.1:9\n  flavour: {flavour}\n"
            f"  endpoint: {endpoint}\n  model: m\n  stream: {'true' if stream else 'false'}\n"
            f"  timeout_s: {timeout_s}{chat}\n"
            + FAST_PATTERNS.replace("MAXTOK", str(max_tokens)).replace("STRESS", str(stress_users))
            + "load:\n  shape: none\n")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def run_locust(profile: Path, url: str, out: Path, *, users: int, seconds: int, extra=(), timeout=90):
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--profile", str(profile),
           "-H", url, "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--csv", str(out / "st"),
           "--json-file", str(out / "final"), "--llm-timeseries", str(out / "llm_timeseries.csv"),
           "--exit-code-on-error", "0", "--only-summary", "--stop-timeout", "10", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=out)
    return proc


def stats_rows(out: Path) -> dict[tuple[str, str], dict]:
    with open(out / "st_stats.csv", newline="") as fh:
        return {(r["Type"], r["Name"]): r for r in csv.DictReader(fh)}


def series_rows(out: Path) -> list[dict]:
    with open(out / "llm_timeseries.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def count(rows: dict, type_: str) -> int:
    return sum(int(r["Request Count"]) for (t, _n), r in rows.items() if t == type_)


def failures(rows: dict, type_: str) -> int:
    return sum(int(r["Failure Count"]) for (t, _n), r in rows.items() if t == type_)


def aggregated(rows: dict) -> dict:
    return rows[("", "Aggregated")]


def stub_json(url: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")
