"""Whose request the model takes next, when several programs ask at once.

One model answers one request at a time. Requests wait here for their turn, and the turn goes to the
client that was served least recently (arrival order among equals), so one program sending twenty
requests does not make another wait behind all twenty. Thread-safe: each request runs on its own
server thread and blocks in `turn()` until it is first.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Waiting:
    client: str
    number: int  # arrival order


class FairQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: list[Waiting] = []
        self._busy = False
        self._served = itertools.count()
        self._last_served: dict[str, int] = {}  # client -> when it was last given a turn (a counter)
        self._arrivals = itertools.count()

    @contextmanager
    def turn(self, client: str, timeout: float | None = None) -> Iterator[None]:
        """Wait until this client's request is next, hold the model while the block runs.
        TimeoutError when `timeout` seconds pass first (the request leaves the queue)."""
        me = Waiting(client, next(self._arrivals))
        with self._cond:
            self._waiting.append(me)
            try:
                if not self._cond.wait_for(lambda: not self._busy and self._next() == me, timeout):
                    raise TimeoutError(f"waited {timeout} s for the model")
            finally:
                self._waiting.remove(me)
            self._busy = True
            self._last_served[client] = next(self._served)
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _next(self) -> Waiting | None:
        if not self._waiting:
            return None
        return min(self._waiting, key=lambda w: (self._last_served.get(w.client, -1), w.number))

    def snapshot(self) -> tuple[bool, list[str]]:
        """(a request is being answered, the clients waiting in the order they would be served)."""
        with self._cond:
            order = sorted(self._waiting, key=lambda w: (self._last_served.get(w.client, -1), w.number))
            return self._busy, [w.client for w in order]
