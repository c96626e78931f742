"""The shipped profiles/vllm.yaml and profiles/llamacpp.yaml against the real engines.

GIVEN an engine of tests/support/engine_fixtures.py, WHEN ``llmsoak run`` runs the shipped
profile with only the URL, the model and the context changed (``--set``) for 60 s, THEN the
sampler finds the server by the profile's ``sampler.match`` (samples/target.csv has rows), the
server's /metrics lands in samples/server_metrics.csv (vLLM) or is reported as not exposed with
one warning naming the URL and the 404 (llama-cpp-python has no /metrics), and the report shows
it. The load's own failures (the stress pattern's long prompts past a 1024-token context) are not
what these tests are about.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from support.processes import REPO

from llmsoak.events import read_events
from llmsoak.profile.model import Target

RUN_TIMEOUT_S = 420


def _environment_sets(server) -> list[str]:
    """URL, model and (once the profile has the field) context: what differs from the shipped file."""
    sets = [f"target.url={server.url}", f"target.model={server.model}"]
    if "context_tokens" in Target.__dataclass_fields__:  # target.context_tokens: history trimming
        sets.append(f"target.context_tokens={server.context_tokens}")
    return [arg for s in sets for arg in ("--set", s)]


def _run(profile: str, server, out: Path) -> tuple[int, str]:
    argv = [sys.executable, "-m", "llmsoak", "run", "--profile", str(REPO / "profiles" / profile), "--out", str(out),
            "--duration", "60s", "--quiet", *_environment_sets(server)]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    return proc.returncode, proc.stdout + proc.stderr


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _attached_pids(run: Path) -> str:
    return " ".join(e["detail"] for e in read_events(run / "events.csv") if "attached to pid" in e["detail"])


def test_vllm_profile_records_the_servers_metrics(vllm_server, tmp_path):
    code, out = _run("vllm.yaml", vllm_server, tmp_path / "run")
    run = tmp_path / "run"
    assert "Traceback" not in out and json.loads((run / "run.json").read_text())["status"] == "finished", out
    # the profile's match found `vllm serve` (the fixture's API server, perhaps with other vLLMs on the host)
    assert len(_rows(run / "samples" / "target.csv")) >= 30, out
    assert "attached to pid" in _attached_pids(run)
    rows = _rows(run / "samples" / "server_metrics.csv")
    assert len(rows) >= 30, out
    for column in ("requests_running", "requests_waiting", "kv_cache_usage_percent", "preemptions_total"):
        assert all(r[column] != "" for r in rows), column
    assert max(float(r["requests_running"]) for r in rows) > 0
    assert max(float(r["kv_cache_usage_percent"]) for r in rows) > 0
    server = json.loads((run / "analysis" / "verdict.json").read_text())["server"]
    assert server["queue"]["verdict"] in ("stable", "growing") and server["kv_cache"]["verdict"] in ("ok", "saturated")
    html = (run / "analysis" / "report.html").read_text()
    assert "Server telemetry" in html and "not exposed" not in html
    assert "warning: sampler.metrics_url" not in out


def test_llamacpp_profile_finds_llama_cpp_python_and_says_it_has_no_metrics(llamacpp_server, tmp_path):
    code, out = _run("llamacpp.yaml", llamacpp_server, tmp_path / "run")
    run = tmp_path / "run"
    assert "Traceback" not in out and json.loads((run / "run.json").read_text())["status"] == "finished", out
    # `python -m llama_cpp.server` is found by the profile's match (it never was with `llama-server` alone)
    assert len(_rows(run / "samples" / "target.csv")) >= 30, out
    assert str(llamacpp_server.pid) in _attached_pids(run)
    metrics_url = f"{llamacpp_server.url}/metrics"
    warnings = [line for line in out.splitlines() if metrics_url in line]
    assert len(warnings) == 1 and "HTTP 404" in warnings[0], out
    assert any(metrics_url in e["detail"] and e["kind"] == "alert" for e in read_events(run / "events.csv"))
    assert _rows(run / "samples" / "server_metrics.csv") == []
    server = json.loads((run / "analysis" / "verdict.json").read_text())["server"]
    assert server["samples"] == 0 and server["reason"].startswith("not exposed")
    assert "not exposed" in (run / "analysis" / "report.html").read_text()
