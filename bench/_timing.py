"""Interleaved A/B timing for the benchmark scripts (``python bench/<file>.py``).

On a busy machine, pytest-benchmark's rounds of one variant after another see different load;
alternating the variants round by round and keeping each one's minimum is steadier.
"""

from __future__ import annotations

import time
from typing import Any, Callable


def interleaved_minima(runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """The minimum wall time (s) of each callable over ``repeats`` rounds, alternating them."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    return {name: min(ts) for name, ts in times.items()}
