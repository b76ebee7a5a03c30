"""Pausing the cyclic garbage collector around allocation bursts (graph walks, traces)."""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["gc_paused"]

_gc_isenabled = gc.isenabled
_gc_disable = gc.disable
_gc_enable = gc.enable


class gc_paused:
    """Pause automatic garbage collection for one operation (re-entrant, exception safe).

    Graph splits and merges allocate tens of thousands of short-lived, acyclic objects (refs,
    dicts, tuples); tracing a function allocates tracers, equations and avals by the thousand.
    Each burst otherwise triggers collections that traverse the whole heap (JAX alone keeps
    ~200k objects alive): measured on a 10,000-state model, a split took 4x longer amortised
    with collection running than with it paused, and tracing 1,000 state updates took 150-200
    ms instead of ~90 ms whenever a full collection landed inside the trace. The graph code
    creates no reference cycles (``tests/test_graph.py`` checks); whatever cyclic garbage a
    trace leaves is bounded by the trace and collected right after. Collection resumes, with
    the usual thresholds, as soon as the operation returns. If the collector was already
    disabled, it is left alone.
    """

    __slots__ = ("paused",)

    def __enter__(self) -> None:
        if _gc_isenabled():
            _gc_disable()
            self.paused = True
        else:
            self.paused = False

    def __exit__(self, *exc: Any) -> None:
        if self.paused:
            _gc_enable()
