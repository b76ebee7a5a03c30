"""How the activation functions take their inputs: optional brainunit quantities, float dtypes
and axis checks (shared by ``brainstate/nn/_activations.py`` and ``_activations_axis.py``)."""

from __future__ import annotations

import operator
from typing import Any

import jax
import jax.numpy as jnp

from brainstate import environ
from brainstate._units import brainunit as _brainunit, is_quantity as _is_quantity
from brainstate._units import loaded as _loaded


def _as_float(x: Any) -> jax.Array:
    """``x`` as a jax array of a floating (or complex) dtype; ints and bools become ``dftype()``."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(environ.dftype())
    return x


def _unitless(x: Any, fn: str) -> jax.Array:
    """The plain float value of ``x``; a quantity must be dimensionless."""
    if _is_quantity(x):
        if not x.dim.is_dimensionless:
            raise TypeError(
                f"{fn} needs a dimensionless input, but x has unit {x.unit}. Divide x by a "
                f"reference value of the same dimension first (e.g. x / (1 * {x.unit}))."
            )
        x = x.to_decimal()
    return _as_float(x)


def _join(value: Any, unit: Any) -> Any:
    """Re-attach ``unit`` (when not ``None``) to a result computed on the mantissa."""
    if unit is None:
        return value
    return _brainunit().Quantity(value, unit=unit)


def _in_unit(value: Any, unit: Any, name: str, fn: str) -> Any:
    """A threshold-like argument as a plain number in ``x``'s unit (``unit``; ``None``: none)."""
    bu = _loaded()
    if unit is None:
        if bu is not None and isinstance(value, bu.Quantity):
            if not value.dim.is_dimensionless:
                raise bu.UnitMismatchError(
                    f"{fn}: x is a plain array, but {name} has unit {value.unit}. Give {name} "
                    f"as a plain number, or x as a Quantity of {name}'s dimension."
                )
            return value.to_decimal()
        return value
    q = value if isinstance(value, bu.Quantity) else bu.Quantity(value)
    if q.dim != unit.dim:
        hint = f"e.g. {name}={value!r} * {unit}" if not isinstance(value, bu.Quantity) else \
            f"a Quantity of dimension {unit.dim}"
        raise bu.UnitMismatchError(
            f"{fn}: x has unit {unit}, so {name} must have the same dimension; got "
            f"{name}={value!r}. Give {name} in a compatible unit ({hint})."
        )
    return q.to_decimal(unit)


def _cast(param: Any, x: jax.Array) -> jax.Array:
    """A numeric parameter as an array of ``x``'s dtype (strict promotion mixes no dtypes)."""
    return jnp.asarray(param, dtype=x.dtype)


def _concrete(value: Any) -> float | None:
    """``float(value)`` for a concrete scalar, ``None`` for arrays and traced values."""
    try:
        return float(value)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        return None


def _norm_axes(axis: Any, ndim: int, fn: str, what: str) -> tuple[int, ...]:
    """Validate ``axis`` (an int or a sequence of ints) against ``ndim``; non-negative axes."""
    axes = (axis,) if not isinstance(axis, (tuple, list)) else tuple(axis)
    out = []
    for a in axes:
        if isinstance(a, bool):
            raise TypeError(f"{fn}: axis must be an int or a tuple of ints, got {axis!r}.")
        try:
            a = operator.index(a)
        except TypeError:
            raise TypeError(
                f"{fn}: axis must be an int or a tuple of ints, got {axis!r} "
                f"({type(axis).__name__})."
            ) from None
        if not -ndim <= a < ndim:
            raise ValueError(
                f"{fn}: axis {a} is out of range for {what} ({ndim} dimensions); give an axis "
                f"in [{-ndim}, {ndim - 1}]."
            )
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}: axis {axis!r} names the same dimension twice.")
    return tuple(out)


def _check_axis(axis: Any, x: jax.Array, fn: str) -> Any:
    """``axis`` checked against ``x`` (``None`` means all axes and is passed through)."""
    if axis is None:
        return None
    axes = _norm_axes(axis, x.ndim, fn, f"an input of shape {x.shape}")
    return axes if isinstance(axis, (tuple, list)) else axes[0]
