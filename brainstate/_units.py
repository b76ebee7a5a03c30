"""Optional brainunit support, shared by the modules that accept quantities.

brainunit is an optional dependency: without it nothing carries a unit, and these helpers
treat every value as a plain number or array.
"""

from __future__ import annotations

from typing import Any

__all__ = ["brainunit", "is_quantity", "split", "mantissa", "attach"]

_MISSING = object()
_module: Any = _MISSING


def brainunit() -> Any:
    """The ``brainunit`` module, or ``None`` when it is not installed (looked up once)."""
    global _module
    if _module is _MISSING:
        try:
            import brainunit as module
        except ImportError:
            module = None
        _module = module
    return _module


def is_quantity(x: Any) -> bool:
    """Whether ``x`` is a ``brainunit.Quantity``."""
    bu = brainunit()
    return bu is not None and isinstance(x, bu.Quantity)


def split(x: Any) -> tuple[Any, Any]:
    """``(mantissa, unit)`` of a quantity; ``(x, None)`` for anything else."""
    if is_quantity(x):
        return x.mantissa, x.unit
    return x, None


def mantissa(x: Any) -> Any:
    """The number part of a quantity; anything else unchanged."""
    return x.mantissa if is_quantity(x) else x


def attach(x: Any, unit: Any) -> Any:
    """``x`` carrying ``unit``; ``x`` itself when ``unit`` is None, a plain array when the
    unit is dimensionless."""
    if unit is None:
        return x
    bu = brainunit()
    return bu.maybe_decimal(bu.Quantity(x, unit=unit))
