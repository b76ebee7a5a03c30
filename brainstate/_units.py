"""Optional brainunit support, shared by the modules that accept quantities.

brainunit is an optional dependency: without it nothing carries a unit, and these helpers
treat every value as a plain number or array.

Nothing here imports brainunit before a quantity can exist: ``import brainstate`` never imports
it (it pulls in matplotlib, about half a second), and :func:`is_quantity` / :func:`split` on
plain values do not either while neither brainunit nor its twin ``saiunit`` (which defines
``Quantity``) has been imported, since no quantity exists before then. :func:`brainunit` itself
imports the package on its first call.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["brainunit", "loaded", "is_quantity", "split", "mantissa", "attach"]

_MISSING = object()
_module: Any = _MISSING


def brainunit() -> Any:
    """The ``brainunit`` module, or ``None`` when it is not installed (looked up once)."""
    global _module
    if _module is _MISSING:
        try:
            import brainunit as module
        except ImportError:
            _module = None
        else:
            _module = module
    return _module


def loaded() -> Any:
    """``brainunit`` once a quantity can exist, else ``None``, never importing it before then.

    ``Quantity`` is defined by ``saiunit`` (``brainunit`` re-exports it): while neither module is
    in ``sys.modules`` no quantity exists, and no import is needed to say so. Use it where
    values are only inspected; a ``None`` here reads like "brainunit is not installed".
    """
    if _module is _MISSING and "brainunit" not in sys.modules and "saiunit" not in sys.modules:
        return None
    return brainunit()


def is_quantity(x: Any) -> bool:
    """Whether ``x`` is a ``brainunit.Quantity``."""
    bu = loaded()
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
