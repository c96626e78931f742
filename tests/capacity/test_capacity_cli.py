"""``llmsoak capacity`` bad input: one line naming the field, exit 2, nothing started."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.processes import REPO, llmsoak_cmd

STUB_PROFILE = REPO / "profiles" / "capacity-stub.yaml"


def _profile(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load(STUB_PROFILE.read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        if value is None:
            raw[section].pop(key, None)
        else:
            raw[section][key] = value
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(llmsoak_cmd("capacity", *args), capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("changes,expected", [
    ({"capacity__rates": [0, 5]}, "capacity.rates[0]: must be > 0 requests per second (got 0)"),
    ({"capacity__rates": [2, -1]}, "capacity.rates[1]: must be > 0 requests per second (got -1)"),
    ({"capacity__target_rate": 0}, "capacity.target_rate: must be > 0"),
    ({"capacity__steps": 1}, "capacity.steps: a sweep needs at least 2 steps (got 1)"),
    ({"capacity__rates": [3]}, "capacity.rates: a sweep needs at least 2 rates (got 1)"),
    ({"slo__e2e_p95_ms": None}, "slo: a knee search needs slo.ttft_p95_ms or slo.e2e_p95_ms"),
])
def test_bad_profile_input_gets_one_line_naming_the_field_and_exit_2(tmp_path, changes, expected) -> None:
    path = _profile(tmp_path, **changes)
    proc = _run("--profile", str(path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()  # nothing created


@pytest.mark.parametrize("args,expected", [
    (["--rates", "0,4"], "--rates: rates must be > 0 requests per second (got 0)"),
    (["--rates", "4"], "--rates: a sweep needs at least 2 rates (got 1)"),
    (["--steps", "1"], "--steps: a sweep needs at least 2 steps (got 1)"),
    (["--set", "capacity.max_in_flight=0"], "capacity.max_in_flight: must be >= 1 (got 0)"),
])
def test_bad_command_line_input_gets_one_line_and_exit_2(tmp_path, args, expected) -> None:
    proc = _run("--profile", str(STUB_PROFILE), *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr


def test_a_target_that_does_not_answer_exits_4(tmp_path) -> None:
    from llmsoak.run.processes import free_port

    proc = _run("--profile", str(STUB_PROFILE), "--set", f"target.url=http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert "does not answer" in proc.stderr.strip().splitlines()[-1]
