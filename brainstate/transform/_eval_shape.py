"""``eval_shape``: the output shapes of a stateful function, computed without any FLOPs.

The function is traced once (``StatefulFunction``) on abstract arguments; nothing runs and
pre-existing states keep their values. Argument and output leaves that are not arrays (model
objects, strings, ...) are passed through as Python values, so ``eval_shape(lambda: Model())``
returns the model itself. States created inside get abstract values (``jax.ShapeDtypeStruct``
leaves) in place of the tracers that died with the trace, and their stack level is unwound so
they behave as ordinary outer-scope states afterwards.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np

from brainstate._impl import core as _core
from brainstate._state import catch_new_states
from brainstate.transform._make_jaxpr import StatefulFunction

__all__ = ["eval_shape"]

_PY_SCALARS = (bool, int, float, complex)


def _is_arraylike(x: Any) -> bool:
    return isinstance(x, (jax.Array, jax.core.Tracer, np.ndarray, np.generic,
                          jax.ShapeDtypeStruct) + _PY_SCALARS)


def _abstract(x: Any) -> Any:
    if isinstance(x, jax.core.Tracer):
        a = jax.typeof(x)
        return jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=getattr(a, "weak_type", False))
    return x


def eval_shape(f: Callable, *args: Any, return_state_shapes: bool = False,
               **kwargs: Any) -> Any:
    """The shapes and dtypes ``f(*args, **kwargs)`` would produce, without computing anything.

    Parameters
    ----------
    f : callable
        A function that may read and write states and create new ones.
    *args, **kwargs
        Arrays, ``jax.ShapeDtypeStruct`` objects, Python scalars or any other objects (passed
        through unchanged, e.g. models).
    return_state_shapes : bool
        Also return ``{state: ShapeDtypeStruct tree}`` for every pre-existing state ``f``
        reads or writes (the values it would hold at the end of ``f``).

    Returns
    -------
    out or (state_shapes, out)
        ``f``'s output with every array leaf replaced by a ``jax.ShapeDtypeStruct``; other
        leaves (objects created inside ``f``) are returned as they are.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> st = brainstate.State(jnp.zeros(3))
    >>> def f(x):
    ...     st.value = st.value + x
    ...     return st.value.sum()
    >>> brainstate.transform.eval_shape(f, jnp.ones(3))
    ShapeDtypeStruct(shape=(), dtype=float32)
    >>> st.value
    Array([0., 0., 0.], dtype=float32)
    """
    if not callable(f):
        raise TypeError(f"eval_shape: f must be callable, got {type(f).__name__} {f!r}.")
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
    dyn_idx = [i for i, x in enumerate(leaves) if _is_arraylike(x)]
    holder: dict = {}
    base_level = _core.stack_level()

    def flat_fun(*dyn: Any) -> list:
        full = list(leaves)
        for i, v in zip(dyn_idx, dyn):
            full[i] = v
        a, k = jax.tree_util.tree_unflatten(treedef, full)
        out = f(*a, **k)
        out_leaves, out_tree = jax.tree_util.tree_flatten(out)
        keep = [i for i, x in enumerate(out_leaves) if _is_arraylike(x)]
        holder["out"] = (out_leaves, out_tree, keep)
        # What new states hold now, abstractly: their tracers die when the trace ends.
        holder["new"] = [(st, jax.tree.map(_abstract, st._value)) for st in catcher]
        return [out_leaves[i] for i in keep]

    sf = StatefulFunction(flat_fun, name="eval_shape", return_only_write=False)
    dyn = [leaves[i] for i in dyn_idx]
    with catch_new_states() as catcher:
        try:
            entry = sf.entry(tuple(dyn), {})
        finally:
            _settle_new_states(catcher, holder.get("new", ()), base_level)
    out_leaves, out_tree, keep = holder["out"]
    out_leaves = list(out_leaves)
    for i, shape in zip(keep, entry.out_shapes[0]):
        out_leaves[i] = shape
    out = jax.tree_util.tree_unflatten(out_tree, out_leaves)
    if return_state_shapes:
        return dict(zip(entry.states, entry.out_shapes[1])), out
    return out


def _settle_new_states(catcher: Any, abstract: Any, base_level: int) -> None:
    """Give poisoned new states their abstract values; unwind every new state's level."""
    abstract = {id(st): v for st, v in abstract}
    for st in catcher:
        if st._value is _core.INVALID and id(st) in abstract:
            st._restore_silent(abstract[id(st)])
        # eval_shape pushed one trace frame; states created under it sit one level up
        while st._level > base_level:
            st.decrease_stack_level()
