"""The web UI extension inside a real Locust process: routes, tabs, --web-login, distributed master."""

from __future__ import annotations

import json
import re

from support.processes import local_master_args, wait_until
from support.webui import (
    Client,
    start_locust_ui,
    start_sampler,
    write_locustfile,
    write_profile,
)


def _overall(state: dict) -> dict:
    return next((r for r in state["llm"]["patterns"] if r["pattern"] == "all"), {})


def test_soak_page_api_and_tabs_in_a_local_run(tmp_path, start_stub):
    # GIVEN the reference target, a sampler on it and Locust's web UI with llmsoak's locustfile
    stub = start_stub("--ttft-ms", "20", "--itl-ms", "1", "--output-tokens", "32")
    sampler = start_sampler(stub.pid, tmp_path)
    ui = start_locust_ui(write_locustfile(tmp_path), write_profile(tmp_path, warn="1MB"), stub.url,
                         sampler_url=sampler.url)
    client = Client(ui.url)
    try:
        # THEN Locust's page carries the tabs, the download links and the link to the Soak page
        status, _h, index = client.request("/")
        assert status == 200
        args = json.loads(re.search(rb"window.templateArgs = (\{.*\})", index).group(1))
        assert [t["title"] for t in args["extended_tabs"]][-2:] == ["LLM", "Soak"]
        assert any(f["href"] == "./llmsoak/" for f in args["extended_csv_files"])
        assert b'id="llmsoak-soak-link"' in index
        # the page and its files; nothing else from the static folder
        status, headers, page = client.request("/llmsoak/")
        assert status == 200 and b"chart-memory" in page and headers["Content-Type"].startswith("text/html")
        assert client.request("/llmsoak/static/soak.js")[0] == 200
        assert client.request("/llmsoak/static/soak.html")[0] == 404
        assert client.request("/llmsoak/static/..%2f__init__.py")[0] == 404

        # WHEN a test is started the way the form does
        assert client.swarm(2, 2, stub.url)["success"]
        # THEN the state fills: LLM numbers, target memory and CPU, and the memory-warning alert
        state = wait_until(lambda: (s := client.json("/llmsoak/api/state"))
                           and (_overall(s).get("requests") or 0) >= 3 and s["sampler"]["rss_bytes"] and s,
                           timeout=60, interval=1, what="requests and samples in /llmsoak/api/state")
        overall = _overall(state)
        assert overall["ttft_p50_ms"] > 0 and overall["output_tokens"] > 0
        assert state["sampler"]["status"] == "attached" and state["sampler"]["latest"]["rss_bytes"] > 0
        assert state["sampler"]["url_from"] == "--sampler-url"
        assert state["profile"]["name"] == "webui-test"
        assert [a["key"] for a in state["alerts"]["active"]] == ["memory_warn"]
        assert state["llm"]["series"]["rows"]
        # Locust's table tabs get their rows in /stats/requests
        stats = client.json("/stats/requests")
        extended = {e["key"]: e["data"] for e in stats["extended_stats"]}
        llm_all = next(r for r in extended["llmsoak-llm"] if r["pattern"] == "all")
        assert llm_all["requests"] >= 3
        soak = {r["item"]: r["value"] for r in extended["llmsoak-soak"]}
        assert soak["Target RSS"] != "–" and "warning level" in soak["Alerts"]
    finally:
        client.request("/stop")
        ui.stop()
        sampler.stop()


def test_web_login_guards_every_llmsoak_route(tmp_path, start_stub):
    # GIVEN Locust with --web-login (the locustfile provides a login route for the test)
    stub = start_stub()
    ui = start_locust_ui(write_locustfile(tmp_path, login=True), write_profile(tmp_path), stub.url, "--web-login")
    try:
        anonymous = Client(ui.url)
        # WHEN a client that has not logged in asks for llmsoak's routes THEN it is sent to the login page
        for path in ("/llmsoak/api/state", "/llmsoak/", "/llmsoak/static/soak.js"):
            status, headers, body = anonymous.request(path)
            assert status in (302, 401), (path, status)
            assert b"webui-test" not in body and b"chart-memory" not in body
            if status == 302:
                assert "/login" in headers["Location"]
        # and Locust's own stats (where the tab rows ride) are guarded the same way
        assert anonymous.request("/stats/requests")[0] in (302, 401)
        # and the start form's profile check reads nothing for it (no file probing, no test)
        missing = str(tmp_path / "no-such-profile.yaml")
        status, _headers, body = anonymous.request("/swarm", {"user_count": 1, "spawn_rate": 1,
                                                              "host": stub.url, "profile": missing})
        assert status in (302, 401) and b"no-such-profile" not in body
        assert "no-such-profile" not in "\n".join(ui.lines)
        # WHEN it logs in THEN the same routes answer
        user = Client(ui.url)
        assert user.request("/test-login")[0] == 200
        assert user.json("/llmsoak/api/state")["schema"] == 1
        assert user.request("/llmsoak/")[0] == 200
        status, _headers, body = user.request("/swarm", {"user_count": 1, "spawn_rate": 1, "host": stub.url,
                                                         "profile": missing})
        assert status == 200 and json.loads(body)["success"] is False and b"cannot read profile" in body
    finally:
        ui.stop()


def test_master_shows_the_merged_state_of_its_workers(tmp_path, start_stub):
    # GIVEN a master with two worker processes (--processes 2); the master runs no users itself
    stub = start_stub("--ttft-ms", "20", "--itl-ms", "1", "--output-tokens", "32")
    ui = start_locust_ui(write_locustfile(tmp_path), write_profile(tmp_path, users=4), stub.url,
                         *local_master_args(2))
    client = Client(ui.url)
    try:
        wait_until(lambda: client.json("/worker-count")["worker_count"] == 2, timeout=60, interval=0.5,
                   what="two workers connected")
        assert client.swarm(4, 4, stub.url)["success"]
        # THEN the master's state counts the workers' requests (merged from their reports)
        state = wait_until(lambda: (s := client.json("/llmsoak/api/state"))
                           and (_overall(s).get("requests") or 0) >= 5 and s,
                           timeout=90, interval=1, what="worker requests in the master's state")
        assert state["locust"]["role"] == "MasterRunner" and state["locust"]["worker_count"] == 2
        assert _overall(state)["ttft_p95_ms"] > 0
        served = stub.get_json("/_stub/stats")["requests_total"]
        assert served >= _overall(state)["requests"] > 0
        assert state["sampler"]["status"] == "unconfigured"  # no sampler given: said, not an error
    finally:
        client.request("/stop")
        ui.stop()
