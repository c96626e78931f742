"""The profile's ``arrivals`` section: open-loop arrivals as the load of a plain Locust run.

GIVEN a profile with ``arrivals: {rate, distribution, max_in_flight, ...}`` and the stub on
127.0.0.1, WHEN ``locust -f locustfiles/llm_chat.py --profile P --headless -t N`` runs (alone
and with ``--processes 2``), THEN the requests go out at the rate (Locust's request rows count
them), whether or not replies came back: with ``max_in_flight: 1`` and a slow server the
arrivals due while one is outstanding are counted as dropped in llm_timeseries.csv and the ones
sent are not late; bad input in the section is one line naming the field, exit 2.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support.processes import REPO

from llmsoak.errors import EXIT_BAD_INPUT
from llmsoak.locust.timeseries import LLMState
from llmsoak.profile import ProfileError, profile_from_dict


def _profile(tmp_path: Path, url: str, arrivals: dict) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({
        "name": "arrivals",
        "target": {"url": url, "flavour": "openai", "endpoint": "chat", "model": "m", "stream": True},
        "patterns": {"active": {"weight": 1, "max_tokens": 8, "turns_per_session": 3, "prompt_tokens": 20}},
        "arrivals": arrivals,
        "run": {"duration": "10m"},
    }))
    return path


def _run(tmp_path: Path, profile: Path, seconds: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(REPO / "locustfiles" / "llm_chat.py"), "--profile", str(profile),
         "--headless", "-t", f"{seconds}s", "--csv", str(tmp_path / "st"), "--llm-timeseries", str(tmp_path / "ts.csv"),
         "--only-summary", "--exit-code-on-error", "0", *extra],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)


def _posts(tmp_path: Path) -> int:
    with open(tmp_path / "st_stats.csv", newline="") as fh:
        return sum(int(r["Request Count"]) for r in csv.DictReader(fh) if r["Type"] == "POST")


def _arrivals(tmp_path: Path) -> dict:
    """Sums (and the largest lag) over the ``all`` rows of llm_timeseries.csv."""
    out = {"scheduled": 0, "dropped": 0, "lag_max_ms": 0.0, "requests": 0}
    with open(tmp_path / "ts.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["pattern"] != "all":
                assert row["arrivals_scheduled"] == ""  # per pattern: not filled
                continue
            out["scheduled"] += int(row["arrivals_scheduled"])
            out["dropped"] += int(row["arrivals_dropped"])
            out["requests"] += int(row["requests"])
            if row["lag_max_ms"]:
                out["lag_max_ms"] = max(out["lag_max_ms"], float(row["lag_max_ms"]))
    return out


@pytest.mark.parametrize("processes", [1, 2])
def test_a_constant_rate_sends_the_expected_number_of_requests(tmp_path, start_stub, processes):
    stub = start_stub("--ttft-ms", "5", "--itl-ms", "1")
    rate, seconds = 8, 6
    extra = ("--processes", "2") if processes == 2 else ()
    started = time.monotonic()
    # A graceful stop may wait --stop-timeout for users; the driver ends at once instead.
    proc = _run(tmp_path, _profile(tmp_path, stub.url, {"rate": rate, "distribution": "constant",
                                                        "max_in_flight": 16}), seconds, "--stop-timeout", "60", *extra)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.monotonic() - started < seconds + 45  # far below -t + --stop-timeout
    posts = _posts(tmp_path)
    # The schedule starts once every process has its driver (well under 2 s here) and ends at -t.
    assert rate * (seconds - 2) <= posts <= rate * seconds + 1, (posts, proc.stderr[-1500:])
    seen = _arrivals(tmp_path)
    assert seen["dropped"] == 0
    assert seen["requests"] == posts
    assert seen["scheduled"] >= posts
    assert 0 < seen["lag_max_ms"] < 1000  # sent on time, and the lag was measured


def test_a_saturated_run_drops_arrivals_instead_of_sending_them_late(tmp_path, start_stub):
    stub = start_stub("--ttft-ms", "1500", "--itl-ms", "1")  # every reply takes 1.5 s
    rate, seconds = 10, 5
    proc = _run(tmp_path, _profile(tmp_path, stub.url, {"rate": rate, "distribution": "constant",
                                                        "max_in_flight": 1, "max_lag_s": 0.5}), seconds)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = _arrivals(tmp_path)
    posts = _posts(tmp_path)
    assert posts <= seconds // 1.5 + 2  # one at a time, each 1.5 s
    assert seen["dropped"] >= rate * (seconds - 2) - posts  # the rest were counted, not queued
    assert seen["scheduled"] >= seen["dropped"] + posts - 1
    assert seen["lag_max_ms"] < 500  # what was sent went out on time


@pytest.mark.parametrize(("arrivals", "message"), [
    ({"rate": 0}, "arrivals.rate: must be > 0 requests per second (got 0)"),
    ({"rate": "fast"}, "arrivals.rate: expected a number of requests per second, got 'fast'"),
    ({"distribution": "poisson"}, "arrivals.rate: required"),
    ({"rate": 2, "burstiness": 0.5}, "arrivals.burstiness: only used with distribution: gamma"),
    ({"rate": 2, "max_in_flight": 0}, "arrivals.max_in_flight"),
    ({"rate": 2, "distribution": "uniform"}, "arrivals.distribution"),
    ({"rate": 2, "speed": 3}, "arrivals.speed"),
])
def test_bad_input_is_one_line_naming_the_field(tmp_path, arrivals, message):
    proc = _run(tmp_path, _profile(tmp_path, "http://127.0.0.1:9", arrivals), 2)
    assert proc.returncode == EXIT_BAD_INPUT
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_section_round_trips_and_burstiness_goes_with_gamma():
    raw = {"name": "x", "target": {"url": "http://127.0.0.1:9", "model": "m"},
           "arrivals": {"rate": 3, "distribution": "gamma", "burstiness": 0.5, "max_in_flight": 4, "max_lag_s": 0.2}}
    profile = profile_from_dict(raw)
    assert profile.arrivals.rate == 3.0 and profile.arrivals.burstiness == 0.5
    assert profile_from_dict(profile.to_dict()) == profile
    with pytest.raises(ProfileError, match="arrivals.rate"):
        profile_from_dict({**raw, "arrivals": {"rate": -1}})


def test_workers_arrivals_merge_on_the_master_into_the_all_row():
    workers = [LLMState(role="worker"), LLMState(role="worker")]
    t = 1_800_000_000.0  # a minute start
    workers[0].record_arrivals(scheduled=5, dropped=1, now=t + 1)
    workers[0].record_arrivals(lag_ms=2.0, now=t + 2)
    workers[1].record_arrivals(scheduled=4, dropped=2, lag_ms=40.0, now=t + 3)
    master = LLMState(role="master")
    for w in workers:
        master.merge_arrivals_report(w.take_arrivals_report())
        assert not w.arrival_minutes  # bounded: cleared once shipped
    rows = master.close_minutes(now=t + 120)
    all_row = next(r for r in rows if r["pattern"] == "all")
    assert (all_row["arrivals_scheduled"], all_row["arrivals_dropped"]) == (9, 3)
    assert all_row["lag_max_ms"] == 40.0 and 2.0 <= all_row["lag_p95_ms"] <= 40.0
    assert not master.arrival_minutes
    # A run without the section leaves the columns empty.
    plain = LLMState()
    plain.sample_users({"active": 1}, now=t)
    plain.started_at = t
    assert "arrivals_scheduled" not in next(r for r in plain.close_minutes(now=t + 120) if r["pattern"] == "all")
