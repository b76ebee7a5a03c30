"""Graph split/merge/query speed against JAX's own pytree flatten and a plain Python walk.

Models of 1,000 and 10,000 state slots: a ``Module`` holding a list of sub-modules with two
states each (``w``: ``ParamState``, ``h``: ``ShortTermState``); every tenth sub-module ties its
``w`` to the previous one's (shared state). Baselines, in the same pytest-benchmark group as the
operation they bound:

- ``jax.tree.flatten`` / ``jax.tree.unflatten`` of the equivalent nested dict of arrays
  ``{'layers': {i: {'h': array, 'w': array}}}`` (targets: split <= 3x, merge <= 3x);
- a plain recursive Python walk over ``vars()`` collecting states (target: ``model.states()``
  and ``model.states(ParamState)`` <= 1x).

``bench_merge_treefy_merge_mapped`` merges the mapping after an identity ``jax.tree.map`` (what
a transform hands back): its refs carry no signature from the split, so every value's shape and
dtype are read again. ``main()`` also prints the allocation floor of a merge: creating (and
freeing) only the bare states, node shells and their 2-entry dicts, the least any merge must
do. Here it is made through Python-level ``__new__`` calls (~2.7x ``jax.tree.unflatten``).
The same loop written in Cython (``tp_new`` of the state classes, ``PyType_GenericAlloc`` of
the shells, a dict each, no field set) measured 1.8x at 1,000 states and
2.7x at 10,000, where the ~190-byte states no longer fit the caches: at 10,000 states the 3x
merge target leaves ~0.3x for everything but allocating, which no merge that builds new
``State`` objects of this layout reaches.

Run ``pytest bench/bench_graph.py`` (pytest-benchmark), or ``python bench/bench_graph.py`` for a
table of ratios.
"""

from __future__ import annotations

import sys
import timeit
from itertools import repeat

import jax
import jax.numpy as jnp
import pytest

from brainstate import graph
from brainstate._state import ParamState, ShortTermState, State
from brainstate.nn import Module

SIZES = (1_000, 10_000)
SHARE_EVERY = 10


class Block(Module):
    def __init__(self, w, h):
        super().__init__()
        self.w = w
        self.h = h


