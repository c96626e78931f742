"""Open-loop arrivals: requests sent on a schedule whether or not earlier replies came back.

Locust users are closed-loop: a slow server slows its own load and hides saturation (coordinated
omission). Here a schedule (:func:`arrival_times`: constant, Poisson, or gamma with a burstiness
knob, the convention of ``vllm bench serve``) says *when* each request goes out, and
:class:`OpenLoop` sends it then, in its own greenlet, bounded by a maximum in flight:

- a request whose time comes while ``max_in_flight`` are outstanding is **dropped** (counted,
  never sent late);
- a request the scheduler reaches more than ``max_lag_s`` after its time (the generator itself is
  saturated) is dropped as **late**;
- every request sent records its **lag** (send time − scheduled time, seconds), so a generator
  that falls behind is visible rather than mistaken for a slow server.

With ``workers`` processes each runs :func:`arrival_times` with ``index``: a constant rate is
split exactly (worker *i* of *N* sends at ``(k·N + i) / rate``); Poisson and gamma streams at
``rate / N`` each add up to the whole rate. :class:`ClosedLoop` is the other measuring mode of a
capacity sweep: ``concurrency`` loops sending back to back (1 = the synchronous rate).
No Locust here: the caller passes ``send(scheduled_at) -> None``; llmsoak.capacity.locust_side
wires it to the chat user's request code.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import gevent

from llmsoak.profile.model import ARRIVAL_DISTRIBUTIONS as DISTRIBUTIONS


def check_rate(rate: float, where: str = "rate") -> float:
    """``rate`` (requests per second) if it is a finite number above 0; else ValueError naming ``where``."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected a number of requests per second, got {rate!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{where}: must be > 0 requests per second (got {rate!r})")
    return value


def gap_s(rng: random.Random, rate: float, distribution: str, burstiness: float = 1.0) -> float:
    """One gap between arrivals, seconds, with mean ``1 / rate``.

    ``gamma``: shape ``burstiness`` (1 = Poisson, < 1 burstier, > 1 smoother), scale
    ``1 / (rate · burstiness)``, as ``vllm bench serve --burstiness``.
    """
    if distribution == "constant":
        return 1.0 / rate
    if distribution == "poisson":
        return rng.expovariate(rate)
    if distribution == "gamma":
        return rng.gammavariate(burstiness, 1.0 / (rate * burstiness))
    raise ValueError(f"distribution: must be one of {', '.join(DISTRIBUTIONS)} (got {distribution!r})")


def arrival_times(rate: float, distribution: str = "poisson", *, burstiness: float = 1.0,
                  workers: int = 1, index: int = 0, rng: random.Random | None = None) -> Iterator[float]:
    """Offsets (seconds from the start) of this worker's arrivals, for a total of ``rate`` req/s
    over ``workers`` processes; endless."""
    rate = check_rate(rate)
    if workers < 1 or not 0 <= index < workers:
        raise ValueError(f"worker index {index} of {workers}")
    rng = rng or random.Random()
    if distribution == "constant":
        k = 0
        while True:  # computed, not summed: no drift over a long phase
            yield (k * workers + index) / rate
            k += 1
    share = rate / workers
    t = 0.0
    while True:
        t += gap_s(rng, share, distribution, burstiness)
        yield t


@dataclass
class LoopStats:
    """What a sending loop did: counts, and the lag between schedule and send (seconds)."""

    scheduled: int = 0
    """Arrivals whose time came."""
    sent: int = 0
    dropped_full: int = 0
    """Not sent: ``max_in_flight`` requests were outstanding at their time."""
    dropped_late: int = 0
    """Not sent: the scheduler reached them more than ``max_lag_s`` late (the generator is saturated)."""
    in_flight: int = 0
    peak_in_flight: int = 0
    lag_sum_s: float = 0.0
    lag_max_s: float = 0.0
    lags_s: list[float] = field(default_factory=list)
    """A bounded sample of lags (the first :data:`LAG_SAMPLE` sends)."""

    @property
    def dropped(self) -> int:
        return self.dropped_full + self.dropped_late

    def note_lag(self, lag_s: float) -> None:
        self.lag_sum_s += lag_s
        self.lag_max_s = max(self.lag_max_s, lag_s)
        if len(self.lags_s) < LAG_SAMPLE:
            self.lags_s.append(lag_s)


