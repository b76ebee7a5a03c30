"""``jit_error_if``: raise from compiled code when a traced predicate is true.

Eagerly (a concrete predicate) the error is raised directly. Under a trace the check becomes a
``lax.cond`` whose true branch calls back to the host with ``jax.debug.callback``, so a false
predicate costs no host round trip. Under ``vmap`` the predicate is OR-reduced over the mapped
axes first (a small primitive whose batching rule reduces), so the ``cond`` stays a real
branch instead of becoming a ``select`` that would call back on every execution; JAX then calls
back once per lane and the lanes whose own predicate holds raise.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Primitive
from jax.interpreters import batching, mlir

__all__ = ["jit_error_if"]

# --- "unvmap": see through vmap -------------------------------------------------------------
# `_unvmap_p.bind(x, op=...)` is the identity outside vmap. Under vmap its batching rule
# reduces over the mapped axis ('any', 'all') or takes the first lane ('first') and returns an
# unmapped value. Each op keeps the per-lane shape: JAX's batching of cond/scan bodies assumes
# an unmapped value has the aval it had before batching.

_unvmap_p = Primitive("brainstate_unvmap")
_unvmap_p.def_impl(lambda x, *, op: x)
_unvmap_p.def_abstract_eval(lambda aval, *, op: aval)
mlir.register_lowering(_unvmap_p, mlir.lower_fun(lambda x, *, op: x, multiple_results=False))


def _unvmap_batch(args, dims, *, op):
    (x,), (d,) = args, dims
    if op == "any":
        out = jnp.any(x, axis=d)
    elif op == "all":
        out = jnp.all(x, axis=d)
    else:
        out = jnp.take(x, 0, axis=d)
    # None is JAX's "not mapped" marker for a batching rule's output dimension.
    return _unvmap_p.bind(out, op=op), None


batching.primitive_batchers[_unvmap_p] = _unvmap_batch


def _unvmap(x: Any, op: str) -> Any:
    # stop_gradient: these values only steer control flow or reach the host, and it keeps JVP
    # tracers (which would need a JVP rule) away from the primitive.
    return _unvmap_p.bind(jax.lax.stop_gradient(jnp.asarray(x)), op=op)


def unvmap_any(x: Any) -> Any:
    """A scalar bool: whether any element of ``x`` is true, over every enclosing vmap lane."""
    return _unvmap(jnp.any(jnp.asarray(x).astype(bool)), "any")


def unvmap_all(x: Any) -> Any:
    """A scalar bool: whether every element of ``x`` is true, over every enclosing vmap lane."""
    return _unvmap(jnp.all(jnp.asarray(x).astype(bool)), "all")


def unvmap_first(x: Any) -> Any:
    """``x`` as seen by the first lane of every enclosing vmap (``x`` itself outside vmap)."""
    return _unvmap(x, "first")


# --- error formatting -----------------------------------------------------------------------


def _error_msg(msg: str, *args: Any, **kwargs: Any) -> None:
    """Raise ``ValueError(msg)`` formatted %-style with ``args`` (else ``str.format``)."""
    text = msg
    if args:
        try:
            text = msg % args
        except (TypeError, ValueError):
            # a brace-style message given positional arguments: "bad value {}"
            text = msg.format(*args, **kwargs)
            kwargs = {}
    if kwargs:
        text = text.format(**kwargs)
    raise ValueError(text)


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _is_dynamic(x: Any) -> bool:
    return _is_tracer(x) or isinstance(x, (jax.Array, np.ndarray, np.generic))


def jit_error_if(pred: Any, error: Callable | str, *err_args: Any, **err_kwargs: Any) -> None:
    """Raise an error when ``pred`` is true, in eager code and inside ``jit``/``vmap``/loops.

    Parameters
    ----------
    pred : bool or array
        The condition; an array is true when any of its elements is (and, under ``vmap``, when
        any lane's is).
    error : str or callable
        A message (raised as ``ValueError`` after formatting with ``err_args`` %-style, falling
        back to ``str.format``, and ``err_kwargs`` with ``str.format``) or a function called
        with ``*err_args, **err_kwargs`` that raises.
    *err_args, **err_kwargs
        Values for the message or the function. Array values are transferred from the device
        only when the error fires; under ``vmap`` the error shows an offending lane's values.

    Raises
    ------
    TypeError
        If ``error`` is neither a string nor callable.
    ValueError
        Eagerly, when ``pred`` is true and ``error`` is a string.

    Notes
    -----
    Inside compiled code the error is raised by a host callback; JAX reports it to the caller
    as its own runtime error (``jax.errors.JaxRuntimeError``) whose text contains the message.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainstate
    >>> @jax.jit
    ... def safe_log(x):
    ...     brainstate.transform.jit_error_if(jnp.any(x <= 0), "log of {n} non-positive values",
    ...                                       n=jnp.sum(x <= 0))
    ...     return jnp.log(x)
    >>> safe_log(jnp.ones(3))
    Array([0., 0., 0.], dtype=float32)
    """
    if isinstance(error, str):
        error = functools.partial(_error_msg, error)
    elif not callable(error):
        raise TypeError(f"jit_error_if: error must be a message string or a function that "
                        f"raises, got {type(error).__name__} {error!r}.")
    leaves, treedef = jax.tree_util.tree_flatten((err_args, err_kwargs))
    if not any(_is_tracer(x) for x in jax.tree_util.tree_leaves(pred)):
        if bool(np.any(np.asarray(pred))):
            args, kwargs = jax.tree_util.tree_unflatten(treedef, leaves)
            error(*args, **kwargs)
        return

    # Only array-like leaves go through the callback; the rest (strings, ...) are closed over.
    dyn_idx = [i for i, x in enumerate(leaves) if _is_dynamic(x)]

    def raise_on_host(lane_pred, *dyn):
        # Under vmap JAX calls back once per lane: only the lanes whose predicate holds raise,
        # so the message shows the offending lane's values.
        if not np.any(lane_pred):
            return
        full = list(leaves)
        for i, v in zip(dyn_idx, dyn):
            full[i] = v
        args, kwargs = jax.tree_util.tree_unflatten(treedef, full)
        error(*args, **kwargs)

    lane_pred = jnp.any(jnp.asarray(pred).astype(bool))
    ops = [lane_pred] + [leaves[i] for i in dyn_idx]
    # The predicate is OR-reduced over vmap lanes first, so the cond stays a branch (a batched
    # predicate would turn it into a select that calls back on every execution).
    jax.lax.cond(unvmap_any(pred),
                 lambda o: jax.debug.callback(raise_on_host, *o),
                 lambda o: None,
                 ops)
