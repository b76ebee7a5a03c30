"""Vector-Jacobian and Jacobian-vector products of stateful functions: ``vjp``, ``jvp``.

Both trace the function once for the given primals and evaluate it as a pure function of the
grad state values and the differentiated arguments (the engine of ``_grad.py``), then apply
``jax.vjp`` / ``jax.jvp``. States the function writes are written back once, when the primal
output is computed; states it only reads are constants.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax

from brainstate._impl import core as _core
from brainstate.transform._grad import _flatten_grad_states, _pure_function
from brainstate.transform._make_jaxpr import StatefulFunction

__all__ = ["vjp", "jvp"]


def _vjp_argnums(argnums: Any, nargs: int) -> tuple[tuple, bool]:
    """``(argnums, single)`` normalised against ``nargs`` (negatives count from the end)."""
    if argnums is None or (nargs == 0 and argnums == 0):  # 0 is the default: nothing to pick
        return (), False
    if nargs == 0:
        raise ValueError(f"vjp: argnums={argnums!r} selects positional arguments, but none were "
                         "given; pass the primals, or leave argnums at its default with only "
                         "grad_states.")
    single = not isinstance(argnums, (tuple, list))
    nums = (argnums,) if single else tuple(argnums)
    for n in nums:
        if isinstance(n, bool) or not isinstance(n, int):
            raise ValueError(f"vjp: argnums must be an int or a sequence of ints, got "
                             f"{argnums!r}.")
        if not -nargs <= n < nargs:
            raise ValueError(f"vjp: argnums {n} is out of range for a call with {nargs} "
                             "positional arguments.")
    nums = tuple(n % nargs for n in nums)
    if len(set(nums)) != len(nums):
        raise ValueError(f"vjp: argnums {argnums!r} names an argument twice (an index and its "
                         "negative alias count as the same); list each argument once.")
    return nums, single


def vjp(fun: Callable, *primals: Any, grad_states: Any = None, argnums: Any = 0,
        has_aux: bool = False) -> tuple:
    """Evaluate a stateful function and return its pullback (reverse mode).

    Parameters
    ----------
    fun : callable
        The function; it may read and write states. With ``has_aux`` it returns
        ``(output, aux)``.
    *primals
        The positional arguments to evaluate ``fun`` at (none is fine when only states are
        differentiated).
    grad_states : State, or a sequence or mapping (nested) of States, optional
        States to compute cotangents for (in the same container shape).
    argnums : int, sequence of int, or None
        The positional arguments to compute cotangents for (default 0; negative indices count
        from the end). None, or no ``primals``, differentiates the states only.
    has_aux : bool
        ``fun`` returns ``(output, aux)``; ``aux`` is returned, not differentiated.

    Returns
    -------
    tuple
        ``(output, vjp_fn)``, or ``(output, vjp_fn, aux)`` with ``has_aux``. ``vjp_fn(ct)``
        takes a cotangent shaped like ``output`` and returns the argument cotangents (one array
        for an int ``argnums``, a tuple for a sequence), the state cotangents (when only states
        are differentiated), or ``(state_cts, arg_cts)`` when both are.

    Raises
    ------
    ValueError
        When there is nothing to differentiate, ``argnums`` is out of range or repeats an
        argument, or a grad state is never used by ``fun``.
    TypeError
        When a ``grad_states`` entry is not a State, or ``has_aux`` is set and ``fun`` does not
        return a pair.

    Notes
    -----
    ``fun`` runs (and its state writes happen) once, when ``vjp`` is called; ``vjp_fn`` can be
    called any number of times. Cotangents w.r.t. a state are taken at the value the state held
    on entry.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> w = brainstate.ParamState(jnp.array([2.0, 3.0]))
    >>> out, vjp_fn = brainstate.transform.vjp(lambda x: w.value * x, jnp.array([5.0, 7.0]),
    ...                                        grad_states=w)
    >>> dw, dx = vjp_fn(jnp.array([1.0, 1.0]))
    >>> dw, dx
    (Array([5., 7.], dtype=float32), Array([2., 3.], dtype=float32))
    """
    states, tree = _flatten_grad_states(grad_states, "vjp")
    nums, single = _vjp_argnums(argnums, len(primals))
    if not nums and not states:
        raise ValueError(
            "vjp has nothing to differentiate: pass positional arguments (selected by "
            "argnums) and/or grad_states."
        )
    sf = StatefulFunction(fun, name="vjp")
    p = _pure_function(sf, primals, {}, states, tree, nums, has_aux, True, "vjp")
    out, pull, (_, aux, written) = jax.vjp(p.fun, *p.primals, has_aux=True)
    _core.scatter(p.entry.write_states, written)

    def vjp_fn(cotangent: Any) -> Any:
        cts = pull(cotangent)
        if states:
            state_cts, cts = cts[0], cts[1:]
            if not nums:
                return state_cts
            return state_cts, (cts[0] if single else tuple(cts))
        return cts[0] if single else tuple(cts)

    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def jvp(fun: Callable, primals: Sequence, tangents: Sequence, *, has_aux: bool = False,
        grad_states: Any = None, state_tangents: Any = None) -> tuple:
    """Evaluate a stateful function and its derivative along a direction (forward mode).

    Parameters
    ----------
    fun : callable
        The function; it may read and write states. With ``has_aux`` it returns
        ``(output, aux)``.
    primals : tuple or list
        The positional arguments to evaluate ``fun`` at.
    tangents : tuple or list
        One tangent per primal, each shaped like it.
    has_aux : bool
        ``fun`` returns ``(output, aux)``; ``aux`` is returned, not differentiated.
    grad_states : State, or a sequence or mapping (nested) of States, optional
        States that also move along the direction; without them states are constants.
    state_tangents : optional
        The tangents of ``grad_states``, in the same container shape (required with them).

    Returns
    -------
    tuple
        ``(output, tangent_out)``, or ``(output, tangent_out, aux)`` with ``has_aux``.

    Raises
    ------
    TypeError
        When ``primals`` or ``tangents`` is not a tuple or list.
    ValueError
        When ``tangents`` and ``primals`` differ in length, ``state_tangents`` is missing or
        does not match ``grad_states``, or a grad state is never used by ``fun``.

    Notes
    -----
    Differs from upstream: ``grad_states`` / ``state_tangents`` (directional derivatives along
    states) are an addition; upstream holds every state constant.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> w = brainstate.ParamState(jnp.array([2.0, 3.0]))
    >>> f = lambda x: jnp.sum(w.value * x)
    >>> brainstate.transform.jvp(f, (jnp.array([5.0, 7.0]),), (jnp.array([1.0, 0.0]),))
    (Array(31., dtype=float32), Array(2., dtype=float32))
    >>> out, t = brainstate.transform.jvp(f, (jnp.array([5.0, 7.0]),), (jnp.zeros(2),),
    ...                                   grad_states=w, state_tangents=jnp.array([0.0, 1.0]))
    >>> t
    Array(7., dtype=float32)
    """
    if not isinstance(primals, (tuple, list)):
        raise TypeError(f"jvp: primals must be a tuple or list of the positional arguments, "
                        f"got {type(primals).__name__}. Example: jvp(f, (x,), (v,)).")
    if not isinstance(tangents, (tuple, list)):
        raise TypeError(f"jvp: tangents must be a tuple or list matching primals, got "
                        f"{type(tangents).__name__}. Example: jvp(f, (x,), (v,)).")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents; give one "
                         "tangent per primal.")
    states, tree = _flatten_grad_states(grad_states, "jvp")
    tans = tuple(tangents)
    if states:
        tans = (_state_tangents(tree, state_tangents),) + tans
    elif state_tangents is not None:
        raise ValueError("jvp: state_tangents were given without grad_states; pass the states "
                         "they belong to as grad_states.")
    primals = tuple(primals)
    sf = StatefulFunction(fun, name="jvp")
    p = _pure_function(sf, primals, {}, states, tree, tuple(range(len(primals))), has_aux,
                       True, "jvp")
    out, t_out, (_, aux, written) = jax.jvp(p.fun, p.primals, tans, has_aux=True)
    _core.scatter(p.entry.write_states, written)
    return (out, t_out, aux) if has_aux else (out, t_out)


def _state_tangents(tree: Any, state_tangents: Any) -> Any:
    """``state_tangents`` in the container shape of ``grad_states`` (checked)."""
    if state_tangents is None:
        raise ValueError("jvp: grad_states were given without state_tangents; pass one "
                         "tangent per state, in the container shape of grad_states.")
    try:
        leaves = tree.flatten_up_to(state_tangents)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"jvp: state_tangents must have the container shape of grad_states "
                         f"({tree}); {exc}") from None
    return jax.tree_util.tree_unflatten(tree, leaves)
