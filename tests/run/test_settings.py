"""What ``llmsoak run`` takes from the typed profile (llmsoak/run/settings.py): no YAML of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmsoak.errors import CommandError
from llmsoak.run import settings as run_settings


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text("name: p\n" + body)
    return path


def test_port_placeholder_is_one_free_port_in_url_and_command(tmp_path):
    # GIVEN {port} in the URL and in both spellings of the command
    for command in ("'llmsoak stub --port {port}'", "[llmsoak, stub, --port, '{port}']"):
        path = _write(tmp_path, "target:\n  url: 'http://127.0.0.1:{port}/v1'\n  model: m\n"
                                f"  command: {command}\nrun: {{duration: 10s}}\n")
        # WHEN the run's settings are loaded
        profile, settings = run_settings.load(path)
        # THEN both hold the same real port
        port = settings.target_url.rsplit(":", 1)[1].removesuffix("/v1")
        assert port.isdigit() and int(port) > 0
        assert settings.target_command == ("llmsoak", "stub", "--port", port)
        assert profile.target.url == settings.target_url


def test_settings_come_from_the_typed_profile_with_overrides(tmp_path):
    path = _write(tmp_path, "target: {url: 'http://127.0.0.1:9', model: m}\n"
                            "run: {duration: 1h, workers: 3, checkpoint_interval: 10m}\n"
                            "sampler: {interval_s: 2s, port: 8000, sample_locust: false}\n"
                            "slo: {memory_limit_bytes: 4GiB, ttft_p95_ms: 500}\n")
    profile, settings = run_settings.load(path, {"run.duration": "20s", "run.workers": 0})
    assert (settings.duration_s, settings.workers, settings.checkpoint_interval_s) == (20.0, 0, 600.0)
    assert (settings.sampler_interval_s, settings.sampler_selector, settings.sample_locust) == (2.0, "port:8000", False)
    assert settings.target_command is None and settings.target_flavour == "openai"
    assert settings.slo is profile.slo and settings.slo.memory_limit_bytes == 4 * 2**30


def test_a_steps_shape_without_duration_lasts_its_steps_in_wall_time(tmp_path):
    # GIVEN 2 steps of 10 min of scenario time played at 4× speed, and no run.duration
    path = _write(tmp_path, "target: {url: 'http://127.0.0.1:9', model: m}\n"
                            "load: {shape: steps, time_scale: 4, steps: [{users: 1, duration: 10m}, "
                            "{users: 2, duration: 10m}]}\n")
    _, settings = run_settings.load(path)
    # THEN the run lasts as long as the shape plays: 1200 scenario s / 4 = 300 wall s
    assert settings.duration_s == 300.0


def test_missing_duration_and_bad_profile_are_one_line_errors(tmp_path):
    path = _write(tmp_path, "target: {url: 'http://127.0.0.1:9', model: m}\n")
    with pytest.raises(CommandError, match=r"p.yaml: run.duration: missing \(or give --duration\)"):
        run_settings.load(path)
    with pytest.raises(CommandError, match=r"p.yaml: run.workers: must be >= 0"):
        run_settings.load(path, {"run.duration": "1m", "run.workers": -1})
    with pytest.raises(CommandError, match=r"--profile .*nope.yaml: no such file"):
        run_settings.load(tmp_path / "nope.yaml")


def test_metrics_url_as_a_path_is_on_the_targets_server(tmp_path):
    # GIVEN sampler.metrics_url /metrics and a target whose URL has a path
    path = _write(tmp_path, "target: {url: 'http://127.0.0.1:8123/v1', model: m}\nrun: {duration: 10s}\n"
                            "sampler: {metrics_url: /metrics}\n")
    _, settings = run_settings.load(path)
    # THEN the scrape goes to the same scheme, host and port; and follows --set target.url
    assert settings.metrics_url == "http://127.0.0.1:8123/metrics"
    _, moved = run_settings.load(path, {"target.url": "http://127.0.0.1:9999"})
    assert moved.metrics_url == "http://127.0.0.1:9999/metrics"
    # AND an absolute URL is kept; anything else is one line naming the field
    _, absolute = run_settings.load(path, {"sampler.metrics_url": "http://10.0.0.2:9400/metrics"})
    assert absolute.metrics_url == "http://10.0.0.2:9400/metrics"
    with pytest.raises(CommandError, match=r"sampler\.metrics_url: expected http://HOST:PORT/metrics or a path"):
        run_settings.load(path, {"sampler.metrics_url": "metrics"})