LAG_SAMPLE = 100_000

STOP_CHECK_S = 0.25
"""Longest sleep of :meth:`OpenLoop.run` between two looks at its ``should_stop``."""


class OpenLoop:
    """Send ``send(scheduled_at)`` at each time of ``times`` (offsets from :meth:`run`'s start).

    ``send`` runs in a greenlet of its own and must not raise; ``scheduled_at`` is the
    ``time.time()`` the request was due, so the caller records its own lag too.
    """

    def __init__(self, send: Callable[[float], None], *, max_in_flight: int, max_lag_s: float = 1.0) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight: must be >= 1 (got {max_in_flight})")
        self.send = send
        self.max_in_flight = max_in_flight
        self.max_lag_s = max_lag_s
        self.stats = LoopStats()
        self._greenlets: set[gevent.Greenlet] = set()

    def _one(self, scheduled_at: float) -> None:
        try:
            self.send(scheduled_at)
        finally:
            self.stats.in_flight -= 1

    def run(self, times: Iterator[float], duration_s: float, start: float | None = None,
            should_stop: Callable[[], bool] | None = None) -> LoopStats:
        """Send the arrivals due in ``[start, start + duration_s)`` (wall clock), then return
        without waiting for replies (see :meth:`drain`). ``should_stop`` (checked at least every
        :data:`STOP_CHECK_S`) ends the loop early."""
        start = time.time() if start is None else start
        end = start + duration_s
        st = self.stats
        for offset in times:
            due = start + offset
            if due >= end:
                break
            delay = due - time.time()
            while delay > 0:
                if should_stop is not None and should_stop():
                    return st
                gevent.sleep(min(delay, STOP_CHECK_S) if should_stop is not None else delay)
                delay = due - time.time()
            if should_stop is not None and should_stop():
                return st
            st.scheduled += 1
            lag = time.time() - due
            if lag > self.max_lag_s:
                st.dropped_late += 1
                continue
            if st.in_flight >= self.max_in_flight:
                st.dropped_full += 1
                continue
            st.in_flight += 1
            st.peak_in_flight = max(st.peak_in_flight, st.in_flight)
            st.sent += 1
            st.note_lag(lag)
            g = gevent.spawn(self._one, due)
            self._greenlets.add(g)
            g.link(self._greenlets.discard)
        remaining = end - time.time()
        if remaining > 0:
            gevent.sleep(remaining)
        return st

    def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the requests in flight; True when none is left."""
        deadline = time.time() + timeout_s
        while self._greenlets and time.time() < deadline:
            gevent.sleep(0.05)
        return not self._greenlets


class ClosedLoop:
    """``concurrency`` loops, each sending ``send(now)`` back to back, for ``duration_s``."""

    def __init__(self, send: Callable[[float], None], *, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency: must be >= 1 (got {concurrency})")
        self.send = send
        self.concurrency = concurrency
        self.stats = LoopStats()

    def _loop(self, end: float) -> None:
        st = self.stats
        while time.time() < end:
            st.scheduled += 1
            st.sent += 1
            st.in_flight += 1
            st.peak_in_flight = max(st.peak_in_flight, st.in_flight)
            try:
                self.send(time.time())
            finally:
                st.in_flight -= 1

    def run(self, duration_s: float, start: float | None = None) -> LoopStats:
        """Run until ``start + duration_s``, then wait for the requests in flight to end."""
        end = (time.time() if start is None else start) + duration_s
        gevent.joinall([gevent.spawn(self._loop, end) for _ in range(self.concurrency)])
        return self.stats
