"""The pool's waiting line, behind a small interface so a shared (e.g. Redis-backed) queue can
replace the in-process one without touching the daemon.

A job waits until a pane for its key is free or may be started.  Fairness: first come, first
served across keys, except that a job whose key has a free pane is not held up by jobs waiting for
another key.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Protocol


class JobQueue(Protocol):
    """What the daemon needs from a queue."""

    def wait_turn(self, key: str, try_take: Callable[[str], object | None], timeout: float,
                  cancelled: Callable[[], bool]) -> object | None:
        """Block until ``try_take(key)`` returns a pane for this job (in fair order), the timeout
        passes (None) or ``cancelled()`` turns true (None)."""

    def notify(self) -> None:
        """Something changed (a pane was freed, started or retired): re-check waiting jobs."""

    def waiting(self) -> int:
        """Number of jobs waiting."""

    def waiting_for(self, key: str) -> int:
        """Number of jobs waiting for ``key``."""


class InProcessQueue:
    """FIFO ticket queue on a condition variable (one daemon process, many client threads)."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._tickets = itertools.count()
        self._waiting: dict[int, str] = {}

    def wait_turn(self, key, try_take, timeout, cancelled):
        import time
        deadline = time.monotonic() + timeout
        with self._cv:
            ticket = next(self._tickets)
            self._waiting[ticket] = key
            try:
                while True:
                    # Only the oldest waiter of each key may take; an older waiter of another key whose
                    # pane is busy does not block this key.
                    oldest_for_key = min(t for t, k in self._waiting.items() if k == key)
                    if oldest_for_key == ticket:
                        pane = try_take(key)
                        if pane is not None:
                            return pane
                    if cancelled():
                        return None
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._cv.wait(min(left, 0.2))
            finally:
                del self._waiting[ticket]
                self._cv.notify_all()

    def notify(self) -> None:
        with self._cv:
            self._cv.notify_all()

    def waiting(self) -> int:
        with self._cv:
            return len(self._waiting)

    def waiting_for(self, key: str) -> int:
        with self._cv:
            return sum(1 for k in self._waiting.values() if k == key)
