"""Profiles: every shipped profile loads; every kind of mistake is one line naming file and field."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest
import yaml

from llmsoak.errors import EXIT_BAD_INPUT, CommandError
from llmsoak.profile import ProfileError, load_profile, profile_from_dict
from llmsoak.profile.distributions import DistributionError, parse_distribution
from llmsoak.profile.patterns import BUILTIN_PATTERNS

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "profiles").glob("*.yaml"))
MINIMAL = {"target": {"url": "http://127.0.0.1:8000", "model": "m"}}


def write(tmp_path: Path, doc: object, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def error_of(tmp_path: Path, doc: object) -> str:
    path = write(tmp_path, doc)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message[len(f"{path}: "):]


def test_shipped_profiles_exist() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"smoke", "mixed", "stress", "soak-168h", "ollama", "vllm", "llamacpp", "lmstudio",
            "chat-app"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_profile_loads_and_round_trips(path: Path) -> None:
    # GIVEN a shipped profile WHEN loaded THEN it validates, and its redacted dump loads back equal
    # `llmsoak run` fills a "{port}" placeholder (demo profiles) before validation; do the same
    overrides = {"target.url": "http://127.0.0.1:8000"} if "{port}" in path.read_text() else None
    profile = load_profile(path, overrides)
    assert profile.name == path.stem
    assert profile.description
    dumped = yaml.safe_load(yaml.safe_dump(profile.to_dict()))
    assert profile_from_dict(dumped, source=path) == profile


def test_reference_profiles_target_the_stub_default_url() -> None:
    for name in ("smoke", "mixed", "stress", "soak-168h"):
        assert load_profile(REPO / "profiles" / f"{name}.yaml").target.url == "http://127.0.0.1:8000"


def test_smoke_sends_every_pattern_within_its_first_minute() -> None:
    profile = load_profile(REPO / "profiles" / "smoke.yaml")
    assert {p.name for p in profile.patterns} == {"active", "casual", "sporadic", "stress"}
    for spec in profile.patterns:
        assert spec.users == 1
        first = spec.first_message_delay_s
        assert (first.max if first.max is not None else first.value) <= 30, spec.name
    assert profile.load.users >= 4 and profile.load.spawn_rate >= 4


def test_soak_profile_is_a_week() -> None:
    profile = load_profile(REPO / "profiles" / "soak-168h.yaml")
    assert profile.run.duration_s == 168 * 3600
    assert profile.load.shape == "diurnal" and profile.load.diurnal.days == 7
    assert profile.slo.memory_limit_bytes == 8 * 2**30


BAD = [
    ({"target": {"url": "ftp://x"}}, "target.url: expected http://HOST[:PORT][/PATH], got 'ftp://x'"),
    ({}, "target.url: required"),
    ({"target": {"url": "http://127.0.0.1:1", "model": "m", "flavor": "openai"}},
     "target.flavor: unknown field 'flavor' (did you mean 'flavour'?)"),
    ({"target": {"url": "http://127.0.0.1:1", "model": "m", "flavour": "olama"}},
     "target.flavour: must be one of openai, ollama, chat (got 'olama') (did you mean 'ollama'?)"),
    ({"target": {"url": "http://127.0.0.1:1"}}, "target.model: required for flavour openai"),
    ({**MINIMAL, "patterns": {"active": {"think_time_s": {"uniform": [3, 1]}}}},
     "patterns.active.think_time_s.uniform[1]: must be >= min (got 1 < 3)"),
    ({**MINIMAL, "patterns": {"active": {"think_time_s": {"dist": "lognormal", "median": 10, "sigma": 0.8,
                                                          "min": 3, "max": 1}}}},
     "patterns.active.think_time_s.max: must be >= min (got 1 < 3)"),
    ({**MINIMAL, "patterns": {"active": {"think_time_s": {"dist": "gamma"}}}},
     "patterns.active.think_time_s.dist: unknown distribution 'gamma'"),
    ({**MINIMAL, "patterns": {"active": {"think_time_s": "soon"}}},
     "patterns.active.think_time_s: not a duration: 'soon'"),
    ({**MINIMAL, "patterns": {"active": {"weight": 1, "users": 2}}},
     "patterns.active.users: give either weight"),
    ({**MINIMAL, "patterns": {"activ": {"weight": 1}}}, "patterns.activ: unknown pattern"),
    ({**MINIMAL, "patterns": {"active": {"think_time": 3}}},
     "patterns.active.think_time: unknown field 'think_time' (did you mean 'think_time_s'?)"),
    ({**MINIMAL, "patterns": {"active": {"weight": -1}}}, "patterns.active.weight: must be >= 0 (got -1)"),
    ({**MINIMAL, "patterns": {"active": {"weight": 0}}}, "patterns: every pattern has weight 0"),
    ({**MINIMAL, "patterns": {"active": {"turns_per_session": 0}}},
     "patterns.active.turns_per_session: must allow at least 1 turn"),
    ({**MINIMAL, "load": {"shape": "ramp"}}, "load.ramp.to_users: required for shape: ramp"),
    ({**MINIMAL, "load": {"shape": "wave"}}, "load.shape: must be one of"),
    ({**MINIMAL, "load": {"shape": "constant", "steps": [{"users": 1, "duration": "1m"}]}},
     "load.steps: settings for shape steps, but load.shape is constant"),
    ({**MINIMAL, "load": {"shape": "steps", "steps": [{"users": 1, "duration": "1x"}]}},
     "load.steps[0].duration: not a duration: '1x'"),
    ({**MINIMAL, "load": {"time_scale": 0}}, "load.time_scale: must be > 0 (got 0)"),
    ({**MINIMAL, "load": {"users": 2.5}}, "load.users: expected an integer, got 2.5"),
    ({**MINIMAL, "load": {"shape": "diurnal", "diurnal": {"day_users": 2, "night_users": 5}}},
     "load.diurnal.night_users: must be <= day_users (got 5 > 2)"),
    ({**MINIMAL, "load": {"shape": "diurnal", "diurnal": {"day_users": 5, "start_day": "mon"}}},
     "load.diurnal.start_day: must be one of"),
    ({**MINIMAL, "run": {"duration": "forever"}}, "run.duration: not a duration: 'forever'"),
    ({**MINIMAL, "run": {"workers": "many"}}, "run.workers: expected auto or a number of processes"),
    ({**MINIMAL, "slo": {"memory_limit_bytes": "lots"}}, "slo.memory_limit_bytes: not a size: 'lots'"),
    ({**MINIMAL, "slo": {"memory_warn_bytes": "2GiB", "memory_limit_bytes": "1GiB"}},
     "slo.memory_warn_bytes: must be <= memory_limit_bytes"),
    ({**MINIMAL, "slo": {"error_rate": 5}}, "slo.error_rate: must be <= 1 (got 5)"),
    ({**MINIMAL, "sampler": {"match": "(unclosed"}}, "sampler.match: not a valid regular expression"),
    ({**MINIMAL, "sampler": {"pid": 5, "port": 80}}, "sampler.port: choose one of match, pid, port, cgroup"),
    ({**MINIMAL, "sampler": {"listen": "everywhere"}}, "sampler.listen: expected HOST:PORT"),
    ({**MINIMAL, "prompts": {"source": "jsonl"}}, "prompts.path: required for source: jsonl"),
    ({**MINIMAL, "prompts": {"source": "sharegpt", "path": "missing.json"}}, "prompts.path: no such file"),
    ({**MINIMAL, "target": {"url": "http://127.0.0.1:1", "flavour": "chat", "chat": {"body": {"q": "x"}}}},
     "target.chat.body: must contain the placeholder {message}"),
    ({**MINIMAL, "target": {"url": "http://127.0.0.1:1", "flavour": "chat", "chat": {"stream": "websocket"}}},
     "target.chat.stream: must be one of none, sse, ndjson"),
    ({**MINIMAL, "target": {"url": "http://127.0.0.1:1", "model": "m", "chat": {"path": "/c"}}},
     "target.chat: only used with flavour: chat"),
    ({**MINIMAL, "target": {"url": "http://127.0.0.1:1", "model": "m", "stream": "yes"}},
     "target.stream: expected true or false, got 'yes'"),
    ({**MINIMAL, "target": {"url": "http://127.0.0.1:1", "model": "m", "context_tokens": 4}},
     "target.context_tokens: must be >= 16 (got 4)"),
    ({**MINIMAL, "target": {"url": "http://127.0.0.1:1", "model": "m", "context_tokens": "8k"}},
     "target.context_tokens: expected an integer, got '8k'"),
    ({**MINIMAL, "load": {"users": 1}, "lod": {}}, "lod: unknown field 'lod' (did you mean 'load'?)"),
    ("target: [unclosed\n", "line 2, column 1: not valid YAML"),
    ("target:\n  url: http://a\n  url: http://b\n", "line 3: duplicate key 'url'"),
    ("- just\n- a list\n", "expected a mapping, got a list"),
]


@pytest.mark.parametrize(("doc", "expected"), BAD, ids=[e.split(":")[0] for _, e in BAD])
def test_invalid_profile_is_one_line_naming_file_and_field(tmp_path: Path, doc: object, expected: str) -> None:
    message = error_of(tmp_path, doc)
    assert message.startswith(expected), message


def test_api_key_literal_is_refused_pointing_at_api_key_env(tmp_path: Path) -> None:
    message = error_of(tmp_path, {"target": {"url": "http://127.0.0.1:1", "model": "m", "api_key": "sk-123"}})
    assert message.startswith("target.api_key: secrets are not stored in profiles")
    assert "api_key_env" in message and "sk-123" not in message


def test_credential_header_literal_is_refused(tmp_path: Path) -> None:
    doc = {"target": {"url": "http://127.0.0.1:1", "model": "m", "headers": {"Authorization": "Bearer x"}}}
    assert error_of(tmp_path, doc).startswith("target.headers.Authorization: credentials are not stored")


def test_secrets_come_from_env_and_are_never_in_the_dumped_dict(tmp_path: Path, monkeypatch) -> None:
    doc = {"target": {"url": "http://127.0.0.1:1", "model": "m", "api_key_env": "LLMSOAK_TEST_KEY",
                      "headers_env": {"X-Token": "LLMSOAK_TEST_TOKEN"}, "headers": {"X-Team": "qa"}}}
    profile = load_profile(write(tmp_path, doc))
    with pytest.raises(ProfileError, match="target.api_key_env: environment variable LLMSOAK_TEST_KEY is not set"):
        profile.target.resolve_headers()
    monkeypatch.setenv("LLMSOAK_TEST_KEY", "sk-secret-1")
    monkeypatch.setenv("LLMSOAK_TEST_TOKEN", "tok-secret-2")
    assert profile.target.resolve_headers() == {"X-Team": "qa", "Authorization": "Bearer sk-secret-1",
                                                "X-Token": "tok-secret-2"}
    dumped = yaml.safe_dump(profile.to_dict())
    assert "sk-secret-1" not in dumped and "tok-secret-2" not in dumped
    assert "LLMSOAK_TEST_KEY" in dumped


def test_bad_env_var_name_is_refused(tmp_path: Path) -> None:
    doc = {"target": {"url": "http://127.0.0.1:1", "model": "m", "api_key_env": "sk-live-abc"}}
    assert error_of(tmp_path, doc).startswith("target.api_key_env: expected an environment variable name")


def test_profile_error_is_a_command_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such profile file"):
        load_profile(tmp_path / "nope.yaml")


def test_overrides_apply_before_validation(tmp_path: Path) -> None:
    path = write(tmp_path, {**MINIMAL, "patterns": {"active": {"think_time_s": {"uniform": [1, 2]}}}})
    profile = load_profile(path, {"target.url": "http://127.0.0.1:9", "patterns": {"active": {
        "think_time_s": {"dist": "exponential", "mean": 4}}}})
    assert profile.target.url == "http://127.0.0.1:9"
    assert profile.pattern("active").think_time_s.kind == "exponential"
    with pytest.raises(ProfileError, match=r"x.yaml: load.users: must be >= 0"):
        load_profile(path, {"load.users": -3})


def test_context_tokens_is_optional_and_overridable(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    assert load_profile(path).target.context_tokens is None
    assert load_profile(path, {"target.context_tokens": 4096}).target.context_tokens == 4096


def test_defaults_and_custom_pattern(tmp_path: Path) -> None:
    # GIVEN no patterns section THEN active/casual/sporadic by weight 3/2/1 with built-in behaviour
    profile = load_profile(write(tmp_path, MINIMAL))
    assert [(p.name, p.weight) for p in profile.patterns] == [("active", 3), ("casual", 2), ("sporadic", 1)]
    assert profile.pattern("casual") == BUILTIN_PATTERNS["casual"]
    # GIVEN a custom pattern based on stress THEN it inherits stress behaviour under its own name
    doc = {**MINIMAL, "patterns": {"batch-job": {"base": "stress", "users": 2, "stream": False}}}
    spec = load_profile(write(tmp_path, doc)).pattern("batch-job")
    assert (spec.base, spec.users, spec.stream) == ("stress", 2, False)
    assert spec.prompt_tokens == BUILTIN_PATTERNS["stress"].prompt_tokens


def test_relative_prompt_path_resolves_next_to_the_profile(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text('{"prompt": "hi"}\n')
    doc = {**MINIMAL, "prompts": {"source": "jsonl", "path": "p.jsonl"}}
    assert load_profile(write(tmp_path, doc)).prompts.path == tmp_path / "p.jsonl"


# --------------------------------------------------------------------------- distributions

@pytest.mark.parametrize(("spec", "seconds", "lo", "hi", "mean"), [
    (5, False, 5, 5, 5),
    ("2m", True, 120, 120, 120),
    ({"uniform": [2, 8]}, False, 2, 8, 5),
    ({"exponential": 30}, True, 0, None, 30),
    ({"choice": [1, 2, 3]}, False, 1, 3, 2),
    ({"dist": "choice", "values": [1, 10], "weights": [9, 1]}, False, 1, 10, 1.9),
    ({"dist": "normal", "mean": 100, "stddev": 10, "min": 0, "max": 1000}, False, 0, 1000, 100),
    ({"dist": "lognormal", "median": 10, "sigma": 0.5, "min": 1, "max": 120}, True, 1, 120, 10 * 1.1331),
    ({"dist": "uniform", "min": "1m", "max": "3m"}, True, 60, 180, 120),
])
def test_distribution_samples_stay_in_bounds_with_the_right_mean(spec, seconds, lo, hi, mean) -> None:
    dist = parse_distribution(spec, seconds=seconds)
    rng = random.Random(42)
    samples = [dist.sample(rng) for _ in range(20_000)]
    assert min(samples) >= lo
    if hi is not None:
        assert max(samples) <= hi
    assert statistics.fmean(samples) == pytest.approx(mean, rel=0.05)
    assert parse_distribution(dist.to_spec(), seconds=seconds) == dist


def test_clipping_applies_to_every_kind() -> None:
    dist = parse_distribution({"dist": "exponential", "mean": 100, "min": 5, "max": 10})
    rng = random.Random(1)
    samples = [dist.sample(rng) for _ in range(1000)]
    assert all(5 <= x <= 10 for x in samples)
    assert samples.count(10.0) > 800  # mean 100 ≫ max: almost every draw is clipped to max


@pytest.mark.parametrize(("spec", "field"), [
    ({"uniform": [1]}, "uniform"), ({"dist": "lognormal", "median": 0, "sigma": 1}, "median"),
    ({"dist": "normal", "mean": 1}, "stddev"), ({"dist": "choice", "values": [1, 2], "weights": [1]}, "weights"),
    ({"a": 1, "b": 2}, ""), ({"lognormal": 3}, "lognormal"), (-1, ""), ([1, 2], ""),
    ({"dist": "uniform", "min": 1, "max": 2, "mean": 3}, "mean"),
])
def test_bad_distribution_names_the_sub_field(spec, field) -> None:
    with pytest.raises(DistributionError) as info:
        parse_distribution(spec)
    assert info.value.field == field


# --------------------------------------------------------------------------- pattern defaults

def _median(dist, n: int = 4001) -> float:
    rng = random.Random(7)
    return statistics.median(dist.sample(rng) for _ in range(n))


def test_pattern_defaults_behave_as_documented() -> None:
    active, casual = BUILTIN_PATTERNS["active"], BUILTIN_PATTERNS["casual"]
    sporadic, stress = BUILTIN_PATTERNS["sporadic"], BUILTIN_PATTERNS["stress"]
    # Active: think times of seconds, long sessions
    assert 2 <= _median(active.think_time_s) <= 15
    assert _median(active.turns_per_session) >= 10
    # Casual: a message every minute or two, short sessions
    assert 60 <= _median(casual.think_time_s) <= 120
    assert _median(casual.turns_per_session) <= 4
    # Sporadic: idle minutes to hours, then a burst of a few quick messages
    pauses = [sporadic.session_pause_s.sample(random.Random(i)) for i in range(2000)]
    assert min(pauses) >= 300 and max(pauses) >= 3 * 3600 and max(pauses) <= 6 * 3600
    assert 2 <= _median(sporadic.turns_per_session) <= 5 and _median(sporadic.think_time_s) <= 15
    # Stress: no think time, long prompts and outputs
    assert stress.think_time_s.sample(random.Random(0)) == 0 and stress.session_pause_s.typical == 0
    assert _median(stress.prompt_tokens) >= 1000 and _median(stress.max_tokens) >= 512
    assert _median(stress.prompt_tokens) > 5 * _median(active.prompt_tokens)


# --------------------------------------------------------------------------- package surface

PUBLIC = {
    # loading and errors
    "load_profile", "validate_profile_file", "profile_from_dict", "ProfileError",
    # the model
    "Profile", "Target", "ChatApi", "EndSession", "PromptsConfig", "LoadConfig", "RampConfig",
    "StepConfig", "SpikeConfig", "DiurnalConfig", "RunConfig", "SamplerConfig", "SloConfig", "CapacityConfig",
    "ArrivalsConfig",
    # allowed values
    "FLAVOURS", "ENDPOINTS", "SHAPES", "PROMPT_SOURCES", "CHAT_STREAMS", "WEEKDAYS",
    # pattern and distribution types a Profile holds (defined in their own modules)
    "PatternSpec", "BUILTIN_NAMES", "BUILTIN_PATTERNS", "Distribution", "DistributionError",
    "parse_distribution",
}


def test_public_surface_is_exactly_what_is_intended() -> None:
    # httpx-style: every public name in the package namespace is in __all__ and vice versa
    import types

    import llmsoak.profile as pkg

    exported = {name for name, value in vars(pkg).items()
                if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert set(pkg.__all__) == exported == PUBLIC
    assert len(pkg.__all__) == len(PUBLIC)  # no duplicates
    assert pkg.ProfileError.__module__ == "llmsoak.profile.model"


def test_python_m_check_prints_ok_or_one_error_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    good = write(tmp_path, MINIMAL, "good.yaml")
    bad = write(tmp_path, {"target": {"url": "ftp://x"}}, "bad.yaml")
    ok = subprocess.run([sys.executable, "-m", "llmsoak.profile", "check", str(good)],
                        capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, f"{good}: ok (good)\n", "")
    fail = subprocess.run([sys.executable, "-m", "llmsoak.profile", "check", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert fail.returncode == EXIT_BAD_INPUT
    assert fail.stderr == f"{bad}: target.url: expected http://HOST[:PORT][/PATH], got 'ftp://x'\n"
