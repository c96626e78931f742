"""The live Capacity view (llmsoak.webui.capacity_page): served while the sweep runs, fixed paths, token off loopback."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from llmsoak.webui.capacity_page import CapacityView
from tests.support.processes import REPO, llmsoak_cmd, spawn


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_the_view_shows_each_step_while_the_sweep_runs(start_stub, tmp_path) -> None:
    stub = start_stub("--max-concurrency", "4", "--output-tokens", "10", "--itl-ms", "2", "--ttft-ms", "20")
    out = tmp_path / "run"
    # GIVEN a sweep started with --listen 127.0.0.1:0
    proc = spawn(llmsoak_cmd("capacity", "--profile", str(REPO / "profiles" / "capacity-stub.yaml"),
                             "--out", str(out), "--listen", "127.0.0.1:0", "--set", f"target.url={stub.url}",
                             "--rates", "2,4", "--warmup", "0s", "--measure", "2s", "--no-users",
                             "--set", "capacity.refine=0", "--set", "capacity.target_rate=3"), cwd=tmp_path, timeout=60)
    try:
        assert proc.url and proc.url.startswith("http://127.0.0.1:")
        base = proc.url.rstrip("/") + "/"
        # WHEN the first steps have ended THEN the page's data says "running" and has them
        deadline = time.time() + 120
        doc = None
        while time.time() < deadline:
            status, body = _get(base + "api/capacity.json")
            if status == 200:
                doc = json.loads(body)
                if doc["steps"]:
                    break
            time.sleep(0.5)
        assert doc is not None and doc["status"] == "running" and doc["exit_code"] is None
        assert doc["steps"][0]["role"] == "synchronous"
        status, page = _get(base)
        assert status == 200 and b"Capacity" in page
        status, png = _get(base + "charts/goodput_load.png")
        assert status == 200 and png.startswith(b"\x89PNG")
        assert _get(base + "../capacity.csv")[0] == 404
        assert _get(base + "profile.yaml")[0] == 404
        assert proc.proc.wait(180) == 0
    finally:
        proc.stop()
    final = json.loads((out / "capacity.json").read_text())
    assert final["status"] == "finished" and final["exit_code"] == 0
    assert "summary" in final and final["summary"].startswith("This server holds")


def test_off_loopback_the_view_needs_a_token(tmp_path) -> None:
    with pytest.raises(ValueError, match="needs a token"):
        CapacityView(tmp_path, "0.0.0.0", 0)  # refused before binding anything
    (tmp_path / "capacity.json").write_text('{"steps": []}')
    view = CapacityView(tmp_path, "127.0.0.1", 0, token="s3cret")
    try:
        assert _get(view.url + "api/capacity.json")[0] == 401
        assert _get(view.url + "api/capacity.json?token=wrong")[0] == 401
        assert _get(view.url + "api/capacity.json", {"Authorization": "Bearer s3cret"}) == (200, b'{"steps": []}')
        assert _get(view.url + "api/capacity.json?token=s3cret")[0] == 200
    finally:
        view.stop()


def test_a_bad_listen_address_is_one_line_and_exit_2(tmp_path) -> None:
    proc = subprocess.run(llmsoak_cmd("capacity", "--profile", str(REPO / "profiles" / "capacity-stub.yaml"),
                                      "--listen", "nowhere"), capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "llmsoak capacity: error: --listen: expected HOST:PORT like 127.0.0.1:0, got 'nowhere'"]
