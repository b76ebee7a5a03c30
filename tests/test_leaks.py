"""Entry points of the state runtime run in a loop do not leak references or memory.

Each case builds a small workload (a state read, a rejected write, a hook that rewrites or
vetoes, a graph split and merge, a jitted call, a checkpoint save and load...) and
:func:`measure` runs it ``warmup`` times, then ``rounds`` rounds of ``n`` calls, recording after
each round (and a full ``gc.collect()``):

* ``traced``: the growth of ``tracemalloc``'s traced memory (bytes);
* ``objects``: the growth of the number of gc-tracked objects (``len(gc.get_objects())``);
* ``arrays``: the growth of the number of live JAX arrays (``jax.live_arrays()``);
* ``watched``: the growth of ``sys.getrefcount`` of the objects the workload touches again and
  again (the state, its values, the hook callbacks, the jitted function...): a reference
  leaked on an object that already exists costs no memory, so only its count shows it;
* ``total_refs``: the growth of ``sys.gettotalrefcount()``, on a debug CPython only;
* ``rss``: the growth of the resident set size (Linux), checked by the long version only: it
  sees memory that tracemalloc does not (XLA's buffers), but only in megabytes.

A leak repeats in every round, while warm-up effects (JAX's dispatch caches, interned
strings, dict resizes) fade. So the checks use the *smallest* growth over the rounds and
compare it with a bound that does not grow with ``n``: ``MAX_BYTES`` (4 KiB) for traced
memory, ``n // 10`` for counts (a leak of one object or reference per call adds ``n`` per
round; the total reference count also gets one per 64 bytes of the memory bound), 2 MiB for
the resident set. ``n`` is chosen per case so that one leaked float
(24 bytes) per call exceeds ``MAX_BYTES``. The objects alive before a measurement are frozen
out of the collector (``gc.freeze``), so the object count is exact and each collection cheap.
Self-tests at the end leak on purpose and check that every measure notices.

Both cores: the states use the core selected at import, so run the file twice::

    python -m pytest tests/test_leaks.py -q                              # compiled core
    BRAINSTATE_NO_EXTENSIONS=1 python -m pytest tests/test_leaks.py -q   # pure-Python core

The default run is short; ``-m slow`` selects the long version (10x the calls, 5 rounds).

Reference counts on a debug CPython
-----------------------------------
``sys.gettotalrefcount()`` exists only in a debug build of CPython (``--with-pydebug``);
elsewhere that measure is skipped and the per-object counts stand in for it. ``bash
.ci/refcount`` runs this file (with tests/test_hooks_api.py and tests/test_graph_core.py, or
the test files given to it) under one, from a clean checkout: it unpacks Debian's
``python3.11-dbg`` package without installing it, makes a virtual environment with it, builds
the compiled core against the debug headers in a copy of the tree (``_core.cpython-311d-...so``)
and runs the tests on both cores. A debug build also aborts with a report on any negative
reference count, which catches a missing ``Py_INCREF`` as the total catches an extra one.

Debian's debug interpreter loads extensions built for the release ABI, so numpy and jaxlib
come from their usual wheels there (an upstream ``--with-pydebug`` build looks only for
``.cpython-311d`` files, and would need them built from source). Their own reference counting
does not update the debug total while the interpreter counts the objects they create, so the
total drifts with every numpy or JAX object created or freed inside them, leak or not (the
script prints the drift of one numpy addition: +1 per call). This file therefore uses the
total only where a numpy addition leaves it unchanged (``_total_refcount_is_reliable``: a
debug numpy too); with the release wheels the run still aborts on any negative count and the
other measures stand.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import mmap
import os
import sys
import tracemalloc
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import (
    GlobalHookRegistry,
    HookCancellationError,
    HookConfig,
    HookExecutionError,
    StateSignatureError,
    graph,
)
from brainstate.checkpoint import CheckpointMismatchError, load, save
from brainstate.transform import jit



def _total_refcount_is_reliable() -> bool:
    """``sys.gettotalrefcount()`` exists and numpy's own counting moves it (a debug numpy too).

    With release-ABI numpy/jaxlib wheels under a debug interpreter the total drifts by one or
    more per object they create, leak or not (see the module docstring): the measure is then
    left out and the other measures stand, as on a release interpreter.
    """
    if not hasattr(sys, "gettotalrefcount"):
        return False
    a = np.ones(4)
    for _ in range(3):
        a + a
    before = sys.gettotalrefcount()
    for _ in range(100):
        a + a
    return abs(sys.gettotalrefcount() - before) < 50


HAS_TOTAL_REFCOUNT = _total_refcount_is_reliable()

#: Default bound on the smallest per-round growth of traced memory (bytes).
MAX_BYTES = 4096


# --- the measuring helper ---------------------------------------------------------------------


@dataclasses.dataclass
class Growth:
    """Growth of each measure in each round of ``n`` calls (see the module docstring)."""

    n: int
    traced: list
    objects: list
    arrays: list
    watched: dict
    total_refs: list | None
    rss: list | None

    def problems(self, max_bytes: int = MAX_BYTES, max_rss: int | None = None) -> list:
        """What grew in every round beyond its bound (empty when nothing leaks).

        ``max_rss``: also bound the resident set size (skipped where it cannot be read).
        """
        out = []
        max_count = self.n // 10  # a leak of one per call adds n per round
        if min(self.traced) > max_bytes:
            out.append(f"traced memory grew by {self.traced} bytes per round of {self.n} calls "
                       f"(bound {max_bytes})")
        if max_rss is not None and self.rss is not None and min(self.rss) > max_rss:
            out.append(f"resident set size grew by {self.rss} bytes per round of {self.n} calls "
                       f"(bound {max_rss})")
        # Small objects a cache may still keep within the traced-memory allowance (strings of
        # ~56 bytes) hold references too: the total count gets that many more.
        max_refs = max_count + max_bytes // 64
        for label, series, bound in [("gc-tracked objects", self.objects, max_count),
                                     ("live JAX arrays", self.arrays, max_count),
                                     ("sys.gettotalrefcount()", self.total_refs, max_refs)]:
            if series is not None and min(series) > bound:
                out.append(f"{label} grew by {series} per round of {self.n} calls "
                           f"(bound {bound})")
        for name, series in self.watched.items():
            if min(series) > max_count:
                out.append(f"refcount of {name!r} grew by {series} per round of {self.n} calls "
                           f"(bound {max_count})")
        return out


def _rss() -> int | None:
    """Resident set size in bytes (Linux), else None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _snapshot(watch: dict) -> tuple:
    gc.collect()
    refs = tuple(sys.getrefcount(obj) for obj in watch.values())
    total = sys.gettotalrefcount() if HAS_TOTAL_REFCOUNT else 0
    return (tracemalloc.get_traced_memory()[0], len(gc.get_objects()), len(jax.live_arrays()),
            total, _rss() or 0) + refs


