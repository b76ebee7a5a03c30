"""``map``: apply a function to each slice of its inputs' leading axis, one after the other.

The sequential form is a :func:`~brainstate.transform.for_loop` (one compiled ``lax.scan``);
with ``batch_size`` the slices are cut into chunks of that many lanes, each chunk runs under
:func:`~brainstate.transform.vmap`, the chunks are looped over with ``for_loop`` and the
leftover lanes run as one more vmapped call. States therefore follow those transforms' rules.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from brainstate._messages import describe_state
from brainstate._trace import StateTraceStack
from brainstate.transform._loop import _for_body, _scan
from brainstate.transform._vmap import vmap

__all__ = ["map"]


def _check_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"map: batch_size must be a positive int or None, got "
                        f"{type(batch_size).__name__} {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"map: batch_size must be a positive int, got {batch_size}.")
    return int(batch_size)


def _leading_length(xs: tuple) -> int:
    """The common leading-axis size of every leaf of ``xs`` (ValueError naming the culprit)."""
    paths = jax.tree_util.tree_flatten_with_path(xs)[0]
    if not paths:
        raise ValueError("map needs at least one array to map over: xs has no leaves. Pass "
                         "the arrays whose leading axis is mapped, e.g. map(f, xs).")
    sizes = []
    for path, leaf in paths:
        where = "xs" + jax.tree_util.keystr(path)
        if not hasattr(leaf, "shape") or len(np.shape(leaf)) == 0:
            raise ValueError(f"map cannot map over {where}: it is 0-d (a scalar "
                             f"{type(leaf).__name__}), with no leading axis. Every leaf of xs "
                             "must be an array whose first axis is mapped over.")
        sizes.append((int(np.shape(leaf)[0]), where))
    if len({n for n, _ in sizes}) > 1:
        detail = ", ".join(f"{w} has {n}" for n, w in sizes)
        raise ValueError(f"map: all inputs must share the same leading length; {detail}.")
    return sizes[0][0]


def _random_state_type() -> type | None:
    mod = sys.modules.get("brainstate.random._state")
    return None if mod is None else mod.RandomState


def _refusing_writes(f: Callable) -> Callable:
    """``f``, raising ValueError while traced if it writes a (non-random) state.

    The lanes of a chunk cannot see each other's writes. The check runs inside the trace the
    chunked loop makes anyway (a recording frame around ``f``), so ``f`` is traced once per
    call, and it raises before anything runs or is written back.
    """
    rng = _random_state_type()

    def lane(*args: Any) -> Any:
        with StateTraceStack(name="map") as trace:
            out = f(*args)
        written = [st for st in trace.get_write_states()
                   if rng is None or not isinstance(st, rng)]
        if written:
            names = ", ".join(describe_state(st) for st in written)
            raise ValueError(
                f"map(..., batch_size=...) cannot run a function that writes a State: it wrote "
                f"{names}. The lanes of one chunk run side by side and could not see each "
                "other's writes, so the result would differ from the sequential map. Drop "
                "batch_size to thread the state lane by lane, or use "
                "brainstate.transform.vmap with the state declared in in_states/out_states to "
                "keep one value per lane."
            )
        return out

    lane.__name__ = getattr(f, "__name__", "map_lane")
    return lane


def _concat(a: Any, b: Any) -> Any:
    return jax.tree.map(lambda u, v: jnp.concatenate([u, v], axis=0), a, b)


def _batched(f: Callable, xs: tuple, n: int, k: int) -> Any:
    n_full = n // k * k
    lanes = vmap(f)
    ys = None
    if n_full:
        chunks = jax.tree.map(lambda x: x[:n_full].reshape((n // k, k) + x.shape[1:]), xs)
        ys = _scan(_for_body(lanes), None, chunks, None, False, 1, None, "map")[1]
        ys = jax.tree.map(lambda y: y.reshape((n_full,) + y.shape[2:]), ys)
    if n_full < n:
        rest = lanes(*jax.tree.map(lambda x: x[n_full:], xs))
        ys = rest if ys is None else _concat(ys, rest)
    return ys


def map(f: Callable, *xs: Any, batch_size: int | None = None) -> Any:
    """Apply ``f`` to each slice of ``xs`` along the leading axis, in order; stack the outputs.

    Like :func:`jax.lax.map`, with states. Without ``batch_size`` this is
    :func:`~brainstate.transform.for_loop`: one lane after the other, so a state ``f`` writes
    is carried from lane to lane (lane ``i`` reads what lane ``i - 1`` wrote) and holds the
    last lane's value afterwards; states ``f`` only reads are loop invariants. With
    ``batch_size=k`` each chunk of ``k`` lanes runs under :func:`~brainstate.transform.vmap`
    (more memory, fewer loop steps), the chunks one after the other, and the leftover
    ``n % k`` lanes as one more vmapped call; random states are split per lane (each lane
    draws independently, reproducibly from the seed) and advance once per chunk.

    Parameters
    ----------
    f : callable
        Called with one slice of each of ``xs``; its outputs are stacked along a new leading
        axis.
    *xs : pytrees of arrays
        Mapped over their leading axis; every leaf must have the same leading size.
    batch_size : int, optional
        The number of lanes vectorised together (a positive int).

    Returns
    -------
    pytree
        ``f``'s outputs stacked along a new leading axis.

    Raises
    ------
    TypeError
        If ``f`` is not callable or ``batch_size`` is not an int.
    ValueError
        If ``xs`` has no leaves, a leaf is 0-d, the leading sizes differ, ``batch_size`` is not
        positive, or ``batch_size`` is given and ``f`` writes a state other than a random
        state (the lanes of a chunk could not see each other's writes).

    Notes
    -----
    Differs from upstream: a non-int ``batch_size`` is a ``TypeError``; errors name the
    offending input (``xs[1]``) or state. Upstream's batched path also refuses state writes.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> total = brainstate.State(jnp.zeros(()))
    >>> def running(x):
    ...     total.value = total.value + x
    ...     return total.value
    >>> brainstate.transform.map(running, jnp.arange(4.0)).tolist()
    [0.0, 1.0, 3.0, 6.0]
    >>> brainstate.transform.map(lambda x: x * x, jnp.arange(5.0), batch_size=2).tolist()
    [0.0, 1.0, 4.0, 9.0, 16.0]
    """
    if not callable(f):
        raise TypeError(f"map: f must be callable, got {type(f).__name__} {f!r}.")
    k = _check_batch_size(batch_size)
    n = _leading_length(xs)
    if k is not None:
        f = _refusing_writes(f)
    if k is None or n == 0:
        return _scan(_for_body(f), None, xs, n, False, 1, None, "map")[1]
    return _batched(f, xs, n, min(k, n))
