"""Jacobians and Hessians of stateful functions: ``jacrev``, ``jacfwd``, ``jacobian``, ``hessian``.

They share the engine of :class:`~brainstate.transform.GradientTransform` (``_grad.py``): the
function is traced once per call signature into a pure function of the grad state values and
the differentiated arguments, and ``jax.jacrev`` / ``jax.jacfwd`` / ``jax.hessian`` is applied
to it. Derivatives nest the output structure outside the input structure, as in JAX.
"""

from __future__ import annotations

from typing import Any, Callable

from brainstate.transform._grad import GradientTransform, _make, _unit_aware

__all__ = ["jacrev", "jacfwd", "jacobian", "hessian"]

_LAYOUT = """
    Returns
    -------
    GradientTransform
        Called like ``fun``, it returns the derivatives: w.r.t. ``grad_states`` only
        (``grad_states`` given, ``argnums`` None), w.r.t. ``argnums`` only (no ``grad_states``;
        ``argnums`` defaults to 0), or ``(state_derivs, arg_derivs)`` when both are given.
        ``arg_derivs`` is a tuple for a sequence ``argnums``. With ``return_value=True`` the
        function's output follows, then ``aux`` with ``has_aux=True``.
"""


def jacrev(fun: Callable, grad_states: Any = None, argnums: Any = None, has_aux: Any = None,
           return_value: bool = False, holomorphic: bool = False, allow_int: bool = False,
           unit_aware: bool = False, check_states: bool = True,
           **kwargs: Any) -> GradientTransform:
    """Jacobian of a stateful function by reverse mode (one backward pass per output element).

    Parameters
    ----------
    fun : callable
        The function. With ``has_aux`` it returns ``(output, aux)``.
    grad_states : State, or a sequence or mapping (nested) of States, optional
        The states to differentiate; their blocks come back in the same container shape.
    argnums : int or sequence of int, optional
        Positional arguments to differentiate (default 0 when no ``grad_states``).
    has_aux : bool, optional
        ``fun`` returns ``(output, aux)``; ``aux`` is returned, not differentiated.
    return_value : bool
        Also return the output.
    holomorphic, allow_int : bool
        As ``jax.jacrev``.
    unit_aware : bool
        Differentiate with brainunit (an optional package), so derivatives carry units.
    check_states : bool
        Refuse a grad state ``fun`` never uses (``ValueError``); False gives it zeros.
    **kwargs
        ``debug_nan=True`` raises ``FloatingPointError`` on a NaN/Inf derivative.
    {layout}
    Notes
    -----
    For a pytree output the blocks nest the output structure outside the input structure, as
    ``jax.jacrev``; ``(state_derivs, arg_derivs)`` pairs sit at the input level. Differs from
    upstream: pytree outputs together with ``grad_states`` are supported.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> w = brainstate.ParamState(jnp.array([1.0, 2.0]))
    >>> jac = brainstate.transform.jacrev(lambda x: w.value * x, grad_states=w, argnums=0)
    >>> dw, dx = jac(jnp.array([3.0, 4.0]))
    >>> dw
    Array([[3., 0.],
           [0., 4.]], dtype=float32)
    >>> dx
    Array([[1., 0.],
           [0., 2.]], dtype=float32)
    """
    transform = _unit_aware("jacrev") if unit_aware else "jacrev"
    return _make(fun, "jacrev", transform, grad_states, argnums, return_value, has_aux,
                 dict(holomorphic=holomorphic, allow_int=allow_int), check_states, kwargs)


jacobian = jacrev


def jacfwd(func: Callable, grad_states: Any = None, argnums: Any = None, has_aux: Any = None,
           return_value: bool = False, holomorphic: bool = False, unit_aware: bool = False,
           check_states: bool = True, **kwargs: Any) -> GradientTransform:
    """Jacobian of a stateful function by forward mode (one forward pass per input element).

    Cheaper than :func:`jacrev` when the inputs are fewer than the outputs. The parameters and
    the layout are those of :func:`jacrev` (``allow_int`` aside).
    {layout}
    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> w = brainstate.ParamState(jnp.array([1.0, 2.0]))
    >>> jac = brainstate.transform.jacfwd(lambda: w.value ** 3, grad_states=w)
    >>> jac()
    Array([[ 3.,  0.],
           [ 0., 12.]], dtype=float32)
    """
    transform = _unit_aware("jacfwd") if unit_aware else "jacfwd"
    return _make(func, "jacfwd", transform, grad_states, argnums, return_value, has_aux,
                 dict(holomorphic=holomorphic), check_states, kwargs)


def hessian(func: Callable, grad_states: Any = None, argnums: Any = None,
            return_value: bool = False, holomorphic: bool = False, has_aux: Any = None,
            unit_aware: bool = False, check_states: bool = True,
            **kwargs: Any) -> GradientTransform:
    """Hessian of a scalar stateful function (forward-over-reverse, as ``jax.hessian``).

    Parameters are those of :func:`jacrev` (``allow_int`` aside).

    Returns
    -------
    GradientTransform
        Called like ``func``, it returns the second derivatives with the input structure
        nested twice: for ``grad_states=[a, b]``, ``H[i][j]`` is the block of ``d2f / (d state_i
        d state_j)``; for a mapping, ``H[k1][k2]``; for a single state or ``argnums=0``, one
        block. With both ``grad_states`` and ``argnums`` it is ``jax.hessian(g, argnums=(0,
        1))(state_values, args)`` of ``g(state_values, args)``: a pair of rows ``(H_s, H_a)``;
        ``H_s`` has the container shape of ``grad_states`` and holds, for each state, the pair
        (its blocks w.r.t. the states, w.r.t. the arguments); ``H_a`` likewise for the
        argument (a tuple over the arguments for a sequence ``argnums``). With
        ``return_value=True`` the output follows, then ``aux`` with ``has_aux=True``.

    Notes
    -----
    Differs from upstream: ``grad_states`` together with ``argnums`` is supported (upstream
    raises ``NotImplementedError``).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> a = brainstate.ParamState(jnp.array(1.0))
    >>> b = brainstate.ParamState(jnp.array(2.0))
    >>> h = brainstate.transform.hessian(lambda: a.value ** 2 * b.value, grad_states=[a, b])
    >>> [[float(block) for block in row] for row in h()]
    [[4.0, 2.0], [2.0, 0.0]]
    """
    transform = _unit_aware("hessian") if unit_aware else "hessian"
    return _make(func, "hessian", transform, grad_states, argnums, return_value, has_aux,
                 dict(holomorphic=holomorphic), check_states, kwargs)


for _fn in (jacrev, jacfwd):
    if _fn.__doc__ is not None:  # None under ``python -OO``
        _fn.__doc__ = _fn.__doc__.replace("{layout}", "\n    " + _LAYOUT.strip() + "\n")
del _fn
