"""``unvmap``: a value that no longer depends on the lanes of the enclosing ``vmap``\\ s.

Inside ``vmap`` a reduction such as "is any element true?" is per lane; a ``lax.cond`` on a
per-lane predicate becomes a ``select`` that runs both branches. ``unvmap`` reduces over every
element *and every lane* of all enclosing ``vmap``\\ s, giving one unbatched scalar, so a
``cond`` on it stays a branch and a host callback on it runs once.

Two small primitives do the work. ``brainstate_unvmap_reduce`` is the identity outside
``vmap`` (the element reduction happens before it, in plain ``jnp``); its batching rule
reduces over the mapped axis and re-binds itself one level up, so nested ``vmap``\\ s are
reduced level by level. It keeps the per-lane aval, which ``cond``/``scan`` batching relies
on. ``brainstate_unvmap_stack`` (``op='none'``) instead returns the lanes stacked on a new
leading axis as one unbatched value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

__all__ = ["unvmap"]

_REDUCTIONS: dict[str, Callable[..., Any]] = {
    "all": jnp.all,
    "any": jnp.any,
    "max": jnp.max,
    "min": jnp.min,
    "sum": jnp.sum,
}
_OPS = tuple(_REDUCTIONS) + ("none",)


# --- the reduction primitive: identity outside vmap, lane reduction under it ------------------

_reduce_p = Primitive("brainstate_unvmap_reduce")
_reduce_p.def_impl(lambda x, *, op: x)
_reduce_p.def_abstract_eval(lambda aval, *, op: aval)
mlir.register_lowering(_reduce_p, mlir.lower_fun(lambda x, *, op: x, multiple_results=False))


def _reduce_batch(args: tuple, dims: tuple, *, op: str) -> tuple:
    (x,), (d,) = args, dims
    # Reduce this level's lanes, then let any outer vmap reduce its own (re-bind one level up).
    # None: JAX's "not mapped" marker for a batching rule's output.
    return _reduce_p.bind(_REDUCTIONS[op](x, axis=d), op=op), None


def _reduce_jvp(primals: tuple, tangents: tuple, *, op: str) -> tuple:
    (x,), (t,) = primals, tangents
    y = _reduce_p.bind(x, op=op)
    if op == "sum":
        return y, _reduce_p.bind(ad.instantiate_zeros(t), op="sum")
    if op in ("max", "min"):
        # As jnp.max: the tangent is shared equally by the lanes that attain the extremum.
        t = ad.instantiate_zeros(t)
        hit = x == y
        count = _reduce_p.bind(hit.astype(t.dtype), op="sum")
        picked = _reduce_p.bind(jnp.where(hit, t, jnp.zeros_like(t)), op="sum")
        return y, picked / count
    # 'any'/'all' work on booleans, which carry no tangent.
    # (A symbolic zero tangent of ``y``'s tangent type, float0 for booleans; the
    # ``Zero.from_primal_value`` spelling of older JAX is gone from every supported release.)
    return y, ad.Zero(jax.typeof(y).to_tangent_aval())


def _reduce_transpose(ct: Any, x: Any, *, op: str) -> list:
    if op != "sum":
        raise NotImplementedError(f"unvmap: op={op!r} has no transpose (only 'sum' is linear).")
    # Per lane the sum over lanes has derivative 1 with respect to that lane's value.
    return [ad.instantiate_zeros(ct) if type(ct) is ad.Zero else ct]


batching.primitive_batchers[_reduce_p] = _reduce_batch
ad.primitive_jvps[_reduce_p] = _reduce_jvp
ad.primitive_transposes[_reduce_p] = _reduce_transpose


# --- the stacking primitive (op='none') ------------------------------------------------------

_stack_p = Primitive("brainstate_unvmap_stack")
_stack_p.def_impl(lambda x: x)
_stack_p.def_abstract_eval(lambda aval: aval)
mlir.register_lowering(_stack_p, mlir.lower_fun(lambda x: x, multiple_results=False))


def _stack_batch(args: tuple, dims: tuple) -> tuple:
    (x,), (d,) = args, dims
    # The lanes on a new leading axis (outermost vmap first after all levels ran).
    return _stack_p.bind(jnp.moveaxis(x, d, 0)), None


def _stack_jvp(primals: tuple, tangents: tuple) -> tuple:
    raise NotImplementedError(
        "unvmap(x, op='none') is not differentiable: its per-lane shape changes under vmap. "
        "Apply jax.lax.stop_gradient to x first if no gradient should flow through it."
    )


batching.primitive_batchers[_stack_p] = _stack_batch
ad.primitive_jvps[_stack_p] = _stack_jvp


# --- public API ------------------------------------------------------------------------------


def _as_array(x: Any) -> Any:
    # Lists/tuples of numbers convert as in jnp.asarray; other containers are pytrees.
    is_leaf = jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(x))
    try:
        if not (is_leaf or isinstance(x, (list, tuple))):
            raise TypeError
        return jnp.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(
            f"unvmap takes one array, got a {type(x).__name__}. For a pytree apply it per "
            "leaf: jax.tree.map(lambda v: unvmap(v, op), tree)."
        ) from None


def unvmap(x: Any, op: str = "any") -> Any:
    """Reduce ``x`` over its elements and over every lane of the enclosing ``vmap``\\ s.

    The result is one unbatched value: the same in every lane, so a ``lax.cond`` on it stays a
    branch under ``vmap`` and a host callback on it runs once.

    Parameters
    ----------
    x : array_like
        One array (not a pytree).
    op : {'any', 'all', 'max', 'min', 'sum', 'none'}
        ``'any'``/``'all'``: a bool scalar, whether any/every element of any/every lane is
        true. ``'max'``/``'min'``/``'sum'``: the extremum/sum over all elements of all lanes,
        a scalar of ``x``'s dtype. ``'none'``: no reduction: outside ``vmap`` ``x`` itself;
        inside, the lanes stacked on a new leading axis (one per enclosing ``vmap``,
        outermost first), as one unbatched value.

    Returns
    -------
    jax.Array
        A scalar (``'none'``: an array as described above).

    Raises
    ------
    ValueError
        If ``op`` is not one of the names above.
    TypeError
        If ``x`` is not an array (e.g. a dict of arrays).

    Notes
    -----
    Differentiable for ``'max'``, ``'min'`` and ``'sum'`` (``'max'``/``'min'`` share the
    gradient equally among the lanes that attain the extremum, as ``jnp.max``); ``'any'`` and
    ``'all'`` give booleans; ``'none'`` raises under differentiation. ``'none'`` changes the
    shape of the value under ``vmap``, so inside the body of a ``scan``/``while_loop``/``cond``
    that is itself vmapped JAX refuses it (a carry/branch type error); the reductions keep
    the per-lane shape and work there.

    Differs from upstream: ``'min'`` and ``'sum'`` are added; ``'max'`` and ``'sum'`` are
    differentiable (upstream has no differentiation rules); ``'none'`` puts the lanes on the
    leading axis wherever vmap had placed them (upstream returns the batched array with the
    mapped axis at an arbitrary position); a pytree argument raises a ``TypeError`` naming
    the fix; an unknown ``op`` raises a ``ValueError`` listing the valid names.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainstate
    >>> xs = jnp.array([[1.0, -2.0], [-3.0, -4.0]])
    >>> jax.vmap(lambda row: brainstate.transform.unvmap(row > 0, op='any'))(xs)
    Array([ True,  True], dtype=bool)
    >>> jax.vmap(lambda row: brainstate.transform.unvmap(row, op='max'))(xs)
    Array([1., 1.], dtype=float32)
    >>> bool(brainstate.transform.unvmap(jnp.array([True, False]), op='all'))
    False
    """
    if op not in _OPS:
        names = ", ".join(repr(o) for o in _OPS)
        raise ValueError(f"unvmap: unknown op {op!r}; expected one of {names}.")
    x = _as_array(x)
    if op == "none":
        return _stack_p.bind(x)
    if op in ("any", "all"):
        # booleans: no tangent, and stop_gradient keeps JVP tracers of inputs out
        x = jax.lax.stop_gradient(x).astype(bool)
    return _reduce_p.bind(_REDUCTIONS[op](x), op=op)


# Single-op shorthands, under the names upstream gives them.
def unvmap_all(x: Any) -> Any:
    """``unvmap(x, op='all')``."""
    return unvmap(x, op="all")


def unvmap_any(x: Any) -> Any:
    """``unvmap(x, op='any')``."""
    return unvmap(x, op="any")


def unvmap_max(x: Any) -> Any:
    """``unvmap(x, op='max')``."""
    return unvmap(x, op="max")
