"""The built-in key names, the constants, the dtype tables, and validation of the values the
built-in keys accept (``precision``, ``dt``, ``platform``, ``host_device_count``)."""

from __future__ import annotations

import numbers
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

# --- key names and constants ------------------------------------------------------------------

I = "i"  # noqa: E741  (upstream name) index of the current step
T = "t"  #: current time of the computation
DT = "dt"  #: numerical integration step
PRECISION = "precision"  #: numerical precision (8, 16, 32, 64 or 'bf16')
PLATFORM = "platform"  #: computing platform ('cpu', 'gpu' or 'tpu')
HOST_DEVICE_COUNT = "host_device_count"  #: number of XLA host (CPU) devices
JIT_ERROR_CHECK = "jit_error_check"  #: whether jitted error checks run
FIT = "fit"  #: whether the model is being fitted (trained)

#: Precision reported while none is set and jax's 64-bit mode is off.
DEFAULT_PRECISION = 32
SUPPORTED_PLATFORMS = ("cpu", "gpu", "tpu")
SUPPORTED_PRECISIONS = (8, 16, 32, 64, "bf16")

_MISSING: Any = object()
_GLOBAL_ONLY = (PLATFORM, HOST_DEVICE_COUNT)
_COMPUTED = frozenset((PRECISION, PLATFORM, HOST_DEVICE_COUNT))  # answered even when not set
_F = TypeVar("_F", bound=Callable[..., Any])

# (Any: JAX 0.12's stubs type jnp.bfloat16 as a scalar-type object; at run time it is a class)
_FLOAT: dict[Any, Any] = {
    64: np.float64, 32: np.float32, 16: np.float16, "bf16": jnp.bfloat16, 8: jnp.float8_e5m2,
}
_INT = {64: np.int64, 32: np.int32, 16: np.int16, "bf16": np.int16, 8: np.int8}
_UINT = {64: np.uint64, 32: np.uint32, 16: np.uint16, "bf16": np.uint16, 8: np.uint8}
_COMPLEX = {64: np.complex128, 32: np.complex64, 16: np.complex64, "bf16": np.complex64,
            8: np.complex64}
_TOLERANCE = {64: 1e-12, 32: 1e-5, 16: 1e-2, "bf16": 1e-2, 8: 1e-2}

# jax's 64-bit flag: ``.value`` reads it (thread-local overrides included) in ~40 ns, and calling
# it gives the thread-local context manager that precision contexts use.
_X64 = jax.enable_x64

# Every public name is defined in a private submodule of the package but is documented, printed
# and found by doctest as ``brainstate.environ.<name>``, where users meet it.
_MODULE = "brainstate.environ"


def _public(obj: _F) -> _F:
    obj.__module__ = _MODULE
    return obj


# --- validation ---------------------------------------------------------------------------------


def _normalize_precision(precision: Any) -> int | str:
    """Return the canonical form of ``precision`` (an int, or ``'bf16'``) or raise ValueError."""
    if isinstance(precision, str):
        if precision == "bf16":
            return precision
        if precision in ("8", "16", "32", "64"):
            return int(precision)
    elif isinstance(precision, numbers.Integral) and not isinstance(precision, bool):
        if int(precision) in (8, 16, 32, 64):
            return int(precision)
    raise ValueError(
        f"precision must be one of {SUPPORTED_PRECISIONS} (an int may also be given as a "
        f"string, e.g. '64'); got {precision!r} ({type(precision).__name__}). "
        f"Example: brainstate.environ.set_precision(32)."
    )


def _quantity_second(value: Any) -> Any:
    """The unit ``second`` of ``value``'s unit library if it is a Quantity, else None.

    brainunit stays optional: a Quantity can only exist if its library was imported.
    """
    for name in ("brainunit", "saiunit"):
        mod = sys.modules.get(name)
        quantity = getattr(mod, "Quantity", None)
        if quantity is not None and isinstance(value, quantity):
            return getattr(mod, "second")
    return None


def _check_dt(dt: Any) -> Any:
    """Return ``dt`` unchanged if it is a usable integration step, else raise."""
    second = _quantity_second(dt)
    number = dt
    if second is not None:
        if not (dt.is_unitless or dt.dim == second.dim):
            raise ValueError(f"dt must be a time (or unitless); got {dt!r}. "
                             f"Example: brainstate.environ.set_dt(0.1 * brainunit.ms).")
        number = dt.mantissa
    if isinstance(number, jax.core.Tracer):
        return dt  # a traced step cannot be inspected; jax checks its use
    if isinstance(number, bool) or np.ndim(number) != 0 or not _is_real(number):
        raise TypeError(f"dt must be a real scalar (a float, or a brainunit Quantity of time); "
                        f"got {type(dt).__name__} {dt!r}.")
    value = float(number)
    if not (value > 0.0 and np.isfinite(value)):
        raise ValueError(f"dt must be finite and > 0; got dt={dt!r}. "
                         f"Example: brainstate.environ.set_dt(0.1).")
    return dt


def _is_real(x: Any) -> bool:
    if isinstance(x, numbers.Real):
        return True
    dtype = getattr(x, "dtype", None)  # jnp.issubdtype also knows bfloat16 and float8
    return dtype is not None and (jnp.issubdtype(dtype, jnp.floating)
                                  or jnp.issubdtype(dtype, jnp.integer))


def _check_values(values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalize the built-in keys of ``values`` (in place) and return it."""
    if PRECISION in values:
        values[PRECISION] = _normalize_precision(values[PRECISION])
    if DT in values:
        _check_dt(values[DT])
    return values


def _check_platform(platform: Any) -> None:
    if platform not in SUPPORTED_PLATFORMS:
        raise ValueError(f"platform must be one of {SUPPORTED_PLATFORMS}; got {platform!r}. "
                         f"Example: brainstate.environ.set_platform('cpu').")


def _check_device_count(n: Any) -> None:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"host_device_count must be a positive int; got {n!r}. "
                         f"Example: brainstate.environ.set_host_device_count(4).")
