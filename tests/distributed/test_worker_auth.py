"""Who may join a master (llmsoak.locust.worker_auth) and what a joining worker receives
(llmsoak.locust.worker_join's payload): pure functions on fixed inputs, no processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmsoak.locust import worker_join
from llmsoak.locust.worker_auth import MAX_CLOCK_SKEW_S, Credentials, credentials, versions
from llmsoak.profile import load_profile
from llmsoak.prompts import prompt_source_from_profile

TOKEN = "s3cret-worker-token"


def test_a_proof_of_the_right_token_is_accepted_once():
    creds = Credentials(TOKEN)
    data = credentials("llmsoak_hello", "host_abc", TOKEN)
    assert TOKEN not in json.dumps(data)  # the token itself never travels
    assert creds.check("llmsoak_hello", "host_abc", data) is None
    assert "replayed" in creds.check("llmsoak_hello", "host_abc", data)


@pytest.mark.parametrize("sent_token, client_id, kind, expected", [
    ("another-token", "host_abc", "llmsoak_hello", "wrong LLMSOAK_WORKER_TOKEN"),
    (None, "host_abc", "llmsoak_hello", "needs LLMSOAK_WORKER_TOKEN and the worker sent no proof"),
    (TOKEN, "host_OTHER", "llmsoak_hello", "wrong LLMSOAK_WORKER_TOKEN"),  # a proof is bound to its worker id
    (TOKEN, "host_abc", "llmsoak_join", "wrong LLMSOAK_WORKER_TOKEN"),  # … and to its kind
])
def test_bad_proofs_are_refused_with_one_line(sent_token, client_id, kind, expected):
    data = credentials("llmsoak_hello", "host_abc", sent_token)
    reason = Credentials(TOKEN).check(kind, client_id, data)
    assert reason is not None and expected in reason and "\n" not in reason and TOKEN not in reason


def test_an_old_proof_is_refused_naming_the_clock():
    data = credentials("llmsoak_hello", "host_abc", TOKEN)
    reason = Credentials(TOKEN).check("llmsoak_hello", "host_abc", data, now=data["ts"] + MAX_CLOCK_SKEW_S + 60)
    assert reason is not None and "clock" in reason


def test_other_versions_and_plain_locust_workers_are_refused_even_without_a_token():
    creds = Credentials(None)
    assert creds.check("llmsoak_hello", "h_1", credentials("llmsoak_hello", "h_1", None)) is None
    other = {**credentials("llmsoak_hello", "h_1", None), "llmsoak": "0.0.1"}
    assert f"llmsoak 0.0.1 on the worker, {versions()['llmsoak']} on the master" in creds.check("llmsoak_hello", "h_1", other)
    other = {**credentials("llmsoak_hello", "h_1", None), "locust": "2.30.0"}
    assert "locust 2.30.0 on the worker" in creds.check("llmsoak_hello", "h_1", other)
    assert "plain Locust worker" in creds.check("llmsoak_hello", "h_1", "2.47.0")  # Locust's own client_ready data


def test_the_payload_carries_profile_and_prompts_to_a_folder_without_them(tmp_path):
    # GIVEN a profile naming a prompt file beside it (relative path)
    master = tmp_path / "master"
    master.mkdir()
    (master / "mine.jsonl").write_text("".join(json.dumps({"prompt": f"only on the master {i}"}) + "\n"
                                               for i in range(5)))
    profile = master / "p.yaml"
    profile.write_text("name: p\ntarget: {url: 'http://127.0.0.1:9', model: m}\n"
                       "prompts: {source: jsonl, path: mine.jsonl}\nrun: {duration: 10s}\n")
    # WHEN the master's reply is written on a worker and the master's files are gone
    reply = worker_join.profile_payload(profile)
    worker = tmp_path / "worker"
    worker.mkdir()
    copy = worker_join.write_payload(reply, worker)
    for path in master.iterdir():
        path.unlink()
    # THEN the copy loads and its prompts are the master's
    loaded = load_profile(copy)
    source = prompt_source_from_profile(loaded)
    assert Path(loaded.prompts.path).parent == worker
    assert sorted(c.opening for c in source.conversations) == [f"only on the master {i}" for i in range(5)]
    assert reply["profile_sha256"] and reply["prompts"]["name"] == "mine.jsonl"


def test_a_prompt_file_over_the_cap_is_refused(tmp_path, monkeypatch):
    (tmp_path / "big.jsonl").write_text('{"prompt": "x"}\n' * 100)
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\ntarget: {url: 'http://127.0.0.1:9', model: m}\n"
                       "prompts: {source: jsonl, path: big.jsonl}\n")
    monkeypatch.setattr(worker_join, "PROMPTS_MAX_BYTES", 100)
    with pytest.raises(ValueError, match="over the 100 a worker is sent"):
        worker_join.profile_payload(profile)