def measure(fn: Callable[[], Any], n: int, *, rounds: int = 3, warmup: int = 50,
            watch: dict | None = None) -> Growth:
    """Call ``fn`` ``warmup`` times, then ``rounds`` times ``n`` times; the growth per round.

    ``watch`` maps a name to an object whose reference count is followed.
    """
    watch = dict(watch or {})
    # Every object tracked now goes to the permanent generation: a full collection then walks
    # only what the workload created, and gc.get_objects() lists only that (well under a ms
    # instead of the ~150 ms a collection of JAX's heap takes). Garbage frozen with them is
    # simply collected later, after unfreeze().
    gc.freeze()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        for _ in range(warmup):
            fn()
        # growth[k][r]: measure k in round r; preallocated so the bookkeeping allocates nothing
        growth = [[0] * rounds for _ in range(5 + len(watch))]
        before = _snapshot(watch)
        for r in range(rounds):
            for _ in range(n):
                fn()
            after = _snapshot(watch)
            for k, (b, a) in enumerate(zip(before, after)):
                growth[k][r] = a - b
            before = after
    finally:
        gc.unfreeze()
        if started:
            tracemalloc.stop()
    traced, objects, arrays, total, rss, *refs = growth
    return Growth(
        n=n, traced=traced, objects=objects, arrays=arrays,
        watched=dict(zip(watch, refs)),
        total_refs=total if HAS_TOTAL_REFCOUNT else None,
        rss=rss if _rss() is not None else None,
    )


# --- the workloads ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    build: Callable  # (tmp_path) -> context manager yielding (fn, watch)
    n: int
    warmup: int
    bytes_per_call: int  # allowance on top of MAX_BYTES, for paths where JAX's caches settle slowly


CASES: dict = {}


