"""Which axis each state of a mapped call takes: ``state_in_axes``/``state_out_axes`` selectors
turned into ``(axis, predicate)`` rules and matched against a state, and the value signatures
(with a mapped axis removed) the resolution compares."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Callable, Sequence

import jax

from brainstate._error import BatchAxisError
from brainstate._messages import describe_state
from brainstate._state import State
from brainstate.util.filter import to_predicate

# --- selectors ------------------------------------------------------------------------------


class _Instances:
    """Predicate matching the given State instances (kept alive: ids stay theirs)."""

    __slots__ = ("states", "ids")

    def __init__(self, states: Sequence[State]) -> None:
        self.states = tuple(states)
        self.ids = frozenset(id(st) for st in self.states)

    def __call__(self, path: Any, x: Any) -> bool:
        return id(x) in self.ids

    def __repr__(self) -> str:
        return f"Instances({len(self.states)} states)"


class _AnyOf:
    """Predicate matching what any of ``preds`` matches."""

    __slots__ = ("preds",)

    def __init__(self, preds: Sequence[Callable]) -> None:
        self.preds = tuple(preds)

    def __call__(self, path: Any, x: Any) -> bool:
        return any(p(path, x) for p in self.preds)

    def __repr__(self) -> str:
        return f"AnyOf{self.preds}"


def _is_state_mapping(x: Any) -> bool:
    return isinstance(x, Mapping) and bool(x) and all(isinstance(v, State) for v in x.values())


def _selector(sel: Any, where: str) -> Callable:
    """The predicate of one selector: a filter, a State, or a collection of them."""
    if isinstance(sel, State):
        return _Instances([sel])
    if _is_state_mapping(sel):  # e.g. model.states()
        return _Instances(list(sel.values()))
    if isinstance(sel, (list, tuple, set, frozenset)) and sel:
        states = [v for v in sel if isinstance(v, State)]
        if len(states) == len(sel):
            return _Instances(states)
        rest = [_selector(v, where) for v in sel if not isinstance(v, State)]
        return _AnyOf(([_Instances(states)] if states else []) + rest)
    try:
        return to_predicate(sel)
    except TypeError as exc:
        raise TypeError(
            f"{where} must be a filter (a State class, a tag string, ..., a predicate "
            f"(path, state) -> bool), a State, or a collection of them; got {sel!r}."
        ) from exc


def _rules(spec: Any, what: str) -> tuple:
    """``((axis, predicate), ...)`` of a ``state_in_axes``/``state_out_axes`` spec.

    A dict keyed by axes (int or None) maps each axis to a selector; a mapping of States
    keyed otherwise (``model.states()``) and anything else is one selector at axis 0.
    """
    if spec is None:
        return ()
    axis_keyed = isinstance(spec, Mapping) and all(
        k is None or (isinstance(k, int) and not isinstance(k, bool)) for k in spec)
    if isinstance(spec, Mapping) and (axis_keyed or not _is_state_mapping(spec)):
        out = []
        for axis, sel in spec.items():
            if axis is not None and (isinstance(axis, bool) or not isinstance(axis, int)):
                raise TypeError(
                    f"{what} keys must be axes (int or None), got {axis!r}. Write "
                    f"{what}={{0: selector}}, or pass the selector alone for axis 0."
                )
            out.append((axis, _selector(sel, f"{what}[{axis!r}]")))
        return tuple(out)
    return ((0, _selector(spec, what)),)


def _match(st: State, rules: tuple, what: str) -> tuple[bool, int | None]:
    """(matched, axis) of ``st`` under ``rules``; None wins; two int axes conflict."""
    hits = [axis for axis, pred in rules if pred((), st)]
    if not hits:
        return False, None
    if None in hits:
        return True, None
    if len(set(hits)) > 1:
        raise BatchAxisError(
            f"{describe_state(st)} is selected by {what} at axes {sorted(set(hits))}; a state "
            f"is mapped at one axis. Make the selectors of {what} disjoint (e.g. with "
            "brainstate.util.filter.Not) or select it at one axis only."
        )
    return True, hits[0]


def _single_key(st: State) -> bool:
    """Whether ``st`` is a random state holding one key (split per lane, never mapped)."""
    mod = sys.modules.get("brainstate.random._state")
    if mod is None or not isinstance(st, mod.RandomState):
        return False
    from brainstate.random._keys import is_single_key

    return is_single_key(st._value)


# --- signatures -----------------------------------------------------------------------------


def _sig_of(leaves: Sequence, treedef: Any) -> tuple:
    return (treedef, tuple((tuple(x.shape), x.dtype) for x in leaves))


def _without_axis(st: State, axis: int) -> tuple | None:
    """The signature of ``st``'s value with ``axis`` removed (None if out of rank)."""
    leaves, treedef = jax.tree_util.tree_flatten(st._value)
    out = []
    for x in leaves:
        shape = tuple(getattr(x, "shape", ()))
        a = axis + len(shape) if axis < 0 else axis
        if not 0 <= a < len(shape):
            return None
        out.append((shape[:a] + shape[a + 1:], jax.typeof(x).dtype))
    return (treedef, tuple(out))


def _sig_now(st: State) -> tuple:
    """The signature of ``st``'s value in the probe's form (comparable with ``lane_sigs``)."""
    leaves, treedef = jax.tree_util.tree_flatten(st._value)
    return _sig_of([jax.typeof(x) for x in leaves], treedef)


def _view_of(sig: tuple) -> Any:
    """An abstract value of signature ``sig`` (a per-lane stand-in for the engine's trace)."""
    treedef, specs = sig
    return jax.tree_util.tree_unflatten(
        treedef, [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in specs])


def _holds_n(st: State, axis: int, n: int | None) -> bool:
    """Whether every leaf of ``st`` has size ``n`` along ``axis`` (True when n is unknown)."""
    if n is None:
        return True
    for x in jax.tree_util.tree_leaves(st._value):
        shape = tuple(x.shape)
        if shape[axis + len(shape) if axis < 0 else axis] != n:
            return False
    return True
