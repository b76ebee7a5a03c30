"""Sizes and shapes of the initializers (``brainstate.nn.init`` re-exports the public ones)."""

from __future__ import annotations

import operator
from typing import Any, Sequence, overload

import numpy as np

from brainstate.typing import Size

__all__ = ["to_size", "are_broadcastable_shapes"]


@overload
def to_size(x: None) -> None: ...
@overload
def to_size(x: Size) -> tuple[int, ...]: ...


def to_size(x: Any) -> tuple[int, ...] | None:
    """Normalise a size to a tuple of ints (``None`` stays ``None``).

    Parameters
    ----------
    x : int, sequence of int or None
        The size.

    Returns
    -------
    tuple of int or None

    Raises
    ------
    ValueError
        When ``x`` is neither an int, a sequence of ints nor None, or holds a negative entry.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.to_size(3), init.to_size([2, 4]), init.to_size(None)
    ((3,), (2, 4), None)
    """
    if x is None:
        return None
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        dims: Sequence[Any] = (x,)
    elif isinstance(x, (tuple, list)):
        dims = x
    else:
        raise ValueError(
            f"Cannot make a size from {type(x).__name__}: {x!r}; give an int or a sequence "
            "of ints."
        )
    out = []
    for d in dims:
        if isinstance(d, (bool, np.bool_)):
            raise ValueError(f"Cannot make a size from {x!r}: {d!r} is not an int.")
        try:
            d = operator.index(d)
        except TypeError:
            raise ValueError(f"Cannot make a size from {x!r}: {d!r} is not an int.") from None
        if d < 0:
            raise ValueError(f"Cannot make a size from {x!r}: dimensions must be >= 0.")
        out.append(d)
    return tuple(out)


def are_broadcastable_shapes(shape1: Sequence[int], shape2: Sequence[int]) -> bool:
    """Whether two shapes broadcast against each other (NumPy rules).

    Trailing dimensions are compared pairwise: each pair must be equal or contain a 1.
    Leading dimensions present in only one shape are not compared.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.are_broadcastable_shapes((1, 3), (4, 3)), init.are_broadcastable_shapes((2,), (3,))
    (True, False)
    """
    for d1, d2 in zip(tuple(shape1)[::-1], tuple(shape2)[::-1]):
        if d1 != d2 and d1 != 1 and d2 != 1:
            return False
    return True


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether an array of ``shape`` broadcasts to exactly ``target`` (no extra axes)."""
    return len(shape) <= len(target) and all(
        d == t or d == 1 for d, t in zip(shape[::-1], target[::-1])
    )


# documented and pickled as members of the public module
to_size.__module__ = are_broadcastable_shapes.__module__ = "brainstate.nn.init"
