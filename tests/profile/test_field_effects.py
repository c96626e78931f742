"""Every profile field has an effect: a field that nothing reads must never pass silently again.

GIVEN the profile model (llmsoak/profile/model.py and patterns.py), walked field by field, so a
new field appears here by itself, WHEN one field is changed in an otherwise fixed profile, THEN
something a user of llmsoak can observe changes:

* ``user``: what a simulated Locust user of the profile does over a few seeded sessions (the
  requests' path, body, headers and timeouts, its sleeps, the end of a session, how it reads a
  reply), through the real user classes with only the network left out;
* ``shape``: the users and spawn rate the load shape asks for over eight days of scenario time;
* ``run``: the run's settings and the command lines of its children (the target, the samplers
  with their /metrics scrape, Locust);
* ``slo``: the SLO gate's checks on fixed results;
* ``run_dir``: the resolved profile.yaml of the run directory (only for ``name``,
  ``description`` and a pattern's ``description``, which exist to be read there).

A field without an entry in EFFECTS fails ``test_every_field_has_an_effect_test``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from pathlib import Path

import pytest

from llmsoak.profile import Profile, profile_from_dict
from llmsoak.profile.distributions import Distribution

# ------------------------------------------------------------------------------ the model's fields
NOT_PROFILE_FIELDS = {"source_path": "set by the loader (the file it came from), not written in a profile"}


def _unwrap(tp):
    """The dataclass inside ``X | None`` or ``tuple[X, ...]``, else None."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [_unwrap(a) for a in typing.get_args(tp) if a is not type(None)]
        return next((i for i in inner if i is not None), None)
    if origin is tuple:
        args = typing.get_args(tp)
        return _unwrap(args[0]) if args else None
    if dataclasses.is_dataclass(tp) and tp is not Distribution:
        return tp
    return None


