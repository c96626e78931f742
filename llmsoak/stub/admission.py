"""Admission control: at most ``max_concurrency`` requests run, ``queue_size`` more wait (FIFO).

A request arriving when both are full is rejected (the API answers 429).
"""

from __future__ import annotations

import asyncio
from collections import deque


class QueueFull(Exception):
    """Raised by :meth:`Admission.acquire` when every slot and queue place is taken."""


class Admission:
    """A FIFO semaphore with a bounded wait queue; ``active``/``queued`` are live counts."""

    def __init__(self, max_concurrency: int, queue_size: int) -> None:
        self.max_concurrency = max_concurrency
        self.queue_size = queue_size
        self.active = 0
        self._waiters: deque[asyncio.Future] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue if needed; raises QueueFull when the queue is full."""
        if self.active < self.max_concurrency and not self._waiters:
            self.active += 1
            return
        if len(self._waiters) >= self.queue_size:
            raise QueueFull()
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over just as the client left: pass it on
            else:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            raise

    def release(self) -> None:
        """Give a slot back: hand it to the oldest waiter, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on; ``active`` is unchanged
                return
        self.active -= 1
