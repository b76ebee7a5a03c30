"""What the control-flow transforms share: tracing their functions and uniting their states.

``scan``/``for_loop``/``while_loop`` (``_loop.py``) and ``cond``/``switch`` (``_cond.py``) each
trace one or more functions (``trace_fn``), check that loop carries and branch outputs keep
their types (``check_same_types``), and thread the union of the traced functions' states
through one JAX primitive (``union_of``): states some function writes are carried, states
they only read are closed over (``docs/concepts/transforms.md``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
from jax.extend.core import jaxpr_as_fun

from brainstate._impl import core as _core
from brainstate._messages import make_error
from brainstate._trace import StateTraceStack
from brainstate.transform._make_jaxpr import StatefulFunction

__all__ = ["StateUnion", "TracedPart", "check_same_types", "trace_fn", "union_of"]

_tree_leaves = jax.tree_util.tree_leaves
_tree_unflatten = jax.tree_util.tree_unflatten


def trace_fn(fun: Callable, args: tuple, name: str) -> Any:
    """Trace ``fun(*args)`` (leaves may be arrays, tracers or ShapeDtypeStructs); its entry."""
    return StatefulFunction(fun, name=name).entry(args, {})


# --- types of carries and branch outputs ------------------------------------------------------


def _avals(tree: Any) -> tuple[list, Any]:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return [jax.typeof(x) for x in leaves], treedef


def _same_type(a: Any, b: Any) -> bool:
    # weak types are ignored: lax's loops and branches promote weakly typed carries themselves
    return tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype


def _describe(avals: list, treedef: Any) -> str:
    return str(_tree_unflatten(treedef, [f"{a.dtype}{list(a.shape)}" for a in avals]))


def check_same_types(what: str, expected: Any, got: Any, fix: str) -> None:
    """TypeError unless two pytrees of values/ShapeDtypeStructs match in structure and avals."""
    ea, et = _avals(expected)
    ga, gt = _avals(got)
    if et != gt or not all(map(_same_type, ea, ga)):
        raise TypeError(f"{what}: expected {_describe(ea, et)}, got {_describe(ga, gt)}. {fix}")


# --- the union of several traced functions' states ------------------------------------------


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


class TracedPart:
    """One traced function of a control-flow construct and where its states sit in the union."""

    __slots__ = ("entry", "fn", "slots")

    def __init__(self, entry: Any, index: dict[int, int]) -> None:
        self.entry = entry
        self.fn = jaxpr_as_fun(entry.jaxpr)
        self.slots = tuple(index[id(st)] for st in entry.states)

    def __call__(self, dyn_leaves: Sequence, union_vals: Sequence) -> tuple[Any, dict]:
        """Evaluate on the union's state values; returns ``(out, {union slot: new value})``."""
        entry = self.entry
        svals = [union_vals[j] for j in self.slots]
        flat = self.fn(*dyn_leaves, *_tree_leaves(svals))
        out, new = _tree_unflatten(entry.out_treedef, flat)
        return out, {self.slots[i]: new[i] for i in entry.write_idx}


class StateUnion:
    """The states of several traced functions (see ``union_of``) and one part per function.

    ``states`` in first-seen order; ``write_idx``/``write_states``: those some function
    writes, the ones a loop carries or every branch returns; ``parts[k]`` runs the k-th
    function on the union's values.
    """

    def __init__(self, states: Sequence, written: Sequence[bool], entries: Sequence) -> None:
        self.states = tuple(states)
        self.write_idx = tuple(j for j, w in enumerate(written) if w)
        self.write_states = tuple(self.states[j] for j in self.write_idx)
        index = {id(st): j for j, st in enumerate(self.states)}
        self.parts = [TracedPart(e, index) for e in entries]

    def gather(self) -> tuple[list, list]:
        """(all current values, the written states' values): reads recorded in outer traces."""
        vals = _core.gather(self.states)
        return vals, [vals[j] for j in self.write_idx]

    def compose(self, vals: Sequence, wvals: Sequence) -> list:
        """All values, with the written states' slots taken from ``wvals``."""
        out = list(vals)
        for j, v in zip(self.write_idx, wvals):
            out[j] = v
        return out

    def updated(self, wvals: Sequence, new: dict) -> list:
        """``wvals`` with the slots a traced function wrote replaced by their new values."""
        return [new.get(j, v) for j, v in zip(self.write_idx, wvals)]

    def write_back(self, wvals: Sequence) -> None:
        """Store the final values (``write_after`` hooks only; recorded in outer traces)."""
        if wvals and not _core.stack_level():
            # No brainstate trace is active, so tracers here come from a raw JAX transform
            # around the loop: refuse to leak them, as `.value =` would (the tracer guard of
            # docs/concepts/trace-contexts.md, "Each state records its trace").
            for st, v in zip(self.write_states, wvals):
                if not st._trace_is_valid() and any(map(_is_tracer, _tree_leaves(v))):
                    raise make_error("tracer_write", st)
        _core.scatter(self.write_states, list(wvals))


def union_of(entries: Sequence) -> StateUnion:
    """The union of traced entries' states: first-seen order, written flags OR-ed.

    The order and flags are those of ``StateTraceStack.merge`` of the entries' traces (each
    entry's ``states``/``written`` are its trace's).
    """
    merged = StateTraceStack(name="union").merge(*(e.trace for e in entries))
    return StateUnion(merged.states, merged.been_writen, entries)
