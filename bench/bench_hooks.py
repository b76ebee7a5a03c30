"""Hook dispatch cost.

- write with one ``write_before`` and one ``write_after`` hook, against calling the two
  callbacks and a plain attribute write directly (the limit); target <= 3x the limit
  (upstream brainstate: about 150x);
- read and write with no hook anywhere must cost what they cost before hooks existed: compare
  ``state.value:get``/``:set`` in ``bench_state.py`` (same loops) across commits, and here
  against the same operations while a hook is registered on *another* state.
"""

from __future__ import annotations

import pytest

import brainstate
from conftest import array100

N = 1000


def _wb(ctx):
    return None


def _wa(ctx):
    return None


class _Plain:
    def __init__(self, v):
        self.value = v


def _loop_set(obj, x):
    for _ in range(N):
        obj.value = x


def _loop_get(obj):
    for _ in range(N):
        obj.value


@pytest.mark.benchmark(group="hooks.write[wb+wa]")
def bench_hooked_write_baseline_limit(benchmark):
    obj, x = _Plain(array100()), array100()

    def limit():
        for _ in range(N):
            _wb(None)
            _wa(None)
            obj.value = x

    benchmark(limit)


@pytest.mark.benchmark(group="hooks.write[wb+wa]")
def bench_hooked_write(benchmark):
    st, x = brainstate.State(array100()), array100()
    h1 = st.register_hook("write_before", _wb)
    h2 = st.register_hook("write_after", _wa)
    try:
        benchmark(_loop_set, st, x)
    finally:
        h1.remove()
        h2.remove()


@pytest.mark.benchmark(group="hooks.unhooked-write")
def bench_unhooked_write_baseline_no_hooks_anywhere(benchmark):
    st, x = brainstate.State(array100()), array100()
    benchmark(_loop_set, st, x)


@pytest.mark.benchmark(group="hooks.unhooked-write")
def bench_unhooked_write_with_hooks_elsewhere(benchmark):
    other = brainstate.State(array100())
    handle = other.register_hook("write_after", _wa)
    st, x = brainstate.State(array100()), array100()
    try:
        benchmark(_loop_set, st, x)
    finally:
        handle.remove()


@pytest.mark.benchmark(group="hooks.unhooked-read")
def bench_unhooked_read_baseline_no_hooks_anywhere(benchmark):
    st = brainstate.State(array100())
    benchmark(_loop_get, st)


@pytest.mark.benchmark(group="hooks.unhooked-read")
def bench_unhooked_read_with_hooks_elsewhere(benchmark):
    other = brainstate.State(array100())
    handle = other.register_hook("read", _wa)
    st = brainstate.State(array100())
    try:
        benchmark(_loop_get, st)
    finally:
        handle.remove()