def case(name: str, *, n: int = 300, warmup: int = 50, bytes_per_call: int = 0):
    """Register a workload: a generator ``build(tmp_path)`` yielding ``(fn, watch)``.

    ``n`` calls per round: at least 200, so that one leaked float (24 bytes) per call exceeds
    ``MAX_BYTES``; fewer only where a call is slow and the counts carry the check.
    """

    def deco(build):
        CASES[name] = Case(contextlib.contextmanager(build), n, warmup, bytes_per_call)
        return build

    return deco


class Net(brainstate.nn.Module):
    """Shared references, a list of sub-modules and three state classes."""

    def __init__(self, width: int = 3):
        super().__init__()
        self.w = brainstate.ParamState(jnp.zeros((2, width)))
        self.h = brainstate.HiddenState(jnp.zeros(width))
        self.step = brainstate.LongTermState(jnp.zeros((), jnp.int32))
        self.layers = [brainstate.nn.Module(), brainstate.nn.Module()]
        self.layers[0].b = brainstate.ParamState(jnp.ones(width))
        self.tied = self.layers[0]


def _swap(st: brainstate.State, a: Any, b: Any) -> Callable[[], None]:
    """A write that alternates two values (so every call stores a different object)."""
    flip = [False]

    def write():
        flip[0] = not flip[0]
        st.value = a if flip[0] else b

    return write


def _raises(fn: Callable[[], Any], exc: type) -> Callable[[], None]:
    def call():
        try:
            fn()
        except exc:
            pass
        else:  # pragma: no cover - the workload itself is wrong
            raise AssertionError(f"expected {exc.__name__}")

    return call


@case("state_read")
def _state_read(tmp_path):
    st = brainstate.State(jnp.zeros(3))
    value = st.value
    yield (lambda: st.value), {"state": st, "value": value}


@case("state_read_tree")
def _state_read_tree(tmp_path):
    st = brainstate.State({"a": jnp.zeros(3), "b": [jnp.ones(2), None]})
    yield (lambda: st.value), {"state": st}


@case("state_write")
def _state_write(tmp_path):
    st = brainstate.ParamState(jnp.zeros(3))
    a, b = jnp.ones(3), jnp.zeros(3)
    yield _swap(st, a, b), {"state": st, "a": a, "b": b}


@case("state_write_tree")
def _state_write_tree(tmp_path):
    a = {"x": jnp.zeros(3), "y": (jnp.ones((2, 2)), np.float32(1.0))}
    b = {"x": jnp.ones(3), "y": (jnp.zeros((2, 2)), np.float32(2.0))}
    st = brainstate.State(a)
    yield _swap(st, a, b), {"state": st, "a": a, "b": b}


@case("state_write_bad_shape")
def _state_write_bad_shape(tmp_path):
    st = brainstate.ParamState(jnp.zeros(3))
    bad = jnp.zeros(4)

    def write():
        st.value = bad

    yield _raises(write, StateSignatureError), {"state": st, "bad": bad}


@case("state_write_bad_dtype")
def _state_write_bad_dtype(tmp_path):
    st = brainstate.ParamState(jnp.zeros(3))
    bad = jnp.zeros(3, jnp.int32)

    def write():
        st.value = bad

    yield _raises(write, StateSignatureError), {"state": st, "bad": bad}


@case("state_write_bad_tree")
def _state_write_bad_tree(tmp_path):
    st = brainstate.State({"a": jnp.zeros(3)})
    bad = {"a": jnp.zeros(3), "b": jnp.zeros(3)}

    def write():
        st.value = bad

    yield _raises(write, StateSignatureError), {"state": st, "bad": bad}


@case("state_restore")
def _state_restore(tmp_path):
    st = brainstate.ShortTermState(jnp.zeros(3))
    a, b = jnp.ones(3), jnp.zeros(3)
    flip = [False]

    def restore():
        flip[0] = not flip[0]
        st.restore_value(a if flip[0] else b)

    yield restore, {"state": st, "a": a, "b": b}


@case("state_create")
def _state_create(tmp_path):
    value = jnp.zeros(3)
    yield (lambda: brainstate.ParamState(value)), {"value": value}


# hooks: per-state and global, of every type; observing, rewriting, vetoing, raising


def _hooked(hook_type: str, callback: Callable, *, on_error: str = "log"):
    st = brainstate.ParamState(jnp.zeros(3))
    st.hooks.config = HookConfig(on_error=on_error)
    handle = st.register_hook(hook_type, callback)
    return st, handle


