"""Load shapes: tick() under a controlled clock, and one real headless Locust run driven by a shape."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from llmsoak.events import read_events
from llmsoak.locust.shapes import diurnal_users, shape_from_profile
from llmsoak.profile import load_profile

TARGET = {"url": "http://127.0.0.1:8000", "model": "m"}


def make_shape(tmp_path: Path, load: dict, run: dict | None = None, events: Path | None = None):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"target": TARGET, "load": load, "run": run or {}}))
    cls = shape_from_profile(load_profile(path), events_path=events)
    shape = cls()
    clock = {"t": 0.0}
    shape.get_run_time = lambda: clock["t"]  # controlled wall clock, seconds

    def at(t: float):
        clock["t"] = t
        return shape.tick()
    return shape, at


def test_constant_holds_until_run_duration(tmp_path: Path) -> None:
    _, at = make_shape(tmp_path, {"shape": "constant", "users": 5, "spawn_rate": 2}, {"duration": "10m"})
    assert at(0) == (5, 2.0) and at(599) == (5, 2.0) and at(600) is None


def test_ramp_is_linear_in_scenario_time_then_holds(tmp_path: Path) -> None:
    _, at = make_shape(tmp_path, {"shape": "ramp", "ramp": {"from_users": 0, "to_users": 10, "duration": "100s"},
                                  "time_scale": 2})
    # time_scale 2: the 100 s ramp takes 50 wall seconds
    assert [at(t)[0] for t in (0, 10, 25, 50, 500)] == [0, 2, 5, 10, 10]


def test_steps_end_after_the_last_step(tmp_path: Path) -> None:
    _, at = make_shape(tmp_path, {"shape": "steps", "spawn_rate": 1, "steps": [
        {"users": 2, "duration": "1m"}, {"users": 6, "duration": "1m", "spawn_rate": 3}]})
    assert at(0) == (2, 1.0) and at(59) == (2, 1.0) and at(60) == (6, 3.0) and at(120) is None


def test_spike(tmp_path: Path) -> None:
    _, at = make_shape(tmp_path, {"shape": "spike", "spawn_rate": 1, "spike": {
        "base_users": 3, "spike_users": 30, "at": "5m", "duration": "1m"}})
    assert at(0) == (3, 1.0)
    assert at(300) == (30, 27.0)  # default: reach the spike within about a second
    assert at(360) == (3, 27.0)


def test_diurnal_week_day_night_and_weekend(tmp_path: Path) -> None:
    shape, at = make_shape(tmp_path, {"shape": "diurnal", "time_scale": 168, "diurnal": {
        "day_users": 40, "night_users": 4, "weekend_factor": 0.5, "peak_hour": 15, "repeat": False}})
    load = shape.load
    hour = 3600.0
    assert diurnal_users(load, 15 * hour)[0] == 40           # Monday 15:00 peak
    assert diurnal_users(load, 3 * hour)[0] == 4             # Monday 03:00 trough
    assert 4 < diurnal_users(load, 9 * hour)[0] < 40          # morning: in between, smooth
    assert diurnal_users(load, (5 * 24 + 15) * hour)[:2] == (20, 5)   # Saturday peak, halved
    assert diurnal_users(load, (6 * 24 + 15) * hour)[:2] == (20, 6)   # Sunday
    # time_scale 168: the week lasts one wall hour, then the shape ends (repeat: false)
    assert at(15 / 168 * hour)[0] == 40
    assert at(3599) is not None and at(3600) is None
    curve = [diurnal_users(load, h * hour)[0] for h in range(0, 24 * 7)]
    assert max(abs(a - b) for a, b in zip(curve, curve[1:], strict=False)) <= 0.15 * 40 + 1


def test_diurnal_repeats_by_default(tmp_path: Path) -> None:
    _, at = make_shape(tmp_path, {"shape": "diurnal", "diurnal": {"day_users": 10, "night_users": 0}})
    assert at(15 * 3600) == at(15 * 3600 + 7 * 86400)


def test_shape_none_leaves_locust_in_charge(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"target": TARGET, "load": {"shape": "none"}}))
    assert shape_from_profile(load_profile(path)) is None


def test_changes_are_logged_as_thinned_shape_events(tmp_path: Path, caplog) -> None:
    events = tmp_path / "events.csv"
    _, at = make_shape(tmp_path, {"shape": "ramp", "ramp": {"from_users": 0, "to_users": 1000, "duration": "1000s"}},
                       {"duration": "2000s"}, events=events)
    with caplog.at_level("INFO", logger="llmsoak.shape"):
        for t in range(0, 2001):
            at(t)
    logged = [e["detail"] for e in read_events(events)]
    assert all(e["kind"] == "shape" for e in read_events(events))
    assert logged[0].startswith("ramp: 0 users") and logged[-1].startswith("ramp: end (run time reached")
    assert any("1000 users" in d and "holding" in d for d in logged)
    assert 10 <= len(logged) <= 80  # 1000 one-user changes thinned to ≥10 % moves / once a minute
    assert any("shape ramp:" in r.getMessage() for r in caplog.records)


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_real_locust_run_follows_the_profile_shape(tmp_path: Path, http_server: str) -> None:
    # GIVEN a profile with two steps (1 user, then 3) and a locustfile that installs its shape
    profile = tmp_path / "steps.yaml"
    profile.write_text(yaml.safe_dump({"target": {"url": http_server, "model": "m"}, "load": {
        "shape": "steps", "spawn_rate": 10, "steps": [{"users": 1, "duration": "3s"}, {"users": 3, "duration": "3s"}]}}))
    locustfile = tmp_path / "lf.py"
    locustfile.write_text(textwrap.dedent(f"""
        from locust import HttpUser, constant, events, task
        from llmsoak.locust.shapes import install_shape
        from llmsoak.profile import load_profile

        class Pinger(HttpUser):
            wait_time = constant(0.2)
            host = {http_server!r}

            @task
            def ping(self):
                self.client.get("/")

        @events.init.add_listener
        def _install(environment, **_):
            install_shape(environment, load_profile({str(profile)!r}))
    """))
    events_csv = tmp_path / "events.csv"
    # WHEN Locust runs headless
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--csv", str(tmp_path / "run"),
         "--only-summary"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**__import__("os").environ, "LLMSOAK_EVENTS": str(events_csv)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    # THEN the user count followed the steps and each change was logged as a shape event
    with open(tmp_path / "run_stats_history.csv", newline="") as fh:
        counts = [int(row["User Count"]) for row in csv.DictReader(fh)]
    assert 1 in counts and 3 in counts and max(counts) == 3
    details = [e["detail"] for e in read_events(events_csv) if e["kind"] == "shape"]
    assert details[0].startswith("steps: 1 user at") and "step 1/2" in details[0]
    assert details[1].startswith("steps: 3 users") and "step 2/2" in details[1]
    assert details[-1].startswith("steps: end (shape steps finished")
