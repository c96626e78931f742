"""Pure parts of the stub: token counting, output planning, the latency formula, fault specs."""

from __future__ import annotations

import random

import pytest

from llmsoak.stub.faults import FAULT_NAMES, FaultInjector, FaultSpecError, parse_fault_spec, rates_from_json
from llmsoak.stub.generation import Pacing, TokenSource, count_tokens, plan_output_tokens
from llmsoak.stub.memory import MemoryModel


def test_count_tokens_is_four_characters_rounded_up():
    assert [count_tokens(t) for t in ("", "a", "abcd", "abcde", "x" * 4000)] == [0, 1, 1, 2, 1000]


def test_plan_output_tokens_honours_limits_up_to_the_cap():
    assert plan_output_tokens(None, 256) == (256, "stop")
    assert plan_output_tokens(10, 256) == (10, "length")
    assert plan_output_tokens(256, 256) == (256, "length")
    assert plan_output_tokens(1000, 256) == (256, "stop")
    assert plan_output_tokens(0, 256) == (0, "length")


def test_tokens_are_json_safe_and_seeded():
    a, b = TokenSource(3), TokenSource(3)
    tokens = a.take(300, random.Random(1))
    assert tokens == b.take(300, random.Random(1)) and len(tokens) == 300
    assert not any(ch in t for t in tokens for ch in '"\\\n\r\t')
    assert len(a.take(20_000, random.Random(1))) == 20_000


def test_pacing_formula():
    pacing = Pacing(ttft_ms=100, prefill_ms_per_1k_tokens=50, itl_ms=20, jitter_frac=0.0,
                    itl_slowdown=0.5, max_concurrency=8)
    rng = random.Random(0)
    assert pacing.ttft_s(2000) == pytest.approx(0.2)
    assert pacing.itl_s(1, rng) == pytest.approx(0.020)
    assert pacing.itl_s(8, rng) == pytest.approx(0.020 * (1 + 0.5 * 7 / 8))
    jittery = Pacing(itl_ms=20, jitter_frac=0.03)
    gaps = [jittery.itl_s(1, rng) for _ in range(2000)]
    assert min(gaps) >= 0.0194 and max(gaps) <= 0.0206
    assert sum(gaps) / len(gaps) == pytest.approx(0.020, rel=0.005)


def test_fault_specs_and_draws():
    assert parse_fault_spec("http_500=0.25") == ("http_500", 0.25)
    for bad in ("http_500", "nope=0.1", "stall=abc", "stall=-0.1", "stall=1.1"):
        with pytest.raises(FaultSpecError):
            parse_fault_spec(bad)
    assert rates_from_json({"stall": 1}) == {**dict.fromkeys(FAULT_NAMES, 0.0), "stall": 1.0}
    injector = FaultInjector({"http_500": 0.2, "stall": 0.3}, random.Random(5))
    draws = [injector.draw() for _ in range(10_000)]
    assert abs(draws.count("http_500") / 10_000 - 0.2) < 0.02
    assert abs(draws.count("stall") / 10_000 - 0.3) < 0.02
    assert set(draws) == {"http_500", "stall", None}


def test_memory_model_accounts_buffers_and_leak():
    memory = MemoryModel(kv_bytes_per_token=1024, leak_bytes_per_request=4096)
    buf = memory.hold(10)
    assert len(buf) == 10_240 and memory.in_flight_bytes == 10_240 and buf[0] == 1 and buf[4096] == 1
    memory.release(buf)
    memory.leak_one_request()
    assert memory.in_flight_bytes == 0 and memory.leaked_bytes == 4096
