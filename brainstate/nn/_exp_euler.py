"""``exp_euler_step``: one exponential-Euler step of an ODE (or SDE) over ``environ.get_dt()``.

The drift ``f`` is linearised at the current value ``x`` by one forward-mode derivative
(``jax.jvp`` with a tangent of ones): ``f(x)`` and the slope ``J`` come out of the same pass.
For an element-wise drift ``J`` is the exact diagonal Jacobian, so a linear ODE
``dx/dt = a x + b`` is integrated exactly. Units (brainunit, optional) are handled on the side:
the arithmetic runs on plain mantissas, and units only decide scale factors and raise errors.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from brainstate import environ
from brainstate._units import loaded as _loaded, split as _split

__all__ = ["exp_euler_step"]

# |z| below this uses the Taylor series of exprel (expm1(z)/z loses digits there).
_EXPREL_SERIES = 1e-3






def _exprel(z: jax.Array) -> jax.Array:
    """``(exp(z) - 1) / z`` with its limit 1 at 0, accurate for small ``|z|``."""
    small = jnp.abs(z) < _EXPREL_SERIES
    safe = jnp.where(small, jnp.ones_like(z), z)
    series = 1 + z / 2 + z * z / 6
    return jnp.where(small, series, jnp.expm1(safe) / safe)


def _unit_scale(bu: Any, num: Any, target: Any, what: str) -> float:
    """The factor turning a value in unit ``num`` into unit ``target`` (dimension checked)."""
    if bu is None or (num is None and target is None):
        return 1.0
    num = bu.UNITLESS if num is None else num
    target = bu.UNITLESS if target is None else target
    if num.dim != target.dim:
        raise ValueError(what.format(got=num, want=target))
    return float(bu.Quantity(1.0, unit=num).to_decimal(target))


def _check_state(x: Any) -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(
            f"exp_euler_step needs a floating state (float16, bfloat16, float32 or float64), "
            f"but the state has dtype {x.dtype}. Pass a float array, e.g. x.astype(float)."
        )
    return x


def _get_dt() -> Any:
    try:
        return environ.get_dt()
    except KeyError as exc:
        exc.add_note(
            "exp_euler_step integrates over one step of the environment's dt; run it inside "
            "`with brainstate.environ.context(dt=...):` or after brainstate.environ.set(dt=...)."
        )
        raise


def _drift_and_slope(fn: Callable, x_m: jax.Array, x_unit: Any, bu: Any, rest: tuple,
                     kwargs: dict) -> tuple[jax.Array, jax.Array, Any]:
    """``(f(x) mantissa, df/dx row sums mantissa, unit of f)``, from one ``jax.jvp``."""
    out_unit: list = [None]

    def f(xm: jax.Array) -> jax.Array:
        xq = xm if x_unit is None else bu.Quantity(xm, unit=x_unit)
        out_m, out_unit[0] = _split(fn(xq, *rest, **kwargs))
        return jnp.asarray(out_m, dtype=xm.dtype)

    drift, slope = jax.jvp(f, (x_m,), (jnp.ones_like(x_m),))
    return drift, slope, out_unit[0]


def _noise_term(diffusion: Callable, x: Any, x_m: jax.Array, x_unit: Any, dt_m: jax.Array,
                dt_unit: Any, bu: Any, rest: tuple, kwargs: dict) -> jax.Array:
    """``g(x) sqrt(dt) N(0, 1)`` as a mantissa in the state's unit."""
    from brainstate import random

    g_m, g_unit = _split(diffusion(x, *rest, **kwargs))
    sqrt_dt_unit = None if dt_unit is None else dt_unit ** 0.5
    prod = None if bu is None else _mul_units(bu, g_unit, sqrt_dt_unit)
    scale = _unit_scale(
        bu, prod, x_unit,
        "Unit mismatch between drift and diffusion terms of exp_euler_step: the diffusion "
        "times sqrt(dt) has unit {got}, but the state has unit {want}. Make the diffusion "
        "return the state's unit divided by sqrt(dt's unit).",
    )
    noise = random.randn_like(x_m)
    return jnp.asarray(g_m, dtype=x_m.dtype) * jnp.sqrt(dt_m) * noise * scale


