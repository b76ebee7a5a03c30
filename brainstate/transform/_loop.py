"""State-aware loops: ``scan``, ``for_loop``, ``while_loop`` and their bounded variants.

The loop body is traced once (``StatefulFunction``) with abstract per-iteration inputs. States
it writes become part of the loop carry and their final values are written back once after
the loop (``core.scatter``: recorded in enclosing traces, ``write_after`` hooks only); states
it only reads are loop invariants, closed over by the body so XLA sees them as constants of
the loop, never copied per iteration. The body that runs inside ``lax.scan`` /
``lax.while_loop`` is the traced jaxpr itself: no Python runs per iteration.

Inside an enclosing transform (``jit``, another loop, ``cond``) the loop is traced within the
outer trace: ``core.gather`` then returns the outer trace's values of the states and the
write-back stores outer tracers, which the outer transform records as writes.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from brainstate._jax_internals import jax_config as _jax_config
from brainstate._messages import describe_state
from brainstate._trace import StateTraceStack
from brainstate.transform._error_if import unvmap_any
from brainstate.transform._make_jaxpr import _rollback
from brainstate.transform._progress import as_runner, counter_init, describe_callable
from brainstate.transform._tracing import StateUnion, check_same_types, trace_fn, union_of

__all__ = [
    "scan",
    "for_loop",
    "while_loop",
    "checkpointed_scan",
    "checkpointed_for_loop",
    "bounded_while_loop",
]

_tree_leaves = jax.tree_util.tree_leaves
_tree_unflatten = jax.tree_util.tree_unflatten


# --- argument checks ---------------------------------------------------------------------------


def _loop_length(where: str, xs_flat: list, length: Any) -> int:
    missing = [x for x in xs_flat if not hasattr(x, "shape") or len(np.shape(x)) == 0]
    if missing:
        raise ValueError(
            f"{where} got value with no leading axis to scan over: "
            f"{', '.join(repr(x) for x in missing)}. Every leaf of xs must be an array whose "
            "first axis is the iteration axis."
        )
    lengths = [int(np.shape(x)[0]) for x in xs_flat]
    if length is not None:
        try:
            length = int(length)
        except (TypeError, ValueError):
            raise TypeError(f"{where}: length must be an int, got {length!r}.") from None
        if any(n != length for n in lengths):
            raise ValueError(f"{where} got `length` argument of {length} which disagrees with "
                             f"leading axis sizes {lengths}. Drop length or fix xs.")
        if length < 0:
            raise ValueError(f"{where}: length must be >= 0, got {length}.")
        return length
    unique = set(lengths)
    if len(unique) > 1:
        raise ValueError(f"{where} got values with different leading axis sizes: "
                         f"{', '.join(map(str, lengths))}. All xs must have the same length.")
    if not unique:
        raise ValueError(f"{where} got no values to scan over and `length` not provided. "
                         "Pass xs or length=.")
    return unique.pop()


def _check_callable(where: str, **funs: Any) -> None:
    for name, f in funs.items():
        if not callable(f):
            raise TypeError(f"{where}: {name} must be callable, got {type(f).__name__} {f!r}.")


def _slice_avals(xs_flat: list) -> list:
    """Per-iteration abstract values of the scanned leaves (leading axis removed)."""
    out = []
    for x in xs_flat:
        a = jax.typeof(x)
        out.append(jax.ShapeDtypeStruct(a.shape[1:], a.dtype,
                                        weak_type=getattr(a, "weak_type", False)))
    return out


def _check_pair(where: str, out: Any, exc: type) -> None:
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise exc(f"{where}: the function must return a pair (carry, y), got "
                  f"{type(out).__name__}: {out!r}.")


# --- scan / for_loop -----------------------------------------------------------------------------


def _python_scan(f, init, xs_flat, xs_tree, length, reverse, runner, where):
    # jax.disable_jit(): a plain Python loop over the slices, states written eagerly
    if length == 0:
        raise ValueError(f"zero-length {where} is not supported in disable_jit() mode because "
                         "the output type is unknown.")
    describe = describe_callable(runner)
    carry, ys = init, []
    if runner is not None:
        runner.host_start()
    order = range(length - 1, -1, -1) if reverse else range(length)
    for k, i in enumerate(order):
        x = _tree_unflatten(xs_tree, [jax.lax.index_in_dim(v, i, keepdims=False)
                                      for v in xs_flat])
        carry, y = f(carry, x)
        ys.append(y)
        if runner is not None and ((k + 1) % runner.freq == 0 or k + 1 == length):
            data = describe(k + 1, carry, y) if describe is not None else None
            runner.host_update(k + 1, data)
    if reverse:
        ys.reverse()
    return carry, jax.tree.map(lambda *e: jnp.stack(e), *ys)


def _scan(f: Callable, init: Any, xs: Any, length: Any, reverse: bool, unroll: Any,
          pbar: Any, where: str) -> tuple:
    xs_flat, xs_tree = jax.tree_util.tree_flatten(xs)
    length = _loop_length(where, xs_flat, length)
    runner = as_runner(pbar, length, where)
    if _jax_config.disable_jit.value:
        return _python_scan(f, init, xs_flat, xs_tree, length, reverse, runner, where)

    x_avals = _tree_unflatten(xs_tree, _slice_avals(xs_flat))
    entry = trace_fn(f, (init, x_avals), where)
    out = entry.out_shapes[0]
    _check_pair(where, out, TypeError)
    check_same_types(f"{where}: the carry returned by the function differs from init",
                     init, out[0], "The carry must keep its structure, shapes and dtypes.")
    u = union_of([entry])
    part = u.parts[0]
    vals, w_init = u.gather()
    describe = describe_callable(runner)

    def body(carry, x):
        if runner is not None:
            i, wvals, c = carry
            i = runner.begin(i)  # the clock starts with the first iteration
        else:
            wvals, c = carry
        (c, y), new = part(_tree_leaves((c, x)), u.compose(vals, wvals))
        wvals = u.updated(wvals, new)
        if runner is not None:
            i = i + 1
            runner.step(i, describe(i, c, y) if describe is not None else {})
            return (i, wvals, c), y
        return (wvals, c), y

    init_carry = (w_init, init) if runner is None else (counter_init(), w_init, init)
    carry, ys = jax.lax.scan(body, init_carry, xs, length=length, reverse=reverse,
                             unroll=unroll)
    wvals, c = carry[-2], carry[-1]
    u.write_back(wvals)
    return c, ys


# What type checkers see of the loops (as jax.lax types its own): the carry keeps its type, and
# a slice of ``xs`` or a stacked output is typed as the whole (arrays slice and stack to arrays).
C = TypeVar("C")  # the carry
X = TypeVar("X")  # the scanned-over inputs
Y = TypeVar("Y")  # the per-step outputs


def scan(f: Callable[[C, X], tuple[C, Y]], init: C, xs: X, length: int | None = None,
         reverse: bool = False, unroll: int | bool = 1, pbar: Any = None) -> tuple[C, Y]:
    """Scan ``f(carry, x) -> (carry, y)`` over the leading axis of ``xs``, threading states.

    As ``jax.lax.scan``, with states: the body is traced once; states it writes are carried
    through the loop and hold their final values afterwards, states it only reads are loop
    invariants. Written states must keep their signatures.

    Parameters
    ----------
    f : callable
        ``f(carry, x) -> (carry, y)``.
    init : pytree
        The initial carry.
    xs : pytree of arrays, or None
        Scanned over their leading axis.
    length : int, optional
        The number of iterations (required when ``xs`` has no leaves).
    reverse : bool
        Scan from the end.
    unroll : int or bool
        Iterations unrolled per loop step (as ``jax.lax.scan``).
    pbar : ProgressBar, bool or int, optional
        A progress bar; ``True`` for a default one; an int meaning "report every n
        iterations".

    Returns
    -------
    (carry, ys)
        The final carry and the stacked ``y`` outputs.

    Raises
    ------
    TypeError
        If ``f`` is not callable, ``pbar`` is not a ProgressBar, a bool or an int, ``f`` does not
        return a pair or changes the carry's type.
    ValueError
        If an ``xs`` leaf has no leading axis, the lengths disagree, or nothing gives a length.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> total = brainstate.State(jnp.zeros(()))
    >>> def step(c, x):
    ...     total.value = total.value + x
    ...     return c + 1, total.value
    >>> c, ys = brainstate.transform.scan(step, 0, jnp.arange(4.0))
    >>> int(c), ys.tolist(), float(total.value)
    (4, [0.0, 1.0, 3.0, 6.0], 6.0)
    """
    _check_callable("scan", f=f)
    return _scan(f, init, xs, length, reverse, unroll, pbar, "scan")


def _for_body(f: Callable) -> Callable:
    def body(carry, x):
        return carry, f(*x)

    body.__name__ = getattr(f, "__name__", "for_loop_body")
    return body


def for_loop(f: Callable[..., Y], *xs: Any, length: int | None = None, reverse: bool = False,
             unroll: int | bool = 1, pbar: Any = None) -> Y:
    """Call ``f(*x_i)`` for each slice ``x_i`` of ``xs`` along their leading axis; stack outputs.

    States ``f`` writes are carried through the loop (final values written back once after
    it); states it only reads are loop invariants. See :func:`scan`.

    Parameters
    ----------
    f : callable
        Called with one slice of each of ``xs`` per iteration.
    *xs : pytrees of arrays
        Looped over their leading axis.
    length : int, optional
        The number of iterations (required when no ``xs`` are given).
    reverse, unroll, pbar
        As :func:`scan`.

    Returns
    -------
    pytree
        ``f``'s outputs stacked along a new leading axis.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> v = brainstate.HiddenState(jnp.zeros(3))
    >>> def step(i):
    ...     v.value = v.value + i
    ...     return v.value.sum()
    >>> brainstate.transform.for_loop(step, jnp.arange(3.0)).tolist()
    [0.0, 3.0, 9.0]
    """
    _check_callable("for_loop", f=f)
    return _scan(_for_body(f), None, xs, length, reverse, unroll, pbar, "for_loop")[1]


# --- while loops -------------------------------------------------------------------------------


def _trace_while(cond_fun: Callable, body_fun: Callable, init_val: Any, where: str) -> StateUnion:
    cond_entry = trace_fn(cond_fun, (init_val,), f"{where}:cond")
    if cond_entry.write_states:
        names = ", ".join(describe_state(st) for st in cond_entry.write_states)
        raise ValueError(f"while_loop: cond_fun should not have any write states. It wrote "
                         f"{names}; move the write into body_fun.")
    body_entry = trace_fn(body_fun, (init_val,), f"{where}:body")
    check_same_types(f"{where}: body_fun's output differs from init_val", init_val,
                     body_entry.out_shapes[0],
                     "The loop value must keep its structure, shapes and dtypes.")
    return union_of([cond_entry, body_entry])


def while_loop(cond_fun: Callable[[C], Any], body_fun: Callable[[C], C], init_val: C) -> C:
    """Run ``val = body_fun(val)`` while ``cond_fun(val)`` is true, threading states.

    States ``body_fun`` writes are carried (and visible to ``cond_fun``); states either
    function only reads are loop invariants. ``cond_fun`` must not write states.

    Parameters
    ----------
    cond_fun : callable
        ``cond_fun(val) -> bool scalar``.
    body_fun : callable
        ``body_fun(val) -> val`` (same structure, shapes and dtypes).
    init_val : pytree
        The initial value.

    Returns
    -------
    pytree
        The final value.

    Raises
    ------
    TypeError
        If either function is not callable.
    ValueError
        If ``cond_fun`` writes a state.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> n = brainstate.State(jnp.zeros((), jnp.int32))
    >>> def body(x):
    ...     n.value = n.value + 1
    ...     return x * 2.0
    >>> float(brainstate.transform.while_loop(lambda x: x < 100.0, body, 1.0)), int(n.value)
    (128.0, 7)
    """
    _check_callable("while_loop", cond_fun=cond_fun, body_fun=body_fun)
    if _jax_config.disable_jit.value:
        stack = StateTraceStack(name="while_loop")
        try:
            with stack:
                val = init_val
                while cond_fun(val):
                    val = body_fun(val)
            return val
        except jax.errors.ConcretizationTypeError:
            # Not runnable in Python (e.g. under vmap): undo what ran, use the primitive.
            _rollback(stack)

    u = _trace_while(cond_fun, body_fun, init_val, "while_loop")
    cond_part, body_part = u.parts
    vals, w_init = u.gather()

    def cond(carry):
        wvals, v = carry
        return cond_part(_tree_leaves(v), u.compose(vals, wvals))[0]

    def body(carry):
        wvals, v = carry
        v, new = body_part(_tree_leaves(v), u.compose(vals, wvals))
        return u.updated(wvals, new), v

    wvals, val = jax.lax.while_loop(cond, body, (w_init, init_val))
    u.write_back(wvals)
    return val


def _check_base(where: str, base: Any) -> int:
    if isinstance(base, bool) or not isinstance(base, (int, np.integer)) or base < 2:
        raise ValueError(f"{where}: base must be an int >= 2, got {base!r}.")
    return int(base)


def _rounded_steps(max_steps: int, base: int) -> int:
    """The smallest power of ``base`` that is >= ``max_steps``."""
    steps = 1
    while steps < max_steps:
        steps *= base
    return steps


def _select(pred: Any, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda n, o: jnp.where(pred, n, o), new, old)


def _bounded_loop(cond: Callable, body: Callable, val: Any, steps: int, base: int,
                  per_lane: bool) -> Any:
    """At most ``steps`` (a power of ``base``) iterations as nested scans of ``lax.cond`` calls.

    Reverse-mode differentiable (scans, not a while loop); ``jax.checkpoint`` on the upper
    levels makes the backward pass cost the steps actually taken. Under ``vmap`` the branch
    predicate is OR-reduced over lanes (a ``cond`` stays a ``cond``) and, with ``per_lane``,
    each lane keeps its own value once its condition is false.
    """
    if steps == 1:
        if not per_lane:
            return body(val)
        return _select(cond(val), body(val), val)

    def step(v, _):
        inner = lambda w: _bounded_loop(cond, body, w, steps // base, base, per_lane)  # noqa: E731
        return jax.lax.cond(unvmap_any(cond(v)), inner, lambda w: w, v), None

    if steps != base:
        step = jax.checkpoint(step, prevent_cse=False)
    return jax.lax.scan(step, val, None, length=base)[0]


def bounded_while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any, *,
                       max_steps: int, base: int = 16) -> Any:
    """A ``while_loop`` of at most ``max_steps`` iterations that is reverse-mode differentiable.

    Built from nested ``scan`` loops of ``cond`` calls (``base`` iterations per level), so gradients
    flow through it; under ``vmap`` each lane stops on its own condition. States are threaded
    as in :func:`while_loop`.

    Parameters
    ----------
    cond_fun, body_fun, init_val
        As :func:`while_loop`.
    max_steps : int
        The most iterations run (``0`` returns ``init_val`` as arrays).
    base : int
        Iterations per nesting level (>= 2): larger compiles faster, runs slightly slower.

    Raises
    ------
    ValueError
        If ``max_steps`` is not a non-negative int, ``base`` not an int >= 2, or ``cond_fun``
        writes a state.

    Examples
    --------
    >>> import brainstate
    >>> int(brainstate.transform.bounded_while_loop(lambda x: x < 100, lambda x: x * 2, 1,
    ...                                             max_steps=5))
    32
    """
    _check_callable("bounded_while_loop", cond_fun=cond_fun, body_fun=body_fun)
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) \
            or max_steps < 0:
        raise ValueError(f"bounded_while_loop: max_steps must be a non-negative int, got "
                         f"{max_steps!r}.")
    base = _check_base("bounded_while_loop", base)
    init_val = jax.tree.map(jnp.asarray, init_val)
    if max_steps == 0:
        return init_val
    u = _trace_while(cond_fun, body_fun, init_val, "bounded_while_loop")
    cond_part, body_part = u.parts
    vals, w_init = u.gather()
    max_steps = int(max_steps)

    def cond(carry):
        n, wvals, v = carry
        ok = cond_part(_tree_leaves(v), u.compose(vals, wvals))[0]
        return jnp.logical_and(ok, n < max_steps)

    def body(carry):
        n, wvals, v = carry
        v, new = body_part(_tree_leaves(v), u.compose(vals, wvals))
        return n + 1, u.updated(wvals, new), v

    carry = (jnp.zeros((), jnp.int32), w_init, init_val)
    _, wvals, val = _bounded_loop(cond, body, carry, _rounded_steps(max_steps, base), base,
                                  per_lane=True)
    u.write_back(wvals)
    return val


# --- checkpointed scan / for_loop -----------------------------------------------------------


def _checkpointed_scan(f: Callable, init: Any, xs: Any, length: Any, base: Any, pbar: Any,
                       where: str) -> tuple:
    xs_flat, xs_tree = jax.tree_util.tree_flatten(xs)
    length = _loop_length(where, xs_flat, length)
    if length < 1:
        raise ValueError(f"{where}: length must be >= 1, got {length}.")
    base = _check_base(where, base)
    runner = as_runner(pbar, length, where)
    x_avals = _tree_unflatten(xs_tree, _slice_avals(xs_flat))
    entry = trace_fn(f, (init, x_avals), where)
    out = entry.out_shapes[0]
    _check_pair(where, out, ValueError)
    check_same_types(f"{where}: the carry returned by the function differs from init",
                     init, out[0], "The carry must keep its structure, shapes and dtypes.")
    u = union_of([entry])
    part = u.parts[0]
    vals, w_init = u.gather()
    describe = describe_callable(runner)
    ys0 = jax.tree.map(lambda s: jnp.zeros((length,) + tuple(s.shape), s.dtype), out[1])

    def cond(carry):
        return carry[0] < length

    def body(carry):
        i, wvals, c, ys = carry
        if runner is not None:
            i = runner.begin(i)  # the clock starts with the first iteration
        x = _tree_unflatten(xs_tree, [jax.lax.dynamic_index_in_dim(v, i, keepdims=False)
                                      for v in xs_flat])
        (c, y), new = part(_tree_leaves((c, x)), u.compose(vals, wvals))
        ys = jax.tree.map(lambda buf, v: jax.lax.dynamic_update_index_in_dim(buf, v, i, 0),
                          ys, y)
        if runner is not None:
            runner.step(i + 1, describe(i + 1, c, y) if describe is not None else {})
        return i + 1, u.updated(wvals, new), c, ys

    carry = (jnp.zeros((), jnp.int32), w_init, init, ys0)
    _, wvals, c, ys = _bounded_loop(cond, body, carry, _rounded_steps(length, base), base,
                                    per_lane=False)
    u.write_back(wvals)
    return c, ys


def checkpointed_scan(f: Callable, init: Any, xs: Any, length: int | None = None,
                      base: int = 16, pbar: Any = None) -> tuple:
    """:func:`scan` with memory-efficient reverse-mode differentiation (nested checkpoints).

    Parameters
    ----------
    f, init, xs, length, pbar
        As :func:`scan` (``length`` >= 1; ``f`` must return a pair ``(carry, y)``).
    base : int
        Iterations per checkpoint level (an int >= 2).

    Raises
    ------
    ValueError
        If the length is < 1, ``base`` is not an int >= 2 or ``f`` does not return a pair.
    """
    _check_callable("checkpointed_scan", f=f)
    return _checkpointed_scan(f, init, xs, length, base, pbar, "checkpointed_scan")


def checkpointed_for_loop(f: Callable, *xs: Any, length: int | None = None, base: int = 16,
                          pbar: Any = None) -> Any:
    """:func:`for_loop` with memory-efficient reverse-mode differentiation; see
    :func:`checkpointed_scan`."""
    _check_callable("checkpointed_for_loop", f=f)
    return _checkpointed_scan(_for_body(f), None, xs, length, base, pbar,
                              "checkpointed_for_loop")[1]
