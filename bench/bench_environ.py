"""``brainstate.environ`` reads and contexts against plain-dict baselines.

Target: ``environ.get_dt()`` and ``environ.get('dt')``, outside and inside a ``context(dt=...)``,
cost <= 2x a Python dict lookup of the same key done the same way.

Fair baselines. Every timed call runs one Python-level function ``N`` times in the same loop,
so the loop and the call overhead are identical on both sides and the ratio measures only the
work inside the function:

* ``get_dt()`` is compared with ``lambda: d['dt']`` called with no argument;
* ``get('dt')`` is compared with ``def lookup(key): return d[key]`` called with ``'dt'``;
* ``get('fit', False)`` on a missing key with ``lambda key, default: d.get(key, default)``;
* ``dftype()`` with ``lambda: d['dtype']`` (a dtype kept ready in a dict);
* entering and leaving ``context(...)`` with a minimal class-based context manager that saves,
  overrides and restores dict entries (no thread-locality, no validation, no callbacks).

The dicts hold as many keys as the environment (a realistic model setup). Reads do not interact
with jax tracing, so the eager numbers are also the per-call cost while a model is traced.
"""

from __future__ import annotations

import jax.numpy as jnp
import pytest

import brainstate.environ as environ

N = 1000  # calls per timed round: keeps harness overhead out of the per-call ratio

_SETUP = {"dt": 0.1, "i": 0, "t": 0.0, "fit": True, "jit_error_check": False, "seed": 42}


@pytest.fixture(autouse=True)
def _environ():
    environ.reset()
    environ.set(**_SETUP)
    yield
    environ.reset()


def _loop0(fn):
    for _ in range(N):
        fn()


def _loop1(fn, key):
    for _ in range(N):
        fn(key)


def _loop2(fn, key, default):
    for _ in range(N):
        fn(key, default)


# --- get_dt -------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="environ.get_dt")
def bench_get_dt_baseline_dict(benchmark):
    d = dict(_SETUP)
    benchmark(_loop0, lambda: d["dt"])


@pytest.mark.benchmark(group="environ.get_dt")
def bench_get_dt(benchmark):
    benchmark(_loop0, environ.get_dt)


@pytest.mark.benchmark(group="environ.get_dt")
def bench_get_dt_in_context(benchmark):
    with environ.context(dt=0.01, i=1):
        benchmark(_loop0, environ.get_dt)


# --- get(key) -----------------------------------------------------------------------------------


@pytest.mark.benchmark(group="environ.get")
def bench_get_baseline_dict(benchmark):
    d = dict(_SETUP)

    def lookup(key):
        return d[key]

    benchmark(_loop1, lookup, "dt")


@pytest.mark.benchmark(group="environ.get")
def bench_get(benchmark):
    benchmark(_loop1, environ.get, "dt")


@pytest.mark.benchmark(group="environ.get")
def bench_get_in_context(benchmark):
    with environ.context(dt=0.01, i=1):
        benchmark(_loop1, environ.get, "dt")


# --- get(key, default) on a missing key ---------------------------------------------------------


@pytest.mark.benchmark(group="environ.get:missing-default")
def bench_get_default_baseline_dict(benchmark):
    d = dict(_SETUP)
    benchmark(_loop2, lambda key, default: d.get(key, default), "absent", False)


@pytest.mark.benchmark(group="environ.get:missing-default")
def bench_get_default(benchmark):
    benchmark(_loop2, environ.get, "absent", False)


# --- dftype -------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="environ.dftype")
def bench_dftype_baseline_dict(benchmark):
    d = {**_SETUP, "dtype": jnp.float32}
    benchmark(_loop0, lambda: d["dtype"])


@pytest.mark.benchmark(group="environ.dftype")
def bench_dftype_precision_unset(benchmark):
    benchmark(_loop0, environ.dftype)


@pytest.mark.benchmark(group="environ.dftype")
def bench_dftype_precision_set(benchmark):
    environ.set_precision(32)
    benchmark(_loop0, environ.dftype)


# --- context enter + exit -----------------------------------------------------------------------


class _DictOverride:
    """The least a context could do: override dict entries and put the old ones back."""

    def __init__(self, d, **values):
        self.d, self.values, self.saved = d, values, []

    def __enter__(self):
        self.saved.append({k: self.d.get(k) for k in self.values})
        self.d.update(self.values)
        return self.d

    def __exit__(self, *exc):
        self.d.update(self.saved.pop())


def _enter_exit(ctx):
    def run():
        with ctx:
            pass

    return run


@pytest.mark.benchmark(group="environ.context:enter+exit")
def bench_context_baseline_dict_override(benchmark):
    benchmark(_loop0, _enter_exit(_DictOverride(dict(_SETUP), i=1, t=0.1)))


@pytest.mark.benchmark(group="environ.context:enter+exit")
def bench_context(benchmark):
    benchmark(_loop0, _enter_exit(environ.context(i=1, t=0.1)))