def _mul_units(bu: Any, a: Any, b: Any) -> Any:
    if a is None and b is None:
        return None
    return (bu.UNITLESS if a is None else a) * (bu.UNITLESS if b is None else b)


def exp_euler_step(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    r"""Advance ``x`` by one exponential-Euler step of ``dx/dt = fn(x, *args, **kwargs)``.

    With ``dt = environ.get_dt()``, ``J`` the derivative of ``fn`` in ``x`` (element-wise) and
    :math:`\varphi(z) = (e^z - 1)/z`:

    .. math:: x_{n+1} = x_n + dt\,\varphi(dt\,J)\,f(x_n)

    which is exact for linear element-wise drifts (e.g. ``dv/dt = (-v + I)/tau``). Given a
    diffusion function too, ``exp_euler_step(f, g, x, ...)`` adds
    :math:`g(x_n)\sqrt{dt}\,\xi` with :math:`\xi \sim N(0, 1)` from ``brainstate.random``.

    Parameters
    ----------
    fn : callable
        The drift ``fn(x, *args, **kwargs)``; returns ``dx/dt`` (shape of ``x`` or
        broadcastable from it).
    *args
        ``x`` (the state value), then the drift's other arguments; or a diffusion function
        first, then ``x`` and the rest.
    **kwargs
        Passed to the drift (and the diffusion).

    Returns
    -------
    array or Quantity
        The next value, with ``x``'s dtype and unit.

    Raises
    ------
    TypeError
        ``fn`` is not callable, or no state value is given.
    ValueError
        The state is not floating-point, or the units do not fit (the drift must return
        ``x``'s unit per ``dt``'s unit; the diffusion ``x``'s unit per square root of it).
    KeyError
        No ``dt`` is set in :mod:`brainstate.environ`.

    Notes
    -----
    Differs from upstream: the slope is a forward-mode derivative (row sums of the Jacobian)
    where upstream takes a reverse-mode one (column sums); both are the diagonal for the
    element-wise drifts the method is meant for, and the forward one also handles a drift
    whose output broadcasts ``x`` to a larger shape. A bad ``fn`` or missing state raises
    ``TypeError`` (upstream: ``AssertionError``). The result keeps ``x``'s dtype: the drift's
    value is cast to it, and ``dt`` too (exact for float32/float64 states).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> with brainstate.environ.context(dt=0.1):
    ...     v = brainstate.nn.exp_euler_step(lambda v, tau: -v / tau, jnp.ones(2), 1.0)
    >>> bool(jnp.allclose(v, jnp.exp(-0.1)))
    True
    """
    if not callable(fn):
        raise TypeError(f"exp_euler_step needs a callable drift as first argument, got "
                        f"{type(fn).__name__}: {fn!r}.")
    diffusion = None
    if args and callable(args[0]):
        diffusion, args = args[0], args[1:]
    if not args:
        raise TypeError(
            "exp_euler_step needs the state value after the drift"
            + (" and diffusion functions" if diffusion is not None else "")
            + ": exp_euler_step(f, x, *args) or exp_euler_step(f, g, x, *args)."
        )
    bu = _loaded()
    x, rest = args[0], args[1:]
    x_m, x_unit = _split(x)
    x_m = _check_state(x_m)
    dt_m, dt_unit = _split(_get_dt())
    dt_m = jnp.asarray(dt_m, dtype=x_m.dtype)

    drift, slope, drift_unit = _drift_and_slope(fn, x_m, x_unit, bu, rest, kwargs)
    scale = _unit_scale(
        bu, None if bu is None else _mul_units(bu, dt_unit, drift_unit), x_unit,
        "The drift of exp_euler_step times dt has unit {got}, but the state has unit {want}. "
        "Make the drift return the state's unit per dt's unit (e.g. mV/ms for V in mV, dt in "
        "ms).",
    )
    # dt * J is dimensionless exactly when dt * f has the state's unit: same scale factor.
    phi = _exprel(dt_m * slope * scale)
    x_next = x_m + dt_m * phi * drift * scale
    if diffusion is not None:
        x_next = x_next + _noise_term(diffusion, x, x_m, x_unit, dt_m, dt_unit, bu, rest, kwargs)
    return x_next if x_unit is None else bu.Quantity(x_next, unit=x_unit)


exp_euler_step.__module__ = "brainstate.nn"