def _boom(ctx):
    raise RuntimeError("hook failed")


def _count(ctx):
    ctx.metadata["seen"] = ctx.metadata.get("seen", 0) + 1


def _rewrite(ctx):
    ctx.transformed_value = ctx.value * 2


def _veto(ctx):
    ctx.cancel = True
    ctx.cancel_reason = "no writes here"


@case("hook_read")
def _hook_read(tmp_path):
    st, handle = _hooked("read", _count)
    yield (lambda: st.value), {"state": st, "callback": _count}
    handle.remove()


@case("hook_read_raising")
def _hook_read_raising(tmp_path):
    st, handle = _hooked("read", _boom, on_error="raise")
    yield _raises(lambda: st.value, HookExecutionError), {"state": st, "callback": _boom}
    handle.remove()


@case("hook_read_raising_logged")
def _hook_read_raising_logged(tmp_path):
    logged = []

    def logger(msg, error, hook, ctx):
        logged[:] = [msg]  # keep only the last message

    st = brainstate.ParamState(jnp.zeros(3))
    st.hooks.config = HookConfig(on_error="log", error_logger=logger)
    handle = st.register_hook("read", _boom)
    yield (lambda: st.value), {"state": st, "logger": logger}
    handle.remove()
    assert logged


@case("hook_write_before")
def _hook_write_before(tmp_path):
    st, handle = _hooked("write_before", _count)
    a, b = jnp.ones(3), jnp.zeros(3)
    yield _swap(st, a, b), {"state": st, "a": a, "b": b, "callback": _count}
    handle.remove()


@case("hook_write_before_rewriting")
def _hook_write_before_rewriting(tmp_path):
    st, handle = _hooked("write_before", _rewrite)
    a, b = jnp.ones(3), jnp.zeros(3)
    yield _swap(st, a, b), {"state": st, "a": a, "b": b, "callback": _rewrite}
    handle.remove()


@case("hook_write_before_cancelling")
def _hook_write_before_cancelling(tmp_path):
    st, handle = _hooked("write_before", _veto)
    a = jnp.ones(3)

    def write():
        st.value = a

    yield _raises(write, HookCancellationError), {"state": st, "a": a, "callback": _veto}
    handle.remove()


@case("hook_write_before_raising")
def _hook_write_before_raising(tmp_path):
    st, handle = _hooked("write_before", _boom, on_error="raise")
    a = jnp.ones(3)

    def write():
        st.value = a

    yield _raises(write, HookExecutionError), {"state": st, "a": a, "callback": _boom}
    handle.remove()


@case("hook_write_after")
def _hook_write_after(tmp_path):
    st, handle = _hooked("write_after", _count)
    a, b = jnp.ones(3), jnp.zeros(3)
    yield _swap(st, a, b), {"state": st, "a": a, "b": b, "callback": _count}
    handle.remove()


@case("hook_write_after_raising")
def _hook_write_after_raising(tmp_path):
    st, handle = _hooked("write_after", _boom, on_error="raise")
    a = jnp.ones(3)

    def write():
        st.value = a

    yield _raises(write, HookExecutionError), {"state": st, "a": a, "callback": _boom}
    handle.remove()


@case("hook_restore")
def _hook_restore(tmp_path):
    st, handle = _hooked("restore", _count)
    a = jnp.ones(3)
    yield (lambda: st.restore_value(a)), {"state": st, "a": a, "callback": _count}
    handle.remove()


@case("hook_restore_raising")
def _hook_restore_raising(tmp_path):
    st, handle = _hooked("restore", _boom, on_error="raise")
    a = jnp.ones(3)
    yield (_raises(lambda: st.restore_value(a), HookExecutionError),
           {"state": st, "a": a, "callback": _boom})
    handle.remove()


@contextlib.contextmanager
def _global_hook(hook_type: str, callback: Callable, on_error: str = "log") -> Iterator:
    registry = GlobalHookRegistry.instance()
    old = registry.config
    registry.config = HookConfig(on_error=on_error)
    handle = brainstate.register_state_hook(hook_type, callback)
    try:
        yield
    finally:
        handle.remove()
        registry.config = old


@case("global_hook_init")
def _global_hook_init(tmp_path):
    value = jnp.zeros(3)
    with _global_hook("init", _count):
        yield (lambda: brainstate.ParamState(value)), {"value": value, "callback": _count}


