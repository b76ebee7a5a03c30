"""Argument handling shared by the draws: ``size`` -> shape, parameters, units, dtypes.

Everything here is on the eager per-draw path, so the common case (no parameters, a tuple
``size``) does no JAX work: the draw must dispatch exactly the ops ``jax.random`` would.

Quantities (``brainunit``) are optional: a ``Quantity`` can only exist once ``brainunit`` has been
imported, so it is looked up in ``sys.modules`` instead of being imported here.
"""

from __future__ import annotations

import operator
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from brainstate import environ

__all__ = [
    "dftype",
    "ditype",
    "as_shape",
    "shape_of",
    "broadcast",
    "param",
    "split_unit",
    "with_unit",
    "no_unit",
    "loc_scale_unit",
    "is_concrete",
]

_quantity_type: Any = None


def dftype() -> Any:
    """The default float dtype, read at draw time (``brainstate.environ``)."""
    return environ.dftype()


def ditype() -> Any:
    """The default int dtype, read at draw time (``brainstate.environ``)."""
    return environ.ditype()


def _dim(d: Any, size: Any) -> int:
    if isinstance(d, (bool, np.bool_)):
        raise TypeError(_size_message(size))
    try:
        d = operator.index(d)
    except TypeError:
        raise TypeError(_size_message(size)) from None
    if d < 0:
        raise ValueError(f"size must not hold negative dimensions, got size={size!r}.")
    return d


def _size_message(size: Any) -> str:
    return (f"size must be None, a non-negative int or a tuple of non-negative ints (the output "
            f"shape, as in numpy.random), got {size!r}.")


def as_shape(size: Any, default: tuple = ()) -> tuple:
    """The output shape of ``size`` (numpy style): None -> ``default``, int -> ``(int,)``."""
    if size is None:
        return default
    if type(size) is tuple:
        for d in size:
            if type(d) is not int or d < 0:  # the rare case pays for the exact check
                return tuple(_dim(d, size) for d in size)
        return size
    if isinstance(size, (list, tuple)):
        return tuple(_dim(d, size) for d in size)
    return (_dim(size, size),)


def shape_of(x: Any) -> tuple:
    """The shape of a parameter (``()`` for None and scalars)."""
    if x is None:
        return ()
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else np.shape(x)


def broadcast(name: str, *params: Any) -> tuple:
    """The broadcast shape of ``params`` (ValueError naming the draw if they do not broadcast)."""
    shapes = [shape_of(p) for p in params]
    try:
        return jnp.broadcast_shapes(*shapes) if shapes else ()
    except ValueError:
        raise ValueError(
            f"{name}: the parameter shapes {shapes} do not broadcast together. Give parameters "
            "whose shapes broadcast (numpy rules)."
        ) from None


def param(x: Any, dtype: Any = None) -> Any:
    """A parameter ready for JAX: sequences become arrays, arrays take ``dtype`` if given.

    Python scalars stay as they are (weakly typed: they take the sample's dtype, which keeps
    strict dtype promotion happy without a conversion op).
    """
    if x is None or isinstance(x, (int, float)):
        return x
    if isinstance(x, (list, tuple)):
        return jnp.asarray(x, dtype=dtype)
    if dtype is not None and getattr(x, "dtype", None) != dtype:
        return jnp.asarray(x, dtype=dtype)
    return x


def _qtype() -> Any:
    global _quantity_type
    if _quantity_type is None:
        # brainunit's Quantity may be its twin package's class: either module provides it
        mod = sys.modules.get("brainunit") or sys.modules.get("saiunit")
        if mod is None:
            return None
        _quantity_type = mod.Quantity
    return _quantity_type


def split_unit(x: Any) -> tuple:
    """``(mantissa, unit)`` of a Quantity; ``(x, None)`` for anything else."""
    q = _qtype()
    if q is not None and isinstance(x, q):
        return x.mantissa, x.unit
    return x, None


def with_unit(x: Any, unit: Any) -> Any:
    """``x`` carrying ``unit`` (unchanged when ``unit`` is None or dimensionless)."""
    if unit is None or unit.is_unitless:
        return x
    return _qtype()(x, unit=unit)


def no_unit(name: str, x: Any) -> Any:
    """The mantissa of a parameter that must be dimensionless (ValueError otherwise)."""
    m, unit = split_unit(x)
    if unit is not None and not unit.is_unitless:
        raise ValueError(
            f"Parameter {name!r} must be dimensionless, got a Quantity in {unit}. Pass a plain "
            f"number or array (e.g. {name}.to_decimal(unit))."
        )
    return m


def in_unit(name: str, x: Any, unit: Any) -> Any:
    """The mantissa of ``x`` expressed in ``unit`` (a plain ``x`` is read as already in it)."""
    m, u = split_unit(x)
    if u is None or unit is None:
        if u is not None and not u.is_unitless:
            raise ValueError(
                f"Parameter {name!r} is a Quantity in {u}, but the other parameters are plain "
                "numbers. Give them all in compatible units, or none."
            )
        return m
    try:
        return x.to_decimal(unit)
    except Exception as exc:  # brainunit's UnitMismatchError is not importable without it
        raise ValueError(
            f"Parameter {name!r} is in {u}, which cannot be converted to {unit}: {exc}"
        ) from None


def loc_scale_unit(loc: Any, scale: Any) -> tuple:
    """``(loc mantissa, scale mantissa, unit)``: the unit comes from ``loc``, else ``scale``.

    A plain number next to a Quantity is read as being in that Quantity's unit.
    """
    loc_m, loc_u = split_unit(loc)
    scale_m, scale_u = split_unit(scale)
    if loc_u is None and scale_u is None:
        return loc, scale, None
    unit = loc_u if loc_u is not None else scale_u
    if loc_u is not None and scale_u is not None:
        scale_m = in_unit("scale", scale, unit)
    return loc_m, scale_m, unit


def is_concrete(x: Any) -> bool:
    """Whether ``x`` holds no JAX tracer (a value checkable on the host right now)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))
