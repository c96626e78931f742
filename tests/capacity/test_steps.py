"""Step statistics, knee and user search, exit codes (llmsoak.capacity.steps/sweep): fixed data."""

from __future__ import annotations

import pytest

from llmsoak.capacity.steps import Window, measure, percentile
from llmsoak.capacity.sweep import Sweep, exit_code, linspace, rate_knee, search_users
from llmsoak.errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK
from llmsoak.profile import CapacityConfig, SloConfig


def _row(t_sched, t_end, *, ok=1, ttft=50.0, e2e=150.0, pid=1, tokens=20, lag=1.0):
    return {"pid": pid, "phase": 1.0, "pattern": "active", "t_sched": t_sched, "t_end": t_end, "ok": ok,
            "failure": "" if ok else "http: HTTP 500",
            "status": 200.0 if ok else 500.0, "failure_class": "" if ok else "http", "ttft_ms": ttft,
            "e2e_ms": e2e, "tpot_ms": 5.0, "itl_ms": 5.0, "output_tokens": tokens, "lag_ms": lag}


def test_percentile_interpolates_and_checks_its_argument() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10.0], 95) == 10.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_a_step_counts_goodput_and_rates_inside_each_process_window() -> None:
    # GIVEN a 10 s window per process; 20 requests in it, 4 of them too slow, 2 failed; 1 outside
    rows = [_row(100.0 + i * 0.5, 100.2 + i * 0.5) for i in range(14)]
    rows += [_row(107.0 + i * 0.5, 107.6 + i * 0.5, e2e=600.0) for i in range(4)]
    rows += [_row(109.0, 109.1, ok=0), _row(109.5, 109.6, ok=0, pid=2)]
    rows.append(_row(95.0, 95.2))  # warm-up: discarded
    windows = [Window(1, 100.0, 110.0, dropped=0), Window(2, 100.0, 110.0, dropped=1)]
    slo = SloConfig(e2e_p95_ms=300.0, error_rate=0.05)
    step = measure("rate", 2.0, rows, windows, slo)
    # THEN
    assert step.requests == 20 and step.failures == 2 and step.dropped == 1
    assert step.good == 14
    assert step.goodput_share == pytest.approx(14 / 21, abs=1e-4)
    assert step.goodput_rps == pytest.approx(1.4)
    assert step.achieved_rps == pytest.approx(2.0)  # 20 ended inside the window / 10 s
    assert step.output_tokens_per_s == pytest.approx(20 * 20 / 10)
    assert step.error_rate == pytest.approx(0.1)
    assert not step.meets_slo
    assert any(r.startswith("E2E p95 600 ms > 300 ms") for r in step.reasons)
    assert step.failure_reasons == {"http: HTTP 500": 2}
    assert "error rate 10.0% > 5.0% (2× http: HTTP 500)" in step.reasons


def test_an_open_loop_step_that_cannot_hold_its_rate_misses_even_with_fast_replies() -> None:
    rows = [_row(100.0 + i, 100.1 + i) for i in range(10)]
    step = measure("rate", 3.0, rows, [Window(1, 100.0, 110.0, dropped=20)], SloConfig(e2e_p95_ms=300.0))
    assert not step.meets_slo
    assert any("dropped" in r for r in step.reasons)
    assert any(r.startswith("achieved 1.00 req/s < 90% of 3.00") for r in step.reasons)


def _step(load, ok):
    rows = [_row(100.0 + i / load, 100.1 + i / load, e2e=100.0 if ok else 900.0) for i in range(int(10 * load))]
    return measure("rate", load, rows, [Window(1, 100.0, 110.0)], SloConfig(e2e_p95_ms=300.0))


def test_rate_knee_is_the_highest_rate_that_met_the_slos_and_the_next_one_that_missed() -> None:
    steps = [_step(2.0, True), _step(4.0, True), _step(6.0, False), _step(8.0, False)]
    assert [s.meets_slo for s in steps] == [True, True, False, False]
    assert rate_knee(steps) == (4.0, 6.0)
    assert rate_knee(steps[:2]) == (4.0, None)
    assert rate_knee(steps[2:]) == (None, 6.0)


@pytest.mark.parametrize("capacity,start", [(17, 30), (17, 4), (1, 5), (40, 40)])
def test_user_search_doubles_then_bisects_to_the_largest_count_that_passes(capacity, start) -> None:
    tried = []

    def test(users: int) -> bool:
        tried.append(users)
        return users <= capacity

    lo, hi = search_users(test, start, iterations=12)
    assert lo == capacity
    assert hi == capacity + 1
    assert len(tried) == len(set(tried))  # never measures the same count twice


def test_linspace_refuses_a_sweep_of_fewer_than_two_steps() -> None:
    assert linspace(1.0, 3.0, 3) == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="at least 2 steps"):
        linspace(1.0, 3.0, 1)


def test_exit_code_says_whether_the_target_load_is_sustainable() -> None:
    sweep = Sweep(rate_knee=25.0, rate_bound="exact", users_knee=17, users_bound="exact")
    assert exit_code(sweep, CapacityConfig())[0] == EXIT_OK
    assert exit_code(sweep, CapacityConfig(target_rate=20.0, target_users=17))[0] == EXIT_OK
    code, lines = exit_code(sweep, CapacityConfig(target_rate=30.0))
    assert code == EXIT_FAILED and "NOT sustainable" in lines[0]
    assert exit_code(sweep, CapacityConfig(target_users=18))[0] == EXIT_FAILED
    unbounded = Sweep(rate_knee=25.0, rate_bound="at least")
    assert exit_code(unbounded, CapacityConfig(target_rate=30.0))[0] == EXIT_INCONCLUSIVE
    assert exit_code(Sweep(), CapacityConfig(target_rate=1.0))[0] == EXIT_FAILED


def test_a_step_whose_generator_fell_behind_says_so() -> None:
    on_time = [_row(100.0 + i, 100.1 + i, lag=2.0) for i in range(10)]
    slo = SloConfig(e2e_p95_ms=300.0)
    assert not measure("rate", 1.0, on_time, [Window(1, 100.0, 110.0)], slo).generator_behind
    lagging = [_row(100.0 + i, 100.1 + i, lag=120.0) for i in range(10)]
    assert measure("rate", 1.0, lagging, [Window(1, 100.0, 110.0)], slo).generator_behind
    late = measure("rate", 1.0, on_time, [Window(1, 100.0, 110.0, dropped=1, late=1)], slo)
    assert late.generator_behind


def test_a_superseded_step_does_not_decide_the_knee() -> None:
    first = _step(6.0, False)
    first.superseded = True  # its generator fell behind; measured again
    assert rate_knee([_step(4.0, True), first, _step(6.0, True), _step(8.0, False)]) == (6.0, 8.0)
