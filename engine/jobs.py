"""The engine contract for slow work: cancel tokens and the events that slow generators yield.

Every slow engine call is a generator that takes a `CancelToken` and yields `Progress` (downloads,
indexing, loading) or `TokenEvent` (generation). The app runs any of them with one generic worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

STOP_REASONS = ("stop", "length", "cancelled", "error")


class CancelToken:
    """A flag that a slow call checks; `cancel()` may be called from any thread.

    Callbacks registered with `on_cancel` run once, in the cancelling thread, so a blocked read
    (an HTTP stream) can be broken at once instead of at the next check.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a callback that fails must not stop the others
                pass

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run `callback` when cancelled (at once if already). Returns a function that unregisters it."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)

                def remove() -> None:
                    with self._lock:
                        if callback in self._callbacks:
                            self._callbacks.remove(callback)

                return remove
        callback()
        return lambda: None

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, waking early when cancelled. Returns True if cancelled."""
        return self._event.wait(timeout)


@dataclass(frozen=True)
class Progress:
    """How far a slow job is. `total` is None when unknown."""

    done: float
    total: float | None = None
    unit: str = ""
    message: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))


@dataclass(frozen=True)
class GenerationStats:
    """What a finished generation measured. `stop_reason` is one of STOP_REASONS."""

    stop_reason: str
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    total_s: float = 0.0
    error: str | None = None
    notice: str | None = None
    seed: int | None = None

    @property
    def evaluated_prompt_tokens(self) -> int:
        """Prompt tokens the model had to evaluate (the rest came from the KV cache)."""
        return max(0, self.prompt_tokens - self.cached_tokens)

    def to_dict(self) -> dict:
        return {
            "stop_reason": self.stop_reason,
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "completion_tokens": self.completion_tokens,
            "ttft_s": self.ttft_s,
            "tokens_per_s": self.tokens_per_s,
            "total_s": self.total_s,
            "error": self.error,
            "notice": self.notice,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict) -> GenerationStats:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass(frozen=True)
class TokenEvent:
    """One event of a generation: a text delta, or (last) the final stats."""

    text: str = ""
    stats: GenerationStats | None = field(default=None)

    @property
    def is_final(self) -> bool:
        return self.stats is not None


def run_to_end(generator):
    """Drive a slow-work generator to its end, dropping what it yields; return what it returns."""
    while True:
        try:
            next(generator)
        except StopIteration as end:
            return end.value
