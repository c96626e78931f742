"""The web UI start form's Profile field: another profile is checked, then applied to the users.

Real processes only: reference targets (``llmsoak stub``), Locust's web UI with llmsoak's
locustfile, and tests started through Locust's own ``/swarm`` form endpoint, locally and with
``--processes 2`` (the workers load and apply the form's profile themselves).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.processes import local_master_args, wait_until
from support.webui import Client, start_locust_ui, write_locustfile

pytestmark = pytest.mark.slow


def _startup_profile(tmp_path: Path, url: str) -> Path:
    """OpenAI chat, active users only: what Locust is started with."""
    path = tmp_path / "startup.yaml"
    path.write_text(f"""
name: startup-a
target: {{url: "{url}", flavour: openai, endpoint: chat, model: stub-model, timeout_s: 10}}
patterns:
  active: {{users: 2, think_time_s: {{uniform: [0.2, 0.5]}}, first_message_delay_s: 0}}
load: {{shape: none}}
slo: {{ttft_p95_ms: 60000}}
""")
    return path


def _form_profile(tmp_path: Path, url: str) -> Path:
    """Another target and protocol (a chat app's /chat), the stress pattern only, other SLOs."""
    path = tmp_path / "form-b.yaml"
    path.write_text(f"""
name: form-b
target: {{url: "{url}", flavour: chat, timeout_s: 10}}
patterns:
  stress: {{weight: 1, prompt_tokens: 20, max_tokens: 16, turns_per_session: 2}}
load: {{shape: none}}
slo: {{ttft_p95_ms: 1234}}
""")
    return path


def _bad_profile(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text('name: bad\ntarget: {url: "http://127.0.0.1:9", flavor: chat}\n')
    return path


def _start(client: Client, host: str, profile: Path | str, users: int = 3) -> dict:
    """POST /swarm with the fields Locust's start form sends (``profile`` is its Profile field)."""
    import json

    status, _h, body = client.request("/swarm", {"user_count": users, "spawn_rate": users, "host": host,
                                                 "profile": str(profile)})
    assert status == 200, body
    return json.loads(body)


def _stop(client: Client) -> None:
    client.request("/stop", {})
    wait_until(lambda: client.json("/llmsoak/api/state")["locust"]["state"] in ("stopped", "ready"),
               timeout=30, interval=0.5, what="the test to stop")


def _served(stub) -> dict:
    return stub.get_json("/_stub/stats")


def _check_invalid_profile_starts_nothing(client: Client, bad: Path, host: str, stubs) -> None:
    # WHEN the form names an invalid profile
    answer = _start(client, host, bad)
    # THEN Locust's form gets the error (it shows the message under Start), one line, no test
    assert answer["success"] is False
    assert answer["message"].startswith("llmsoak: ") and "target.flavor: unknown field 'flavor'" in answer["message"]
    assert "\n" not in answer["message"] and "Traceback" not in answer["message"]
    state = client.json("/llmsoak/api/state")
    assert "target.flavor" in state["profile"]["error"]
    soak = {e["key"]: e["data"] for e in client.json("/stats/requests")["extended_stats"]}["llmsoak-soak"]
    assert any(r["item"] == "Profile error" and "flavor" in r["value"] for r in soak)
    time.sleep(2)  # a started test would have sent requests by now
    assert state["locust"]["state"] in ("ready", "stopped")
    assert [_served(s)["requests_total"] for s in stubs] == [0] * len(stubs)


def test_form_profile_is_checked_and_applied_in_a_local_run(tmp_path, start_stub):
    # GIVEN two reference targets, Locust started with profile A (OpenAI chat, active users, target A)
    stub_a, stub_b = start_stub("--output-tokens", "8"), start_stub("--output-tokens", "8")
    locustfile = write_locustfile(tmp_path)
    ui = start_locust_ui(locustfile, _startup_profile(tmp_path, stub_a.url), stub_a.url)
    client = Client(ui.url)
    profile_b = _form_profile(tmp_path, stub_b.url)
    try:
        _check_invalid_profile_starts_nothing(client, _bad_profile(tmp_path), stub_a.url, [stub_a, stub_b])
        assert "not started" in "\n".join(ui.lines) and "Traceback" not in "\n".join(ui.lines)

        # WHEN the form names profile B; the Host field still shows profile A's target
        assert _start(client, stub_a.url, profile_b)["success"]
        # THEN B's target gets B's protocol (/chat, with session ends) from B's only pattern, A gets nothing
        wait_until(lambda: _served(stub_b)["requests_by_endpoint"].get("/chat", 0) >= 5, timeout=60,
                   interval=0.5, what="chat-app requests at target B")
        rows = [r["name"] for r in client.json("/stats/requests")["stats"] if r["name"] != "Aggregated"]
        assert rows and all(name.endswith("[stress]") for name in rows), rows
        assert _served(stub_a)["requests_total"] == 0
        # and the Soak page follows (its monitor re-reads the profile every 2 s)
        state = wait_until(lambda: (s := client.json("/llmsoak/api/state"))["profile"]["name"] == "form-b" and s,
                           timeout=20, interval=0.5, what="form-b on the Soak page")
        assert state["profile"]["error"] is None
        assert state["profile"]["slo"]["ttft_p95_ms"] == 1234
        assert {r["pattern"] for r in state["llm"]["patterns"]} == {"stress", "all"}
        _stop(client)

        # WHEN the person types a Host that is no profile's target THEN it wins over the profile's
        stub_c = start_stub("--output-tokens", "8")
        assert _start(client, stub_c.url, profile_b)["success"]
        wait_until(lambda: _served(stub_c)["requests_by_endpoint"].get("/chat", 0) >= 3, timeout=60,
                   interval=0.5, what="requests at the explicitly typed host")
        _stop(client)

        # WHEN the form goes back to profile A with B's target still in the Host field
        before_b = _served(stub_b)["requests_total"]
        assert _start(client, stub_b.url, locustfile.parent / "startup.yaml", users=2)["success"]
        # THEN A's users run against A's target again
        wait_until(lambda: _served(stub_a)["requests_by_endpoint"].get("/v1/chat/completions", 0) >= 3,
                   timeout=60, interval=0.5, what="OpenAI requests at target A")
        assert _served(stub_b)["requests_total"] == before_b
    finally:
        client.request("/stop", {})
        ui.stop()


def test_form_profile_is_applied_by_the_workers(tmp_path, start_stub):
    # GIVEN a master with two worker processes, started with profile A
    stub_a, stub_b = start_stub("--output-tokens", "8"), start_stub("--output-tokens", "8")
    ui = start_locust_ui(write_locustfile(tmp_path), _startup_profile(tmp_path, stub_a.url), stub_a.url,
                         *local_master_args(2))
    client = Client(ui.url)
    try:
        wait_until(lambda: client.json("/worker-count")["worker_count"] == 2, timeout=60, interval=0.5,
                   what="two workers connected")
        _check_invalid_profile_starts_nothing(client, _bad_profile(tmp_path), stub_a.url, [stub_a, stub_b])

        # WHEN the form names profile B
        assert _start(client, stub_a.url, _form_profile(tmp_path, stub_b.url), users=4)["success"]
        # THEN both workers run B's stress users against B's target; the master's merged state says so
        wait_until(lambda: _served(stub_b)["requests_by_endpoint"].get("/chat", 0) >= 8, timeout=90,
                   interval=0.5, what="chat-app requests at target B from the workers")
        state = wait_until(lambda: (s := client.json("/llmsoak/api/state"))
                           and any(r["pattern"] == "stress" and (r["requests"] or 0) > 0
                                   for r in s["llm"]["patterns"]) and s,
                           timeout=60, interval=1, what="stress rows in the master's state")
        assert {r["pattern"] for r in state["llm"]["patterns"]} == {"stress", "all"}
        assert _served(stub_a)["requests_total"] == 0
        workers = client.json("/stats/requests")["workers"]
        assert len(workers) == 2 and all(w["user_count"] == 2 for w in workers), workers
        logs = "\n".join(ui.lines)
        assert logs.count("form-b) applied") >= 3, logs[-3000:]  # the master and both workers
    finally:
        client.request("/stop", {})
        ui.stop()