@case("global_hook_init_raising")
def _global_hook_init_raising(tmp_path):
    value = jnp.zeros(3)
    with _global_hook("init", _boom, on_error="raise"):
        yield (_raises(lambda: brainstate.ParamState(value), HookExecutionError),
               {"value": value, "callback": _boom})


@case("global_hook_read_write_restore")
def _global_hook_read_write_restore(tmp_path):
    st = brainstate.State(jnp.zeros(3))
    a, b = jnp.ones(3), jnp.zeros(3)
    write = _swap(st, a, b)

    def work():
        st.value
        write()
        st.restore_value(a)

    with _global_hook("read", _count), _global_hook("write_before", _rewrite), \
            _global_hook("write_after", _count), _global_hook("restore", _count):
        yield work, {"state": st, "a": a, "b": b}


@case("global_hook_write_before_cancelling")
def _global_hook_write_before_cancelling(tmp_path):
    st = brainstate.State(jnp.zeros(3))
    a = jnp.ones(3)

    def write():
        st.value = a

    with _global_hook("write_before", _veto):
        yield _raises(write, HookCancellationError), {"state": st, "a": a}


@case("hook_register_remove")
def _hook_register_remove(tmp_path):
    st = brainstate.State(jnp.zeros(3))

    def churn():
        handle = st.register_hook("write_after", _count, priority=1)
        handle.disable()
        handle.enable()
        handle.remove()
        brainstate.register_state_hook("read", _count).remove()

    yield churn, {"state": st, "callback": _count}


# graph: split/merge, flatten/unflatten, state queries and updates


@case("treefy_split_merge", n=200, warmup=20)
def _treefy_split_merge(tmp_path):
    net = Net()

    def roundtrip():
        graphdef, params, rest = graph.treefy_split(net, brainstate.ParamState, ...)
        graph.treefy_merge(graphdef, params, rest)

    yield roundtrip, {"net": net, "w": net.w, "value": net.w.value}


@case("treefy_pytree_flatten")
def _treefy_pytree_flatten(tmp_path):
    net = Net()
    _, refs = graph.treefy_split(net)
    leaves, treedef = jax.tree_util.tree_flatten(refs)
    yield (lambda: jax.tree_util.tree_unflatten(treedef, jax.tree_util.tree_leaves(refs))), {
        "leaf": leaves[0], "treedef": treedef}


@case("graph_flatten_unflatten", n=200, warmup=20)
def _graph_flatten_unflatten(tmp_path):
    net = Net()

    def roundtrip():
        graphdef, mapping = graph.flatten(net)
        graph.unflatten(graphdef, mapping)

    yield roundtrip, {"net": net, "w": net.w}


@case("graph_unflatten_refill", n=200, warmup=20)
def _graph_unflatten_refill(tmp_path):
    graphdef, refs = graph.treefy_split(Net())
    table: dict = {}
    first = graph.unflatten(graphdef, refs, index_ref=table)

    def refill():
        assert graph.unflatten(graphdef, refs, index_ref_cache=table) is first

    yield refill, {"first": first, "w": first.w, "graphdef": graphdef}


@case("graph_clone", n=200, warmup=20)
def _graph_clone(tmp_path):
    net = Net()
    yield (lambda: graph.clone(net)), {"net": net, "w": net.w}


@case("module_states", n=200, warmup=20)
def _module_states(tmp_path):
    net = Net()

    def gather():
        net.states()
        net.states(brainstate.ParamState, ...)
        graph.treefy_states(net, brainstate.HiddenState)

    yield gather, {"net": net, "w": net.w}


@case("graph_update_states", n=200, warmup=20)
def _graph_update_states(tmp_path):
    net = Net()
    snapshot = graph.treefy_states(net)
    yield (lambda: graph.update_states(net, snapshot)), {"net": net, "w": net.w,
                                                          "snapshot": snapshot}


@case("graph_update_states_bad", n=200, warmup=20)
def _graph_update_states_bad(tmp_path):
    net = Net()
    other = graph.treefy_states(Net(width=4))  # every shape differs
    yield (_raises(lambda: graph.update_states(net, other), StateSignatureError),
           {"net": net, "w": net.w, "other": other})


# transforms: the jit fast path (same argument structure), the cache lookup, hooks on write-back


