"""State access against plain-Python baselines, for the compiled and the pure core.

Targets: compiled read <= 1.5x a ``@property``; compiled single-array write with
the signature check <= 20x a plain attribute write; creation <= 6x a plain object; compiled
write of a dict of 10 arrays <= 60x a plain attribute write (the tree is walked, not flattened).
"""

from __future__ import annotations

import pytest

from conftest import array100, tree10


N = 1000  # operations per timed call: keeps harness overhead out of the per-op ratio


def _loop_get(obj):
    for _ in range(N):
        obj.value


def _loop_set(obj, x):
    for _ in range(N):
        obj.value = x


def _loop_new(cls, x):
    for _ in range(N):
        cls(x)


class _Prop:
    def __init__(self, v):
        self._v = v

    @property
    def value(self):
        return self._v


class _Plain:
    def __init__(self, v):
        self.value = v


@pytest.mark.benchmark(group="state.value:get")
def bench_get_baseline_property(benchmark):
    obj = _Prop(array100())
    benchmark(_loop_get, obj)


@pytest.mark.benchmark(group="state.value:get")
def bench_get(benchmark, core, state_classes):
    st = state_classes(array100())
    benchmark(_loop_get, st)


@pytest.mark.benchmark(group="state.value:set")
def bench_set_baseline_attribute(benchmark):
    obj, x = _Plain(array100()), array100()

    benchmark(_loop_set, obj, x)


@pytest.mark.benchmark(group="state.value:set")
def bench_set(benchmark, core, state_classes):
    st, x = state_classes(array100()), array100()

    benchmark(_loop_set, st, x)


@pytest.mark.benchmark(group="state.create")
def bench_create_baseline_object(benchmark):
    x = array100()
    benchmark(_loop_new, _Plain, x)


@pytest.mark.benchmark(group="state.create")
def bench_create(benchmark, core, state_classes):
    x = array100()
    benchmark(_loop_new, state_classes, x)


@pytest.mark.benchmark(group="state.value:set-tree10")
def bench_set_tree_baseline_attribute(benchmark):
    obj, x = _Plain(tree10()), tree10()

    benchmark(_loop_set, obj, x)


@pytest.mark.benchmark(group="state.value:set-tree10")
def bench_set_tree_baseline_flatten(benchmark):
    import jax

    x = tree10()

    def flatten():
        for _ in range(N):
            jax.tree_util.tree_flatten(x)

    benchmark(flatten)


@pytest.mark.benchmark(group="state.value:set-tree10")
def bench_set_tree(benchmark, core, state_classes):
    st, x = state_classes(tree10()), tree10()

    benchmark(_loop_set, st, x)
