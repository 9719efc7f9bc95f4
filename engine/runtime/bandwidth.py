"""Memory bandwidth of this machine, measured once and kept in settings.json.

Token generation reads every weight once per token, so memory bandwidth (not compute) sets the
speed of a model that fits in RAM. We copy a large numpy array with the thread count generation
uses (cores − 1; numpy releases the GIL while copying) a few times and keep the best run.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from engine.config import load_settings, update_settings
from engine.paths import EmberPaths
from engine.runtime.hardware import default_threads

SETTINGS_KEY = "memory_bandwidth"
DEFAULT_BYTES = 256 * 2**20  # well past any CPU cache


def measure_bandwidth(size_bytes: int = DEFAULT_BYTES, runs: int = 5, threads: int | None = None) -> float:
    """Bytes per second moved (read + write) by the best of `runs` parallel copies."""
    import numpy as np  # only when measuring (once per machine)

    threads = threads or default_threads()
    per_thread = max(1, size_bytes // threads // 8)
    sources = [np.ones(per_thread, dtype=np.float64) for _ in range(threads)]
    targets = [np.empty_like(s) for s in sources]
    moved = 2 * 8 * per_thread * threads  # each byte is read once and written once

    def copy(i: int) -> None:
        np.copyto(targets[i], sources[i])

    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(copy, range(threads)))  # warm up: touch every page once
        for _ in range(runs):
            start = time.perf_counter()
            list(pool.map(copy, range(threads)))
            best = min(best, time.perf_counter() - start)
    return moved / best


def memory_bandwidth(paths: EmberPaths, *, refresh: bool = False, measure=measure_bandwidth) -> float:
    """The cached figure (bytes/s), measuring it first when there is none or when asked."""
    figure = load_settings(paths.settings).get(SETTINGS_KEY, {}, kind=dict).get("bytes_per_s")
    if not refresh and isinstance(figure, (int, float)) and not isinstance(figure, bool) and figure > 0:
        return float(figure)
    value = float(measure())
    update_settings(paths.settings, lambda s: s.set(SETTINGS_KEY, {"bytes_per_s": value,
                                                                   "measured_at": time.time()}))
    return value