@case("jit_fast_path")
def _jit_fast_path(tmp_path):
    w = brainstate.ParamState(jnp.ones(3))
    h = brainstate.HiddenState(jnp.zeros(3))

    def step(x):
        h.value = 0.5 * h.value + w.value * x
        return h.value.sum()

    f = jit(step)
    x = jnp.ones(3)
    yield (lambda: f(x)), {"f": f, "w": w, "h": h, "x": x}


@case("jit_tree_args")
def _jit_tree_args(tmp_path):
    h = brainstate.HiddenState(jnp.zeros(3))

    def step(inp):
        h.value = h.value + inp["x"] * inp["scale"][0]
        return {"sum": h.value.sum()}

    f = jit(step)
    inp = {"x": jnp.ones(3), "scale": (jnp.float32(0.5),)}
    yield (lambda: f(inp)), {"f": f, "h": h, "inp": inp}


# Each call here costs ~5 ms against ~25 us on the fast path: the fast path first runs the
# last signature's jitted function, whose failed re-trace is what costs. So few calls; the
# counts carry this check (the traced memory sees only leaks >= ~100 bytes a call).
@case("jit_alternating_signatures", n=30, warmup=6)
def _jit_alternating_signatures(tmp_path):
    h = brainstate.HiddenState(jnp.zeros(3))

    def step(x):
        h.value = h.value + x.sum()
        return h.value

    f = jit(step)
    x3, x5 = jnp.ones(3), jnp.ones(5)
    flip = [False]

    def call():
        flip[0] = not flip[0]
        f(x3 if flip[0] else x5)  # each call misses the fast path and looks up its entry

    yield call, {"f": f, "h": h, "x3": x3, "x5": x5}


@case("jit_kwargs")
def _jit_kwargs(tmp_path):
    h = brainstate.HiddenState(jnp.zeros(3))

    def step(x, *, scale):
        h.value = h.value * scale + x
        return h.value

    f = jit(step)
    x, scale = jnp.ones(3), jnp.float32(0.5)
    yield (lambda: f(x, scale=scale)), {"f": f, "h": h, "x": x}


@case("jit_write_after_hook")
def _jit_write_after_hook(tmp_path):
    h = brainstate.HiddenState(jnp.zeros(3))
    handle = h.register_hook("write_after", _count)

    def step(x):
        h.value = h.value + x

    f = jit(step)
    x = jnp.ones(3)
    yield (lambda: f(x)), {"f": f, "h": h, "x": x, "callback": _count}
    handle.remove()


# checkpoints: JAX's device_put caches take ~2,000 loads to settle (tens of bytes per load
# until then), so these allow 256 bytes per call; a leaked data buffer (8-16 KiB each) is far
# above that, and the counts are exact.


@case("checkpoint_save_load", n=20, warmup=20, bytes_per_call=256)
def _checkpoint_save_load(tmp_path):
    net = Net(width=2048)
    target = Net(width=2048)
    path = str(tmp_path / "net.ckpt")

    def roundtrip():
        save(path, net, metadata={"epoch": 1})
        load(path, target)

    yield roundtrip, {"net": net, "target": target, "w": target.w}


@case("checkpoint_load_mismatch", n=20, warmup=20, bytes_per_call=256)
def _checkpoint_load_mismatch(tmp_path):
    path = str(tmp_path / "net.ckpt")
    save(path, Net(width=2048))
    target = Net(width=3)
    yield (_raises(lambda: load(path, target), CheckpointMismatchError),
           {"target": target, "w": target.w})


# --- the tests ----------------------------------------------------------------------------------

NAMES = sorted(CASES)


def _check(name: str, tmp_path, *, scale: int, rounds: int, max_rss: int | None = None
           ) -> Growth:
    c = CASES[name]
    n = c.n * scale
    with c.build(tmp_path) as (fn, watch):
        growth = measure(fn, n, rounds=rounds, warmup=c.warmup * scale, watch=watch)
    problems = growth.problems(MAX_BYTES + c.bytes_per_call * n, max_rss)
    assert not problems, f"{name} leaks:\n" + "\n".join(problems)
    return growth


@pytest.mark.parametrize("name", NAMES)
def test_entry_point_does_not_leak(name, tmp_path):
    _check(name, tmp_path, scale=1, rounds=3)