def model_fields(cls=Profile, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf field of the model (``patterns.think_time_s``, ``load.steps.users``)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        if path in NOT_PROFILE_FIELDS:
            continue
        inner = _unwrap(hints[f.name])
        out += model_fields(inner, f"{path}.") if inner is not None else [path]
    return out


# ------------------------------------------------------------------------------ profiles to compare
BASE = {
    "name": "effects", "description": "base profile of the field-effects test",
    "target": {"url": "http://127.0.0.1:8000", "flavour": "openai", "endpoint": "chat", "model": "m",
               "stream": True, "timeout_s": 60, "connect_timeout_s": 10, "ready_timeout_s": 60},
    "patterns": {"active": {"weight": 3}, "casual": {"weight": 2}},
    "load": {"shape": "constant", "users": 8, "spawn_rate": 2},
    "run": {"duration": "1h", "workers": 2, "checkpoint_interval": "1h", "seed": 7},
    "sampler": {"interval_s": 1.0},
    "slo": {},
}
CHAT = {"target.flavour": "chat", "target.model": None,
        "target.chat": {"path": "/chat", "body": {"message": "{message}", "session": "{session_id}"},
                        "reply_path": "reply", "stream": "sse"}}
SHAPES = {
    "ramp": {"load.shape": "ramp", "load.ramp": {"from_users": 2, "to_users": 20, "duration": "30m"}},
    "steps": {"load.shape": "steps", "load.steps": [{"users": 4, "duration": "10m"}, {"users": 8, "duration": "10m"}]},
    "spike": {"load.shape": "spike", "load.spike": {"spike_users": 30, "at": "5m", "duration": "2m"}},
    "diurnal": {"load.shape": "diurnal", "load.diurnal": {"day_users": 40}},
}


def _set(raw: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    node = raw
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = copy.deepcopy(value)


def build(tmp_path: Path, edits: dict) -> Profile:
    raw = copy.deepcopy(BASE)
    for dotted, value in edits.items():
        _set(raw, dotted, value)
    return profile_from_dict(raw, source=tmp_path / "effects.yaml")


# ------------------------------------------------------------------------------ observers
CANNED_BODY = {"reply": "r1", "answer": {"text": "r2"}, "usage": {"prompt_tokens": 3, "completion_tokens": 4},
               "stats": {"prompt_tokens": 30, "completion_tokens": 40},
               "choices": [{"message": {"content": "o"}, "text": "t"}]}
CANNED_EVENT = {"delta": "d1", "chunk": "d2", "choices": [{"delta": {"content": "e"}, "text": "t"}]}


class _FakeResponse:
    status_code = 204

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def success(self):
        pass

    def failure(self, _message):
        pass


def observe_user(profile: Profile, sessions: int = 3) -> list:
    """The first user of each pattern over ``sessions`` sessions: every request, sleep and session end."""
    import collections
    import itertools

    from locust.env import Environment  # Locust's import is slow: only this observer needs it

    from llmsoak.locust import users as users_module
    from llmsoak.locust.results import RequestResult
    from llmsoak.locust.user_classes import build_user_classes
    from llmsoak.prompts import prompt_source_from_profile

    # every observation starts as a fresh Locust process: the first user of a pattern, session 1
    users_module._session_ids = itertools.count(1)
    users_module._user_index = collections.defaultdict(itertools.count)

    classes = build_user_classes(profile, prompt_source=prompt_source_from_profile(profile))
    env = Environment(user_classes=list(classes.values()), host=profile.target.url)
    trace: list = []
    for name, cls in sorted(classes.items()):
        trace.append(("class", name, cls.weight, cls.fixed_count, cls.network_timeout, cls.connection_timeout))
        user = cls(env)
        flavour = user.flavour
        trace.append(("reads", flavour.path, flavour.stream_format, _decoded(flavour)))

        def send(messages, session_id, user=user, flavour=flavour):
            trace.append(("send", flavour.path, json.dumps(flavour.body(messages, session_id), sort_keys=True),
                          sorted(user.headers.items())))
            result = RequestResult()
            result.text = "a reply of a few words"
            return result

        class Client:
            def request(self, method, path, **kw):
                trace.append(("client", method, path, kw.get("name")))
                return _FakeResponse()

        user.send = send
        user._sleep = lambda seconds: trace.append(("sleep", round(float(seconds), 6)))
        user.client = Client()
        for _ in range(sessions):
            user.chat_session()
    return trace


def _decoded(flavour) -> tuple:
    from llmsoak.locust.results import RequestResult

    out = []
    for decode, obj in ((flavour.decode_body, CANNED_BODY), (flavour.decode_event, CANNED_EVENT)):
        result = RequestResult()
        try:
            out.append((decode(copy.deepcopy(obj), result), result.input_tokens, result.output_tokens))
        except Exception as err:  # noqa: BLE001 - a flavour that rejects the canned reply: that is its reading
            out.append(type(err).__name__)
    return tuple(out)


SHAPE_GRID_S = [0, 1, 30, 90, 250, 330, 400, 700, 1000, 1300, 1900, 3600, 3 * 3600, 7 * 3600, 11 * 3600,
                15 * 3600, 20 * 3600, 1.5 * 86400, 2.6 * 86400, 5.3 * 86400, 6.5 * 86400, 7.4 * 86400, 9.2 * 86400]


def observe_shape(profile: Profile) -> list:
    from llmsoak.locust.shapes import shape_from_profile

    cls = shape_from_profile(profile)
    if cls is None:
        return ["none"]
    shape = cls()
    return [shape.time_scale, shape.run_duration_s, str(shape.events_path),
            *[shape.target(t) for t in SHAPE_GRID_S]]


def observe_run(profile: Profile, tmp_path: Path) -> list:
    from llmsoak.run import children
    from llmsoak.run.settings import settings_from_profile
    from llmsoak.rundir import RunDir

    settings = settings_from_profile(profile, tmp_path / "effects.yaml")
    run = RunDir(tmp_path / "run")
    out = [repr(dataclasses.replace(settings, slo=None))]
    out.append(children.target_sampler_child(settings, run, None).argv)
    out.append(children.locust_sampler_child(settings, run, 1234).argv if settings.sample_locust else None)
    argv = children.locust_child(settings, run, 1, settings.duration_s).argv
    out.append([a for a in argv if not a.isdigit()])  # the master's free port changes every call
    if settings.target_command:
        out.append(children.target_child(settings, run).argv)
    return out


def observe_slo(profile: Profile) -> list:
    from llmsoak.run import slo

    totals = {"requests": 1000, "failures": 20, "ttft_p95_ms": 800.0, "e2e_p95_ms": 5000.0}
    verdict = {"verdict": "leak", "metrics": {}}
    checks = slo.evaluate(profile.slo, totals, 3.0e9, verdict)
    return [repr(checks), slo.exit_code(checks)]


def observe_run_dir(profile: Profile, tmp_path: Path) -> str:
    from llmsoak.redact import Redactor
    from llmsoak.run.launch import resolved_profile_yaml

    return resolved_profile_yaml(profile, tmp_path / "effects.yaml", Redactor.for_profile(profile))


def observe(kind: str, profile: Profile, tmp_path: Path):
    if kind == "user":
        return observe_user(profile)
    if kind == "shape":
        return observe_shape(profile)
    if kind == "run":
        return observe_run(profile, tmp_path)
    if kind == "slo":
        return observe_slo(profile)
    return observe_run_dir(profile, tmp_path)


# ------------------------------------------------------------------------------ one entry per field
# field path → (observer, edits of the base profile, edits of the changed one)
def _pattern(key: str, value, base: dict | None = None) -> tuple:
    return ("user", base or {}, {**(base or {}), f"patterns.active.{key}": value})


EFFECTS: dict[str, tuple] = {
    "name": ("run_dir", {}, {"name": "other-name"}),
    "description": ("run_dir", {}, {"description": "another description"}),
    "target.url": ("run", {}, {"target.url": "http://127.0.0.1:9001"}),
    "target.flavour": ("user", {}, {"target.flavour": "ollama"}),
    "target.endpoint": ("user", {}, {"target.endpoint": "completions"}),
    "target.model": ("user", {}, {"target.model": "another-model"}),
    "target.api_key_env": ("user", {}, {"target.api_key_env": "LLMSOAK_EFFECTS_KEY"}),
    "target.headers": ("user", {}, {"target.headers": {"X-Team": "soak"}}),
    "target.headers_env": ("user", {}, {"target.headers_env": {"X-Tenant": "LLMSOAK_EFFECTS_TENANT"}}),
    "target.stream": ("user", {}, {"target.stream": False}),
    "target.timeout_s": ("user", {}, {"target.timeout_s": 5}),
    "target.connect_timeout_s": ("user", {}, {"target.connect_timeout_s": 2}),
    "target.chat.path": ("user", CHAT, {**CHAT, "target.chat.path": "/api/ask"}),
    "target.chat.method": ("user", CHAT, {**CHAT, "target.chat.method": "PUT"}),
    "target.chat.body": ("user", CHAT, {**CHAT, "target.chat.body": {"q": "{message}"}}),
    "target.chat.reply_path": ("user", CHAT, {**CHAT, "target.chat.reply_path": "answer.text"}),
    "target.chat.stream": ("user", CHAT, {**CHAT, "target.chat.stream": "ndjson"}),
    "target.chat.delta_path": ("user", CHAT, {**CHAT, "target.chat.delta_path": "chunk"}),
    "target.chat.usage_path": ("user", CHAT, {**CHAT, "target.chat.usage_path": "stats"}),
    "target.chat.end_session.method": ("user", CHAT, {**CHAT, "target.chat.end_session": {"method": "POST"}}),
    "target.chat.end_session.path": ("user", CHAT, {**CHAT, "target.chat.end_session": {"path": "/bye/{session_id}"}}),
    "target.command": ("run", {}, {"target.command": "llmsoak stub --port 8000"}),
    "target.ready_timeout_s": ("run", {}, {"target.ready_timeout_s": 600}),
    "patterns.name": ("user", {}, {"patterns": {"chatty": {"base": "active", "weight": 3}, "casual": {"weight": 2}}}),
    "patterns.base": ("user", {}, {"patterns": {"active": {"weight": 3}, "casual": {"base": "sporadic", "weight": 2}}}),
    "patterns.description": ("run_dir", {}, {"patterns.active.description": "people who type a lot"}),
    "patterns.weight": _pattern("weight", 1),
    "patterns.users": ("user", {}, {"patterns.active": {"users": 2}}),
    "patterns.think_time_s": _pattern("think_time_s", 1),
    "patterns.turns_per_session": _pattern("turns_per_session", 2),
    "patterns.prompt_tokens": _pattern("prompt_tokens", 40),
    "patterns.max_tokens": _pattern("max_tokens", 17),
    "patterns.stream": _pattern("stream", False),
    "patterns.session_pause_s": _pattern("session_pause_s", 3),
    "patterns.first_message_delay_s": _pattern("first_message_delay_s", 4),
    "patterns.history": _pattern("history", False),
    "patterns.max_history_turns": _pattern("max_history_turns", 1),
    "prompts.source": ("user", {}, {"prompts": {"source": "jsonl", "path": "prompts.jsonl"}}),
    "prompts.path": ("user", {"prompts": {"source": "jsonl", "path": "prompts.jsonl"}},
                     {"prompts": {"source": "jsonl", "path": "other.jsonl"}}),
    "prompts.system_prompt": ("user", {}, {"prompts.system_prompt": "You are terse."}),
    "load.shape": ("shape", {}, {"load.shape": "ramp", "load.ramp": {"to_users": 8, "duration": "10m"}}),
    "load.users": ("shape", {}, {"load.users": 3}),
    "load.spawn_rate": ("shape", {}, {"load.spawn_rate": 0.5}),
    "load.time_scale": ("shape", {}, {"load.time_scale": 60}),
    "load.ramp.from_users": ("shape", SHAPES["ramp"], {**SHAPES["ramp"], "load.ramp.from_users": 0}),
    "load.ramp.to_users": ("shape", SHAPES["ramp"], {**SHAPES["ramp"], "load.ramp.to_users": 30}),
    "load.ramp.duration_s": ("shape", SHAPES["ramp"], {**SHAPES["ramp"], "load.ramp.duration": "1h"}),
    "load.steps.users": ("shape", SHAPES["steps"], {**SHAPES["steps"], "load.steps": [
        {"users": 5, "duration": "10m"}, {"users": 8, "duration": "10m"}]}),
    "load.steps.duration_s": ("shape", SHAPES["steps"], {**SHAPES["steps"], "load.steps": [
        {"users": 4, "duration": "20m"}, {"users": 8, "duration": "10m"}]}),
    "load.steps.spawn_rate": ("shape", SHAPES["steps"], {**SHAPES["steps"], "load.steps": [
        {"users": 4, "duration": "10m", "spawn_rate": 9}, {"users": 8, "duration": "10m"}]}),
    "load.spike.base_users": ("shape", SHAPES["spike"], {**SHAPES["spike"], "load.spike.base_users": 1}),
    "load.spike.spike_users": ("shape", SHAPES["spike"], {**SHAPES["spike"], "load.spike.spike_users": 50}),
    "load.spike.at_s": ("shape", SHAPES["spike"], {**SHAPES["spike"], "load.spike.at": "20m"}),
    "load.spike.duration_s": ("shape", SHAPES["spike"], {**SHAPES["spike"], "load.spike.duration": "10m"}),
    "load.spike.spawn_rate": ("shape", SHAPES["spike"], {**SHAPES["spike"], "load.spike.spawn_rate": 10}),
    "load.diurnal.day_users": ("shape", SHAPES["diurnal"], {**SHAPES["diurnal"], "load.diurnal.day_users": 60}),
    "load.diurnal.night_users": ("shape", SHAPES["diurnal"], {**SHAPES["diurnal"], "load.diurnal.night_users": 1}),
    "load.diurnal.weekend_factor": ("shape", SHAPES["diurnal"],
                                    {**SHAPES["diurnal"], "load.diurnal.weekend_factor": 0.1}),
    "load.diurnal.peak_hour": ("shape", SHAPES["diurnal"], {**SHAPES["diurnal"], "load.diurnal.peak_hour": 9}),
    "load.diurnal.start_day": ("shape", SHAPES["diurnal"], {**SHAPES["diurnal"], "load.diurnal.start_day": "friday"}),
    "load.diurnal.start_hour": ("shape", SHAPES["diurnal"], {**SHAPES["diurnal"], "load.diurnal.start_hour": 6}),
    "load.diurnal.days": ("shape", SHAPES["diurnal"], {**SHAPES["diurnal"], "load.diurnal.days": 2}),
    "load.diurnal.repeat": ("shape", SHAPES["diurnal"], {**SHAPES["diurnal"], "load.diurnal.repeat": False}),
    "run.duration_s": ("run", {}, {"run.duration": "2h"}),
    "run.workers": ("run", {}, {"run.workers": 0}),
    "run.checkpoint_interval_s": ("run", {}, {"run.checkpoint_interval": "10m"}),
    "run.events_path": ("shape", {}, {"run.events_path": "events.csv"}),
    "run.seed": ("user", {}, {"run.seed": 8}),
    "sampler.interval_s": ("run", {}, {"sampler.interval_s": 5}),
    "sampler.match": ("run", {}, {"sampler.match": "vllm serve"}),
    "sampler.pid": ("run", {}, {"sampler.pid": 4321}),
    "sampler.port": ("run", {}, {"sampler.port": 8000}),
    "sampler.cgroup": ("run", {}, {"sampler.cgroup": "/sys/fs/cgroup/x"}),
    "sampler.listen": ("run", {}, {"sampler.listen": "127.0.0.1:9464"}),
    "sampler.metrics_url": ("run", {}, {"sampler.metrics_url": "/metrics"}),
    "sampler.sample_locust": ("run", {}, {"sampler.sample_locust": False}),
    "slo.ttft_p95_ms": ("slo", {}, {"slo.ttft_p95_ms": 500}),
    "slo.e2e_p95_ms": ("slo", {}, {"slo.e2e_p95_ms": 4000}),
    "slo.error_rate": ("slo", {}, {"slo.error_rate": 0.01}),
    "slo.memory_warn_bytes": ("slo", {}, {"slo.memory_warn_bytes": "2GiB"}),
    "slo.memory_limit_bytes": ("slo", {}, {"slo.memory_limit_bytes": "2GiB"}),
    "slo.fail_on_leak": ("slo", {}, {"slo.fail_on_leak": False}),
    # TODO(target.context_tokens, history trimming by another branch): add
    # "target.context_tokens": ("user", {...long history...}, {"target.context_tokens": 256}) when it lands.
}

KNOWN_WITHOUT_EFFECT = {
    "target.chat.method": "the chat request is always POST (llmsoak/locust/users.py send)",
    "target.chat.end_session.method": "the end of a session is always DELETE (llmsoak/locust/users.py end_session)",
}
"""Fields found read by nothing when this test was written; their fix belongs to llmsoak/locust/.
Strict xfail: once they work, the entry must go."""


@pytest.fixture
def prompt_files(tmp_path, monkeypatch):
    for name, text in (("prompts.jsonl", "a question from the file about soup"),
                       ("other.jsonl", "another question about bread and butter")):
        (tmp_path / name).write_text("\n".join(json.dumps({"prompt": f"{text} {i}"}) for i in range(5)) + "\n")
    monkeypatch.setenv("LLMSOAK_EFFECTS_KEY", "sk-effects")
    monkeypatch.setenv("LLMSOAK_EFFECTS_TENANT", "tenant-1")
    return tmp_path


def test_every_field_has_an_effect_test():
    fields = model_fields()
    assert len(fields) > 60, fields
    missing = [f for f in fields if f not in EFFECTS]
    assert not missing, f"profile field(s) without an effect test: {missing}: add them to EFFECTS"
    assert not set(EFFECTS) - set(fields), "EFFECTS lists fields the model no longer has"


@pytest.mark.parametrize("field", model_fields())
def test_changing_the_field_changes_what_llmsoak_does(field, prompt_files, request):
    if field in KNOWN_WITHOUT_EFFECT:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_WITHOUT_EFFECT[field], strict=True))
    kind, base_edits, changed_edits = EFFECTS[field]
    base = build(prompt_files, base_edits)
    changed = build(prompt_files, changed_edits)
    assert observe(kind, base, prompt_files) != observe(kind, changed, prompt_files), \
        f"{field}: changing it changed nothing the {kind} observer sees"
