"""State-aware conditionals: ``cond``, ``switch`` and ``ifelse``.

Every branch is traced once (``StatefulFunction``). The union of the branches' states is
threaded through ``lax.cond``/``lax.switch``: states some branch writes are operands and
results of every branch (a branch that does not write one passes its incoming value through),
states the branches only read are closed over. After the call the written states get their
new values once (``core.scatter``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from brainstate._jax_internals import jax_config as _jax_config
from brainstate.transform._error_if import jit_error_if
from brainstate.transform._tracing import check_same_types, trace_fn, union_of

__all__ = ["cond", "switch", "ifelse"]

_tree_leaves = jax.tree_util.tree_leaves


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _run_branches(select: Callable, funs: Sequence[Callable], operands: tuple,
                  where: str, names: Sequence[str]) -> Any:
    """Trace each of ``funs`` on ``operands`` and run ``select(branches, wvals, leaves)``."""
    entries = [trace_fn(f, operands, f"{where}:{n}") for f, n in zip(funs, names)]
    first = entries[0].out_shapes[0]
    for entry, name in zip(entries[1:], names[1:]):
        check_same_types(f"{where}: {name} returns a different type than {names[0]}", first,
                         entry.out_shapes[0],
                         "Every branch must return the same structure, shapes and dtypes.")
    u = union_of(entries)
    vals, w_init = u.gather()
    # the traced jaxprs take the operands flattened as StatefulFunction flattens them
    leaves = _tree_leaves((tuple(operands), {}))

    def make(part):
        def branch(wvals, dyn):
            out, new = part(dyn, u.compose(vals, wvals))
            return u.updated(wvals, new), out

        return branch

    wvals, out = select([make(p) for p in u.parts], w_init, leaves)
    u.write_back(wvals)
    return out


R = TypeVar("R")  # what the branches return


def cond(pred: Any, true_fun: Callable[..., R], false_fun: Callable[..., R],
         *operands: Any) -> R:
    """Run ``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``, threading states.

    Both branches are traced; the union of the states they touch is threaded through
    ``lax.cond``. A state written by only one branch keeps its incoming value in the other.

    Parameters
    ----------
    pred : bool or number scalar
        The predicate; a number means ``pred != 0``.
    true_fun, false_fun : callable
        The branches; they must return the same structure, shapes and dtypes.
    *operands
        Passed to the chosen branch.

    Raises
    ------
    TypeError
        If a branch is not callable, ``pred`` is None, not a scalar, or not bool/number.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> hits = brainstate.State(jnp.zeros((), jnp.int32))
    >>> def yes(x):
    ...     hits.value = hits.value + 1
    ...     return x
    >>> float(brainstate.transform.cond(True, yes, lambda x: -x, 2.0)), int(hits.value)
    (2.0, 1)
    """
    if not (callable(true_fun) and callable(false_fun)):
        raise TypeError("cond: true_fun and false_fun must be callable, got "
                        f"{type(true_fun).__name__} and {type(false_fun).__name__}.")
    if pred is None:
        raise TypeError("cond predicate is None; pass a bool or number scalar.")
    if isinstance(pred, Sequence) or np.ndim(pred) != 0:
        got = f"type {type(pred).__name__}" if isinstance(pred, Sequence) \
            else f"shape {np.shape(pred)}"
        raise TypeError(f"Pred must be a scalar, got {pred!r} of {got}. Reduce it first, "
                        "e.g. jnp.any(pred).")
    try:
        dtype = jax.dtypes.result_type(pred)
    except TypeError as err:
        raise TypeError(f"Pred type must be either boolean or number, got {pred!r}.") from err
    if dtype.kind != "b":
        if dtype.kind not in "iuf":
            raise TypeError(f"Pred type must be either boolean or number, got {dtype}.")
        pred = pred != 0
    if _jax_config.disable_jit.value and not _is_tracer(pred):
        return true_fun(*operands) if bool(pred) else false_fun(*operands)

    def select(branches, wvals, leaves):
        return jax.lax.cond(pred, branches[0], branches[1], wvals, leaves)

    return _run_branches(select, (true_fun, false_fun), operands, "cond",
                         ("true_fun", "false_fun"))


def switch(index: Any, branches: Sequence[Callable[..., R]], *operands: Any) -> R:
    """Run ``branches[index](*operands)`` (index clamped into range), threading states.

    Parameters
    ----------
    index : int scalar
        Which branch; values outside ``[0, len(branches) - 1]`` are clamped.
    branches : sequence of callables
        Each returns the same structure, shapes and dtypes. A single branch is called directly.
    *operands
        Passed to the chosen branch.

    Raises
    ------
    TypeError
        If a branch is not callable or ``index`` is not an integer scalar.
    ValueError
        If ``branches`` is empty.

    Examples
    --------
    >>> import brainstate
    >>> fs = [lambda x: x - 1, lambda x: x, lambda x: x + 1]
    >>> int(brainstate.transform.switch(7, fs, 3))
    4
    """
    branches = tuple(branches)
    bad = [b for b in branches if not callable(b)]
    if bad:
        raise TypeError(f"switch: branches must be callables, got {bad[0]!r} "
                        f"({type(bad[0]).__name__}).")
    if np.ndim(index) != 0:
        raise TypeError(f"Branch index must be scalar, got {index!r} of shape "
                        f"{np.shape(index)}.")
    try:
        dtype = jax.dtypes.result_type(index)
    except TypeError as err:
        raise TypeError(f"Index type must be an integer, got {index!r}.") from err
    if dtype.kind not in "iu":
        raise TypeError(f"Index type must be an integer, got {index!r} of dtype {dtype}. "
                        "Convert it, e.g. jnp.asarray(i, jnp.int32).")
    if not branches:
        raise ValueError("Empty branch sequence: switch needs at least one branch.")
    if len(branches) == 1:
        return branches[0](*operands)
    index = jax.lax.clamp(np.int32(0), jax.lax.convert_element_type(index, np.int32),
                          np.int32(len(branches) - 1))
    if _jax_config.disable_jit.value and not _is_tracer(index):
        return branches[int(index)](*operands)

    def select(fns, wvals, leaves):
        return jax.lax.switch(index, fns, wvals, leaves)

    return _run_branches(select, branches, operands, "switch",
                         tuple(f"branches[{i}]" for i in range(len(branches))))


def ifelse(conditions: Any, branches: Sequence[Callable[..., R]], *operands: Any,
           check_cond: bool = True) -> R:
    """Multi-way ``if``/``elif``: run the branch of the first true condition.

    Parameters
    ----------
    conditions : sequence of bool scalars, or a bool vector
        One per branch. With ``check_cond`` exactly one must be true (make the last one
        ``True`` for a default branch only with ``check_cond=False``).
    branches : sequence of callables
        One per condition; each returns the same structure, shapes and dtypes.
    *operands
        Passed to the chosen branch.
    check_cond : bool
        Raise (at run time under ``jit``) unless exactly one condition is true.

    Raises
    ------
    ValueError
        If the numbers of conditions and branches differ, or there are no branches.

    Examples
    --------
    >>> import brainstate
    >>> x = 7
    >>> int(brainstate.transform.ifelse([x > 5, x <= 5], [lambda: 1, lambda: 0]))
    1
    """
    branches = tuple(branches)
    bad = [b for b in branches if not callable(b)]
    if bad:
        raise TypeError(f"ifelse: branches must be callables, got {bad[0]!r} "
                        f"({type(bad[0]).__name__}).")
    if not branches:
        raise ValueError("Empty branch sequence: ifelse needs at least one branch.")
    n_cond = len(conditions)
    if n_cond != len(branches):
        raise ValueError(f"ifelse: the number of conditions ({n_cond}) should be equal to the "
                         f"number of branches ({len(branches)}).")
    if len(branches) == 1:
        return branches[0](*operands)
    conds = jnp.stack([jnp.asarray(c).astype(bool) for c in conditions]) \
        if isinstance(conditions, (list, tuple)) else jnp.asarray(conditions).astype(bool)
    if check_cond:
        jit_error_if(jnp.sum(conds.astype(jnp.int32)) != 1,
                     "ifelse: exactly one condition must be true, got {conds}.", conds=conds)
    # first true condition; with none true (check_cond=False) the last branch
    index = jnp.where(jnp.any(conds), jnp.argmax(conds), len(branches) - 1).astype(jnp.int32)
    return switch(index, branches, *operands)