@pytest.mark.slow
@pytest.mark.stress
@pytest.mark.parametrize("name", NAMES)
def test_entry_point_does_not_leak_long(name, tmp_path):
    # the resident set size too: it sees memory that tracemalloc does not (XLA's buffers)
    _check(name, tmp_path, scale=10, rounds=5, max_rss=2 << 20)


def test_every_case_runs_its_workload(tmp_path):
    # a case whose workload silently did nothing would pass trivially
    with CASES["hook_write_after"].build(tmp_path) as (fn, watch):
        seen = []
        handle = watch["state"].register_hook("write_after", lambda ctx: seen.append(1))
        fn()
        fn()
        handle.remove()
    assert len(seen) == 2
    with CASES["jit_fast_path"].build(tmp_path) as (fn, watch):
        fn()
        fn()
        np.testing.assert_allclose(np.asarray(watch["h"].value), np.full(3, 1.5), rtol=1e-6)
    with CASES["hook_write_before_rewriting"].build(tmp_path) as (fn, watch):
        fn()
        np.testing.assert_allclose(np.asarray(watch["state"].value), np.full(3, 2.0), rtol=1e-6)
    with CASES["checkpoint_save_load"].build(tmp_path) as (fn, watch):
        fn()


# --- self-tests: the helper notices each kind of leak ------------------------------------------


def test_measure_detects_a_memory_leak():
    kept = []
    growth = measure(lambda: kept.append(bytearray(16)), 300, warmup=5)
    problems = growth.problems()
    assert any(p.startswith("traced memory grew") for p in problems), problems
    # a bytearray is not gc-tracked: only the traced memory sees this one
    assert not any(p.startswith("gc-tracked objects grew") for p in problems), problems
    kept.clear()


def test_measure_detects_leaked_objects():
    kept = []
    growth = measure(lambda: kept.append([]), 100, warmup=5)
    assert any(p.startswith("gc-tracked objects grew") for p in growth.problems()), growth
    kept.clear()


def test_measure_detects_leaked_jax_arrays():
    kept = []
    x = jnp.ones(2)
    growth = measure(lambda: kept.append(x + 1), 50, warmup=5)
    assert any(p.startswith("live JAX arrays grew") for p in growth.problems()), growth
    kept.clear()


def test_measure_detects_a_leaked_reference_without_memory():
    # Py_IncRef without a matching Py_DecRef: the leak a wrong refcount in C code makes. It costs
    # no memory, so only the watched count (and, on a debug build, the total count) sees it.
    target = object()
    base = sys.getrefcount(target)
    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.py_object]
    calls = 0

    def leak():
        nonlocal calls
        calls += 1
        incref(target)

    growth = measure(leak, 100, warmup=5, watch={"target": target})
    problems = growth.problems()
    try:
        assert any(p.startswith("refcount of 'target' grew") for p in problems), problems
        assert min(growth.traced) <= MAX_BYTES, growth.traced
        if HAS_TOTAL_REFCOUNT:
            assert any(p.startswith("sys.gettotalrefcount() grew") for p in problems), problems
    finally:
        decref = ctypes.pythonapi.Py_DecRef
        decref.argtypes = [ctypes.py_object]
        # undo exactly the leaked references (a failure report may hold more, legitimately)
        for _ in range(calls):
            decref(target)


def test_measure_ignores_warm_up_growth():
    # a cache that fills in the first round only (a one-off cost, not a leak)
    cache = []

    def fill_once():
        if len(cache) < 150:
            cache.append([bytearray(64)])

    growth = measure(fill_once, 100, warmup=0)
    assert growth.traced[0] > MAX_BYTES and growth.objects[0] >= 100
    assert growth.problems() == []


def test_measure_detects_resident_memory_growth():
    kept = []

    def leak_a_mebibyte():
        # fresh anonymous pages, each touched: resident whatever the heap already holds free
        # (a malloc'd buffer may reuse freed, still-resident heap pages and not grow the RSS)
        block = mmap.mmap(-1, 1 << 20)
        for offset in range(0, 1 << 20, mmap.PAGESIZE):
            block[offset] = 1
        kept.append(block)

    growth = measure(leak_a_mebibyte, 4, warmup=1)
    for block in kept:
        block.close()
    kept.clear()
    if growth.rss is None:
        pytest.skip("the resident set size cannot be read on this system")
    assert any(p.startswith("resident set size grew") for p in growth.problems(max_rss=2 << 20))
