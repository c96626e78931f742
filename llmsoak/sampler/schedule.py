"""A drift-free tick schedule on the monotonic clock.

Tick ``k`` is due at ``start + k * interval_s``: a slow sample never shifts later ticks, so a
week at 1 s gives 604,800 rows, not fewer. A tick taken more than one interval late is an
*overrun*: the sample is still taken (late), the missed grid points are counted and reported,
and the schedule realigns to the grid instead of firing a burst of catch-up samples.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tick:
    """One scheduled sample: its index on the grid, how late it fired, ticks it had to skip."""

    index: int
    late_s: float
    """Seconds after its due time that this tick fired."""
    skipped: int
    """Grid points passed over since the previous tick (0 = on time)."""


class Schedule:
    """Ticks every ``interval_s`` seconds on ``clock`` (monotonic seconds); see the module docstring."""

    def __init__(self, interval_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval must be positive, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self._clock = clock
        self._start = clock()
        self._next_index = 0
        self.overruns = 0
        """Ticks that fired more than one interval late."""
        self.skipped_total = 0
        """Grid points passed over in all (samples that could not be taken on time)."""

    def due_in_s(self) -> float:
        """Seconds until the next tick is due (≤ 0 when due now)."""
        return self._start + self._next_index * self.interval_s - self._clock()

    def wait(self, stop: threading.Event) -> Tick | None:
        """Sleep until the next tick (returned), or return None as soon as ``stop`` is set."""
        delay = self.due_in_s()
        if delay > 0 and stop.wait(delay):
            return None
        if stop.is_set():
            return None
        now = self._clock()
        due = self._start + self._next_index * self.interval_s
        late_s = max(0.0, now - due)
        skipped = int(late_s // self.interval_s)
        index = self._next_index + skipped
        if skipped:
            self.overruns += 1
            self.skipped_total += skipped
        self._next_index = index + 1
        return Tick(index=index, late_s=late_s, skipped=skipped)
