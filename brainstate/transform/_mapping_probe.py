"""The probe of ``vmap2``/``pmap2``: one abstract trace of the function on per-lane inputs that
finds the states it touches, which it writes, and which it overwrites without reading."""

from __future__ import annotations

import threading
from typing import Any, Callable

import jax

from brainstate._gc import gc_paused
from brainstate._impl import core as _core
from brainstate._jax_internals import jax_core as _jax_core
from brainstate._jax_internals import source_info_util as _source_info_util
from brainstate._messages import describe_state
from brainstate._state import State, catch_new_states
from brainstate._trace import StateTraceStack
from brainstate.transform._make_jaxpr import _poison, _rollback
from brainstate.transform._mapping_axes import _match, _sig_of, _single_key
from brainstate.transform._vmap import _lane, _leaf_axes, _sds

# --- the probe flag -------------------------------------------------------------------------

# ``depth``: how many probe runs are active in this thread (in_new_state_probe reads it)
_probe_tls = threading.local()


# --- the argument side ----------------------------------------------------------------------


def _lane_args(args: tuple, in_axes: Any, what: str) -> tuple[list, Any, list]:
    """(per-lane abstract leaves, treedef, sizes of the mapped leaves) of ``args``."""
    leaves, treedef = jax.tree_util.tree_flatten(args)
    axes = _leaf_axes(args, leaves, treedef, in_axes, what)
    paths = None
    lanes, sizes = [], []
    for i, (leaf, ax) in enumerate(zip(leaves, axes)):
        if ax is None:
            lanes.append(_sds(leaf))
            continue
        if paths is None:
            paths = [jax.tree_util.keystr(p) for p, _ in
                     jax.tree_util.tree_flatten_with_path(args)[0]]
        # ``where`` is called (if at all) before _lane returns: no loop-variable binding
        lane, _, size = _lane(leaf, ax, lambda: f"args{paths[i]}", what)
        lanes.append(lane)
        sizes.append(size)
    return lanes, treedef, sizes


# --- the probe ------------------------------------------------------------------------------


class _Probed:
    """What the probe learnt: touched states, written flags, in axes, pure writes."""

    __slots__ = ("states", "written", "axes", "pure", "lane_sigs")

    def __init__(self, states: list, written: list, axes: dict, pure: set,
                 lane_sigs: dict) -> None:
        self.states, self.written, self.axes = states, written, axes
        self.pure = pure  # ids of states written without their prior value being used
        self.lane_sigs = lane_sigs  # id -> per-lane signature of the written value


def _probe(fun: Callable, lanes: list, treedef: Any, in_rules: tuple, axis_env: Any,
           what: str) -> _Probed:
    """Trace ``fun`` once on per-lane inputs and learn which states it touches and how.

    States an in-selector matches read per-lane (their axis removed), the others whole.
    Writes re-bind instead of being checked (the compiled trace checks them), so a per-lane
    write to a state read whole is seen rather than refused. Nothing is computed and every
    state (value and signature) is rolled back afterwards.
    """
    stack = StateTraceStack(name=f"{what}:probe")
    axes: dict = {}
    sigs: dict = {}
    n_leaves: list = []
    lane_sigs: dict = {}
    box: dict = {}

    def new_arg(st: State) -> Any:
        sigs[id(st)] = (st, st._signature)
        _, axis = _match(st, in_rules, "state_in_axes")
        if axis is not None and _single_key(st):
            axis = None
        # Bind to the probe's trace: a state first seen inside a nested transform is
        # recorded by this stack while that nested trace is the current one.
        trace = box["trace"]
        leaves, tdef = jax.tree_util.tree_flatten(st._value)
        vals = []
        for leaf in leaves:
            aval = jax.typeof(leaf)
            if axis is not None:
                lane, _, _ = _lane(leaf, axis, lambda: describe_state(st), what)
                aval = aval.update(shape=lane.shape)
            vals.append(trace.new_arg(aval, _source_info_util.current()))
        if axis is not None:
            axes[id(st)] = axis
        n_leaves.append(len(vals))
        return jax.tree_util.tree_unflatten(tdef, vals)

    def traced(*flat: Any) -> None:
        box["trace"] = _jax_core.trace_ctx.trace
        stack.set_new_arg(new_arg)
        with stack:
            fun(*jax.tree_util.tree_unflatten(treedef, flat))
        for st, w in zip(stack.states, stack.been_writen):
            if w:
                leaves, tdef = jax.tree_util.tree_flatten(st._value)
                lane_sigs[id(st)] = _sig_of([jax.typeof(x) for x in leaves], tdef)

    _probe_tls.depth = getattr(_probe_tls, "depth", 0) + 1
    _core.push_tree_check(False)
    try:
        with catch_new_states() as catcher, gc_paused():
            try:
                jaxpr = jax.make_jaxpr(traced, axis_env=axis_env)(*lanes).jaxpr
            finally:
                _rollback(stack)
                _poison(catcher)
                for st, sig in sigs.values():  # a re-bind inside the probe is not kept
                    if st._signature != sig:
                        st._signature = sig
    finally:
        _core.pop_tree_check()
        _probe_tls.depth -= 1
    used = {id(v) for eqn in jaxpr.eqns for v in eqn.invars}
    used.update(id(v) for v in jaxpr.outvars)
    state_vars = jaxpr.invars[len(jaxpr.invars) - sum(n_leaves):]
    pure, pos = set(), 0
    for st, w, k in zip(stack.states, stack.been_writen, n_leaves):
        if w and not any(id(v) in used for v in state_vars[pos:pos + k]):
            pure.add(id(st))
        pos += k
    return _Probed(list(stack.states), list(stack.been_writen), axes, pure, lane_sigs)
