"""Gradients with respect to states and arguments: ``grad``, ``vector_grad``, ``GradientTransform``.

The loss is traced once per call signature (``StatefulFunction``); the jaxpr is then
differentiated as a pure function of the chosen states' values and arguments. States the loss
only reads are threaded through as constants, states it writes are written back after the call.
Wrap in ``jit`` for speed: ``jit(grad(loss, grad_states=params))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.extend.core import jaxpr_as_fun

from brainstate._impl import core as _core
from brainstate._state import State
from brainstate.transform._make_jaxpr import StatefulFunction

__all__ = ["GradientTransform", "grad", "vector_grad"]


class _Missing:
    pass


def _check_argnums(argnums: Any, has_states: bool) -> tuple[tuple, bool]:
    """(argnums as a tuple, whether a single int was given)."""
    if argnums is None:
        return ((), False) if has_states else ((0,), True)
    single = not isinstance(argnums, (tuple, list))
    nums = (argnums,) if single else tuple(argnums)
    for n in nums:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"argnums must be non-negative integers, got {argnums!r}.")
    return nums, single


def _flatten_grad_states(grad_states: Any) -> tuple[list, Any]:
    if grad_states is None:
        return [], None
    if isinstance(grad_states, Mapping) and not isinstance(grad_states, dict):
        grad_states = dict(grad_states)
    leaves, treedef = jax.tree_util.tree_flatten(grad_states)
    for leaf in leaves:
        if not isinstance(leaf, State):
            raise TypeError(
                f"All grad_states must be State instances, got {type(leaf).__name__}."
            )
    return leaves, treedef


class GradientTransform:
    """Differentiate a stateful function w.r.t. chosen states and/or positional arguments.

    Parameters
    ----------
    target : callable
        The function (the loss). With ``has_aux`` it returns ``(loss, aux)``.
    transform : callable
        ``jax.grad``-like (``"grad"``) or ``"vector_grad"``: how cotangents are seeded.
    grad_states : State, sequence or mapping of States, optional
        The states to differentiate; gradients come back in the same container shape.
    argnums : int or sequence of int, optional
        Positional arguments to differentiate (default 0 when no ``grad_states``).
    return_value, has_aux : bool
        Also return the function value / the auxiliary output.
    check_states : bool
        When True a grad state the function never reads raises ``ValueError``; when False its
        gradient is zeros.
    """

    __module__ = "brainstate.transform"

    def __init__(self, target: Callable, transform: str, grad_states: Any = None,
                 argnums: Any = None, return_value: bool = False, has_aux: bool = False,
                 transform_params: dict | None = None, check_states: bool = True,
                 debug_nan: bool = False) -> None:
        if not callable(target):
            raise TypeError(f"grad needs a callable, got {type(target).__name__}.")
        self.target = target
        self._mode = transform
        self._states, self._states_tree = _flatten_grad_states(grad_states)
        self._argnums, self._single_arg = _check_argnums(argnums, bool(self._states))
        self._has_states = grad_states is not None
        self.return_value = return_value
        self.has_aux = bool(has_aux)
        self._params = dict(transform_params or {})
        self.check_states = check_states
        self.debug_nan = debug_nan
        self._sf = StatefulFunction(target, name="grad")

    def __repr__(self) -> str:
        return f"GradientTransform({getattr(self.target, '__name__', self.target)!r})"

    def _state_slots(self, entry: Any) -> list:
        """For each grad state, its index among the traced states (None when never read)."""
        index = {id(st): i for i, st in enumerate(entry.states)}
        slots = []
        for st in self._states:
            i = index.get(id(st))
            if i is None and self.check_states:
                raise ValueError(
                    f"The grad state {st!r} (created at {st._site}) is not used by the "
                    "function being differentiated, so its gradient would be zero. Pass "
                    "check_states=False to get zeros instead."
                )
            slots.append(i)
        return slots

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        sf = self._sf
        key_leaves = sf._key_and_leaves(args, kwargs)
        entry = sf._entry(args, kwargs, key_leaves)
        if self.has_aux:
            out = entry.out_shapes[0]
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise TypeError(
                    "With has_aux=True the function must return a tuple (loss, aux), got "
                    f"{type(out).__name__}."
                )
        for n in self._argnums:
            if n >= len(args):
                raise ValueError(
                    f"argnums contains {n}, but only {len(args)} positional arguments were given."
                )
        slots = self._state_slots(entry)
        current = _core.gather(entry.states)
        fn = jaxpr_as_fun(entry.jaxpr)
        argnums, has_aux, out_treedef = self._argnums, self.has_aux, entry.out_treedef
        widx = entry.write_idx
        grad_vals = [st._value for st in self._states]

        def pure(gvals, diff_args):
            call_args = list(args)
            for n, a in zip(argnums, diff_args):
                call_args[n] = a
            leaves = sf._key_and_leaves(tuple(call_args), kwargs)[1]
            svals = list(current)
            for slot, gv in zip(slots, gvals):
                if slot is not None:
                    svals[slot] = gv
            flat = fn(*leaves, *jax.tree_util.tree_leaves(svals))
            out, new_svals = jax.tree_util.tree_unflatten(out_treedef, flat)
            loss, aux = (out[0], out[1]) if has_aux else (out, None)
            return loss, (loss, aux, [new_svals[i] for i in widx])

        diff_args = tuple(args[n] for n in argnums)
        if self._mode == "vector_grad":
            loss, vjp_fn, (value, aux, written) = jax.vjp(pure, grad_vals, diff_args,
                                                          has_aux=True)
            g_states, g_args = vjp_fn(jax.tree.map(jnp.ones_like, loss))
        else:
            gfun = jax.grad(pure, argnums=(0, 1), has_aux=True, **self._params)
            (g_states, g_args), (value, aux, written) = gfun(grad_vals, diff_args)
        _core.scatter(entry.write_states, written)
        if self.debug_nan:
            _raise_on_nan(g_states, g_args)
        return self._package(g_states, g_args, value, aux)

    def _package(self, g_states: list, g_args: tuple, value: Any, aux: Any) -> Any:
        state_grads = None
        if self._has_states:
            state_grads = jax.tree_util.tree_unflatten(self._states_tree, g_states)
        arg_grads = g_args[0] if self._single_arg else tuple(g_args)
        if self._has_states and self._argnums:
            grads = (state_grads, arg_grads)
        elif self._has_states:
            grads = state_grads
        else:
            grads = arg_grads
        if self.return_value and self.has_aux:
            return grads, value, aux
        if self.return_value:
            return grads, value
        if self.has_aux:
            return grads, aux
        return grads


def _raise_on_nan(*trees: Any) -> None:
    for leaf in jax.tree_util.tree_leaves(trees):
        if jnp.issubdtype(leaf.dtype, jnp.inexact) and not isinstance(leaf, jax.core.Tracer):
            if not bool(jnp.all(jnp.isfinite(leaf))):
                raise FloatingPointError("A gradient contains NaN or Inf (debug_nan=True).")


def grad(fun: Any = _Missing, grad_states: Any = None, argnums: Any = None,
         holomorphic: bool = False, allow_int: bool = False, has_aux: Any = None,
         return_value: bool = False, unit_aware: bool = False, check_states: bool = True,
         **kwargs: Any) -> Any:
    """Gradient of a scalar stateful function w.r.t. ``grad_states`` and/or ``argnums``.

    Returns ``grads`` (``(state_grads, arg_grads)`` when both are asked for), followed by the
    value with ``return_value=True`` and the auxiliary output with ``has_aux=True``. The
    gradient is never applied: differentiated states change only if the function writes them.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> w = brainstate.ParamState(jnp.array([1.0, 2.0]))
    >>> g = brainstate.transform.grad(lambda x: jnp.sum(w.value * x), grad_states=w)
    >>> g(jnp.array([3.0, 4.0]))
    Array([3., 4.], dtype=float32)
    """
    if unit_aware:
        raise NotImplementedError("unit_aware gradients need brainunit, which is not a "
                                  "dependency of this package.")

    def make(f: Callable) -> GradientTransform:
        return GradientTransform(f, "grad", grad_states, argnums, return_value,
                                 bool(has_aux), dict(holomorphic=holomorphic,
                                                     allow_int=allow_int),
                                 check_states, kwargs.get("debug_nan", False))

    return make if fun is _Missing else make(fun)


def vector_grad(func: Any = _Missing, grad_states: Any = None, argnums: Any = None,
                return_value: bool = False, has_aux: Any = None, unit_aware: bool = False,
                check_states: bool = True, **kwargs: Any) -> Any:
    """Like ``grad`` with a cotangent of ones: works for non-scalar outputs."""
    if unit_aware:
        raise NotImplementedError("unit_aware gradients need brainunit, which is not a "
                                  "dependency of this package.")

    def make(f: Callable) -> GradientTransform:
        return GradientTransform(f, "vector_grad", grad_states, argnums, return_value,
                                 bool(has_aux), None, check_states,
                                 kwargs.get("debug_nan", False))

    return make if func is _Missing else make(func)