class Net(Module):
    def __init__(self, n_states: int):
        super().__init__()
        arrays = [jnp.full((4,), float(i)) for i in range(8)]
        layers = []
        for i in range(n_states // 2):
            if i % SHARE_EVERY == SHARE_EVERY - 1:
                w = layers[-1].w  # tied to the previous block
            else:
                w = ParamState(arrays[i % 8])
            layers.append(Block(w, ShortTermState(arrays[(i + 1) % 8])))
        self.layers = layers


def equivalent_tree(n_states: int) -> dict:
    arrays = [jnp.full((4,), float(i)) for i in range(8)]
    return {"layers": {i: {"h": arrays[(i + 1) % 8], "w": arrays[i % 8]}
                       for i in range(n_states // 2)}}


def plain_walk(obj, path=(), out=None, cls=State):
    """What one writes without a library: recurse through vars(), lists and tuples."""
    if out is None:
        out = {}
    for k, v in vars(obj).items():
        p = path + (k,)
        if isinstance(v, State):
            if isinstance(v, cls):
                out[p] = v
        elif isinstance(v, graph.Node):
            plain_walk(v, p, out, cls)
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                q = p + (i,)
                if isinstance(x, State):
                    if isinstance(x, cls):
                        out[q] = x
                elif isinstance(x, graph.Node):
                    plain_walk(x, q, out, cls)
    return out


_CACHE: dict = {}


def setup(n: int):
    if n not in _CACHE:
        model = Net(n)
        tree = equivalent_tree(n)
        leaves, treedef = jax.tree.flatten(tree)
        graphdef, mapping = graph.treefy_split(model)
        _CACHE[n] = (model, tree, leaves, treedef, graphdef, mapping)
    return _CACHE[n]


_MAPPED: dict = {}


def mapped(n: int):
    """The split mapping after an identity ``jax.tree.map`` (fresh refs, same arrays)."""
    if n not in _MAPPED:
        _MAPPED[n] = jax.tree.map(lambda x: x, setup(n)[-1])
    return _MAPPED[n]


def allocation_floor(n: int) -> None:
    """Create and drop what a merge of ``Net(n)`` must create: its states, its node shells and
    a 2-entry dict per shell (``map`` over C callables: no Python frame per object)."""
    model = setup(n)[0]
    w_type, h_type = type(model.layers[0].w), type(model.layers[0].h)
    k = n // 2
    template = {"h": None, "w": None}
    out = (list(map(w_type.__new__, repeat(w_type, k))),
           list(map(h_type.__new__, repeat(h_type, k))),
           list(map(object.__new__, repeat(Block, k))),
           list(map(dict.copy, repeat(template, k))))
    del out


# --- pytest-benchmark -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def bench_split_baseline_jax_flatten(benchmark, n):
    _, tree, *_ = setup(n)
    benchmark.group = f"split-{n}"
    benchmark(jax.tree.flatten, tree)


@pytest.mark.parametrize("n", SIZES)
def bench_split_treefy_split(benchmark, n):
    model, *_ = setup(n)
    benchmark.group = f"split-{n}"
    benchmark(graph.treefy_split, model)


@pytest.mark.parametrize("n", SIZES)
def bench_merge_baseline_jax_unflatten(benchmark, n):
    _, _, leaves, treedef, *_ = setup(n)
    benchmark.group = f"merge-{n}"
    benchmark(jax.tree.unflatten, treedef, leaves)


@pytest.mark.parametrize("n", SIZES)
def bench_merge_treefy_merge(benchmark, n):
    *_, graphdef, mapping = setup(n)
    benchmark.group = f"merge-{n}"
    benchmark(graph.treefy_merge, graphdef, mapping)


@pytest.mark.parametrize("n", SIZES)
def bench_merge_treefy_merge_mapped(benchmark, n):
    gd = setup(n)[4]
    m = mapped(n)
    benchmark.group = f"merge-{n}"
    benchmark(graph.treefy_merge, gd, m)


_INDEX_REF: dict = {}


def index_ref(n: int) -> dict:
    """The index table of one merge of the split, to merge into again (``index_ref_cache``)."""
    if n not in _INDEX_REF:
        table: dict = {}
        graph.unflatten(setup(n)[4], setup(n)[5], index_ref=table)
        _INDEX_REF[n] = table
    return _INDEX_REF[n]


@pytest.mark.parametrize("n", SIZES)
def bench_merge_into_cache(benchmark, n):
    """``unflatten(..., index_ref_cache=...)``: the nodes and states of an earlier merge are
    refilled and updated in place (no allocation of states; each is written or restored)."""
    *_, graphdef, mapping = setup(n)
    cache = index_ref(n)
    benchmark.group = f"merge-{n}"
    benchmark(graph.unflatten, graphdef, mapping, index_ref_cache=cache)


@pytest.mark.parametrize("n", SIZES)
def bench_states_baseline_plain_walk(benchmark, n):
    model, *_ = setup(n)
    benchmark.group = f"states-{n}"
    benchmark(plain_walk, model)


@pytest.mark.parametrize("n", SIZES)
def bench_states_all(benchmark, n):
    model, *_ = setup(n)
    benchmark.group = f"states-{n}"
    benchmark(model.states)


@pytest.mark.parametrize("n", SIZES)
def bench_states_param_baseline_plain_walk(benchmark, n):
    model, *_ = setup(n)
    benchmark.group = f"states-param-{n}"
    benchmark(plain_walk, model, cls=ParamState)


@pytest.mark.parametrize("n", SIZES)
def bench_states_param(benchmark, n):
    model, *_ = setup(n)
    benchmark.group = f"states-param-{n}"
    benchmark(model.states, ParamState)


# --- a table of ratios ------------------------------------------------------------------------------


def _best(fn, *args, **kwargs) -> float:
    number = max(1, int(0.05 / max(_once(fn, *args, **kwargs), 1e-7)))
    return min(timeit.repeat(lambda: fn(*args, **kwargs), number=number, repeat=7)) / number


def _once(fn, *args, **kwargs) -> float:
    t = timeit.default_timer()
    fn(*args, **kwargs)
    return timeit.default_timer() - t


def main() -> None:
    from brainstate import _impl

    print(f"core: {_impl.IMPLEMENTATION}  python {sys.version.split()[0]}  jax {jax.__version__}")
    rows = []
    for n in SIZES:
        model, tree, leaves, treedef, graphdef, mapping = setup(n)
        flat = _best(jax.tree.flatten, tree)
        unflat = _best(jax.tree.unflatten, treedef, leaves)
        walk = _best(plain_walk, model)
        walk_p = _best(plain_walk, model, cls=ParamState)
        rows += [
            (n, "treefy_split", _best(graph.treefy_split, model), flat, 3.0),
            (n, "treefy_merge", _best(graph.treefy_merge, graphdef, mapping), unflat, 3.0),
            (n, "  (mapped refs)", _best(graph.treefy_merge, graphdef, mapped(n)), unflat, None),
            (n, "  (allocation floor)", _best(allocation_floor, n), unflat, None),
            (n, "  (into index_ref_cache)",
             _best(graph.unflatten, graphdef, mapping, index_ref_cache=index_ref(n)), unflat,
             None),
            (n, "model.states()", _best(model.states), walk, 1.0),
            (n, "model.states(ParamState)", _best(model.states, ParamState), walk_p, 1.0),
        ]
    print(f"{'states':>7} {'operation':<26} {'time':>10} {'baseline':>10} {'ratio':>7} {'target':>7}")
    for n, name, t, base, target in rows:
        if target is None:  # a reference row, not a target
            shown, ok = "", ""
        else:
            shown, ok = f"{target:>6.1f}x", "ok" if t / base <= target else "MISSED"
        print(f"{n:>7} {name:<26} {t * 1e3:>8.3f}ms {base * 1e3:>8.3f}ms {t / base:>6.2f}x "
              f"{shown:>7} {ok}")


if __name__ == "__main__":
    main()
