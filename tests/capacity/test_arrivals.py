"""Open-loop schedules and the sending loop (llmsoak.locust.arrivals): rates, bursts, drops, lag."""

from __future__ import annotations

import itertools
import random
import statistics
import time

import gevent
import pytest

from llmsoak.locust.arrivals import ClosedLoop, OpenLoop, arrival_times, check_rate, gap_s


def _first(n: int, it) -> list[float]:
    return list(itertools.islice(it, n))


def test_constant_rate_split_across_workers_is_exactly_the_whole_schedule() -> None:
    # GIVEN 7 req/s over 3 workers WHEN every worker's schedule is merged
    merged = sorted(t for i in range(3) for t in _first(70, arrival_times(7.0, "constant", workers=3, index=i)))
    # THEN it is the single-process schedule: one arrival every 1/7 s, none twice, none missing
    single = _first(210, arrival_times(7.0, "constant"))
    assert merged == pytest.approx(single)
    assert merged[:4] == pytest.approx([0.0, 1 / 7, 2 / 7, 3 / 7])


@pytest.mark.parametrize("distribution,burstiness,cv", [("poisson", 1.0, 1.0), ("gamma", 0.25, 2.0),
                                                         ("gamma", 4.0, 0.5)])
def test_random_arrivals_keep_the_mean_rate_and_the_burstiness(distribution, burstiness, cv) -> None:
    rng = random.Random(5)
    gaps = [gap_s(rng, 20.0, distribution, burstiness) for _ in range(40_000)]
    assert statistics.fmean(gaps) == pytest.approx(1 / 20, rel=0.03)
    # gamma with shape k has a coefficient of variation 1/sqrt(k): < 1 smoother, > 1 burstier
    assert statistics.pstdev(gaps) / statistics.fmean(gaps) == pytest.approx(cv, rel=0.05)


def test_poisson_split_over_workers_adds_up_to_the_rate() -> None:
    horizon = 200.0
    total = 0
    for i in range(4):
        times = arrival_times(10.0, "poisson", workers=4, index=i, rng=random.Random(i))
        total += sum(1 for _ in itertools.takewhile(lambda t: t < horizon, times))
    assert total / horizon == pytest.approx(10.0, rel=0.05)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "fast"])
def test_a_rate_that_is_not_above_zero_is_refused_with_its_name(bad) -> None:
    with pytest.raises(ValueError, match=r"^capacity\.rates\[0\]: "):
        check_rate(bad, "capacity.rates[0]")


def test_arrivals_due_while_the_bound_is_full_are_dropped_never_sent_late() -> None:
    # GIVEN replies that take 1 s, at most 2 in flight, 20 arrivals due in 0.5 s
    sent_at: list[float] = []

    def send(scheduled_at: float) -> None:
        sent_at.append(time.time() - scheduled_at)
        gevent.sleep(1.0)

    loop = OpenLoop(send, max_in_flight=2)
    stats = loop.run(arrival_times(40.0, "constant"), 0.5)
    # THEN two went out on time and the other 18 were counted as dropped, not queued
    assert stats.scheduled == 20
    assert stats.sent == 2 and stats.dropped_full == 18 and stats.dropped_late == 0
    assert stats.peak_in_flight == 2
    assert max(sent_at) < 0.2  # each sent request left close to its time
    assert loop.drain(3.0) and stats.in_flight == 0


def test_a_generator_that_falls_behind_drops_late_arrivals_and_shows_its_lag() -> None:
    # GIVEN a scheduler that is blocked for 0.3 s (a busy CPU) with max_lag_s 0.1
    def send(_scheduled_at: float) -> None:
        # blocks the whole process for 0.3 s without yielding to gevent: a busy loop, because
        # time.sleep yields once anything in the session has imported Locust (gevent's monkey patch)
        until = time.perf_counter() + 0.3
        while time.perf_counter() < until:
            pass

    loop = OpenLoop(send, max_in_flight=100, max_lag_s=0.1)
    # 1.5 s, not less: a loaded CI machine may deschedule this process for a good part of a second,
    # and every arrival of that time is (rightly) dropped as late, with none sent to show a lag
    stats = loop.run(arrival_times(50.0, "constant"), 1.5)
    loop.drain(3.0)
    # THEN arrivals reached more than 0.1 s late are dropped as late, and the lag is recorded
    assert stats.dropped_late > 0
    assert stats.sent + stats.dropped == stats.scheduled
    assert stats.sent > 0
    assert stats.lag_max_s <= 0.1 + 1e-9
    assert stats.lag_max_s > 0


def test_closed_loop_keeps_exactly_its_concurrency_in_flight() -> None:
    seen: list[int] = []
    loop: ClosedLoop

    def send(_t: float) -> None:
        seen.append(loop.stats.in_flight)
        gevent.sleep(0.05)

    loop = ClosedLoop(send, concurrency=3)
    stats = loop.run(0.5)
    assert stats.peak_in_flight == 3 and max(seen) == 3
    assert 3 * 8 <= stats.sent <= 3 * 11  # 0.5 s / 0.05 s per request, per loop
