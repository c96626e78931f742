"""The recorded wire transcripts (tests/fixtures/wire/) hold the facts the engine tests proved live.

Runs everywhere (no engine needed): GIVEN the transcripts recorded from the real engines by
``LLMSOAK_RECORD_WIRE=tests/fixtures/wire pytest tests/engines``, THEN each still shows what
docs/engines.md says it shows, and the transcript reader (tests/support/wire.py) decodes it the
same however the bytes are cut into reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.wire import ENDS, Transcript, load_case

WIRE = Path(__file__).resolve().parents[1] / "fixtures" / "wire"
CASES = sorted(p.stem for p in WIRE.glob("*.json"))


def case(name: str) -> list[Transcript]:
    meta, transcripts = load_case(WIRE / f"{name}.json")
    assert meta["case"] == name and meta["schema"] == 1
    return transcripts


def choice_events(t: Transcript) -> list[dict]:
    return [e for e in t.sse_json() if e.get("choices")]


def test_every_case_is_documented_and_small():
    readme = (WIRE / "README.md").read_text()
    assert len(CASES) >= 12
    for name in CASES:
        assert f"`{name}.json`" in readme, f"{name} is not described in tests/fixtures/wire/README.md"
    assert "`vllm_metrics.txt`" in readme
    sizes = {p.name: p.stat().st_size for p in WIRE.iterdir()}
    assert max(sizes.values()) < 100_000 and sum(sizes.values()) < 400_000, sizes


@pytest.mark.parametrize("name", CASES)
def test_reader_gives_the_same_body_however_the_bytes_are_cut(name):
    meta, transcripts = load_case(WIRE / f"{name}.json")
    assert meta["engine"] in ("vllm", "llamacpp") and meta["engine_version"]
    for t in transcripts:
        assert t.end in ENDS and t.status in (200, 400, 404)
        one_read = Transcript(t.method, t.path, t.body, reads=[(0.0, t.raw)], end=t.end)
        byte_reads = Transcript(t.method, t.path, t.body, reads=[(0.0, t.raw[i:i + 1]) for i in range(len(t.raw))],
                                end=t.end)
        assert one_read.body_bytes == byte_reads.body_bytes == t.body_bytes
        assert one_read.framing_complete() == byte_reads.framing_complete() == t.framing_complete()
        assert t.framing_complete() == (t.end == "complete")


def test_vllm_stream_role_chunk_tokens_usage_done():
    (t,) = case("vllm_chat_stream")
    events = t.sse_json()
    assert t.sse_events()[-1] == b"[DONE]"
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 16
    assert all("usage" not in e for e in events[:-1])


def test_vllm_under_load_packs_tokens_into_chunks_and_events_into_reads():
    (t,) = case("vllm_chat_stream_under_load")
    content = [e for e in choice_events(t) if e["choices"][0]["delta"].get("content")]
    assert len(content) < t.sse_json()[-1]["usage"]["completion_tokens"] == 128
    assert max(data.count(b"data: ") for _t, data in t.body_reads()) > 1


def test_vllm_errors_are_plain_json_with_the_reason():
    (too_long,) = case("vllm_prompt_too_long")
    assert too_long.status == 400 and too_long.headers["content-type"].startswith("application/json")
    assert "maximum context length is 1024" in too_long.json()["error"]["message"]
    (unknown,) = case("vllm_unknown_model")
    assert unknown.status == 404 and unknown.json()["error"]["type"] == "NotFoundError"
    (bad,) = case("vllm_bad_parameter")
    assert bad.status == 400 and "temperature" in bad.json()["error"]["message"]


def test_vllm_cuts_max_tokens_to_the_context_left():
    (t,) = case("vllm_max_tokens_past_context")
    assert t.status == 200 and t.body["max_tokens"] == 200
    usage = t.sse_json()[-1]["usage"]
    assert usage["total_tokens"] == 1024 and usage["completion_tokens"] < 200
    assert choice_events(t)[-1]["choices"][0]["finish_reason"] == "length"


def test_vllm_partial_characters_give_empty_content_chunks():
    (t,) = case("vllm_partial_utf8")
    contents = [e["choices"][0]["delta"].get("content") for e in choice_events(t)[1:]]
    assert "" in contents and t.sse_json()[-1]["usage"]["completion_tokens"] == 8


def test_vllm_metrics_snapshot_has_the_families():
    text = (WIRE / "vllm_metrics.txt").read_text()
    for family in ("vllm:kv_cache_usage_perc", "vllm:num_requests_running", "vllm:num_requests_waiting",
                   "vllm:num_preemptions"):
        assert f"# TYPE {family}" in text


def test_llamacpp_stream_has_no_usage():
    (t,) = case("llamacpp_chat_stream")
    events = t.sse_json()
    assert events[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert events[-1]["choices"][0]["finish_reason"] and events[-1]["choices"][0]["delta"] == {}
    assert all("usage" not in e for e in events) and t.body["stream_options"] == {"include_usage": True}


def test_llamacpp_interrupted_stream_ends_with_done_but_no_finish_and_no_last_chunk():
    first, second = case("llamacpp_interrupted")
    assert first.sse_events()[-1] == b"[DONE]"
    assert all(e["choices"][0]["finish_reason"] is None for e in first.sse_json())
    assert first.end in ("eof", "reset") and not first.framing_complete()
    assert second.end == "complete" and second.started_ms > first.started_ms


def test_llamacpp_without_interrupt_serves_both_in_turn():
    first, second = case("llamacpp_no_interrupt")
    assert first.end == second.end == "complete"
    assert choice_events(first)[-1]["choices"][0]["finish_reason"] == "length"


def test_llamacpp_context_overflow_400_or_empty_200_stream():
    (plain,) = case("llamacpp_prompt_too_long")
    error = plain.json()["error"]
    assert plain.status == 400 and error["code"] == "context_length_exceeded"
    assert "maximum context length is 1024 tokens" in error["message"]
    (streamed,) = case("llamacpp_prompt_too_long_streamed")
    assert streamed.status == 200 and streamed.sse_events() == [] and streamed.end == "complete"


def test_llamacpp_answers_any_model_name():
    (t,) = case("llamacpp_unknown_model")
    assert t.status == 200 and json.loads(t.body_bytes)["model"] == t.body["model"] == "no-such-model"
