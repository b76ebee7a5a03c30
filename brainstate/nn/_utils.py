"""Model utilities: ``count_parameters``, ``clip_grad_norm``."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from brainstate._state import ParamState
from brainstate.nn._module import Module
from brainstate.typing import PyTree

__all__: list[str] = ["count_parameters", "clip_grad_norm"]

_SUFFIXES = ("", "K", "M", "B", "T", "P", "E")


def _format_count(n: int, precision: int) -> str:
    """``1234 -> '1.23K'`` (plain digits under a thousand)."""
    if n < 1000:
        return str(n)
    value, magnitude = float(n), 0
    while abs(value) >= 1000 and magnitude < len(_SUFFIXES) - 1:
        value /= 1000.0
        magnitude += 1
    # Rounding may reach 1000 ("1000.00K"): move to the next suffix then.
    if round(value, precision) >= 1000 and magnitude < len(_SUFFIXES) - 1:
        value /= 1000.0
        magnitude += 1
    return f"{value:.{precision}f}{_SUFFIXES[magnitude]}"


def _table(rows: list) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(2)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [rule]
    for j, (a, b) in enumerate(rows):
        lines.append(f"| {str(a).ljust(widths[0])} | {str(b).rjust(widths[1])} |")
        if j == 0 or j == len(rows) - 2:
            lines.append(rule)
    lines.append(rule)
    return "\n".join(lines)


def count_parameters(module: Module, precision: int = 2,
                     return_table: bool = False) -> int | tuple[str, int]:
    """Count the trainable parameters (``ParamState`` elements) of a module and print a table.

    Parameters
    ----------
    module : Module
        The model.
    precision : int, default 2
        Decimals of the abbreviated counts in the table (``1.23K``, ``4.56M``...).
    return_table : bool, default False
        Also return the printed table.

    Returns
    -------
    int or (str, int)
        The total number of parameter elements, preceded by the table text when
        ``return_table``.

    Raises
    ------
    TypeError
        If ``module`` is not a Module or ``precision`` is not a non-negative int.

    Notes
    -----
    Differs from upstream: the table is plain text built here (upstream needed the optional
    ``prettytable`` package and returned its table object); invalid arguments raise
    ``TypeError`` (upstream: ``AssertionError``).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> net = brainstate.nn.Module()
    >>> net.w = brainstate.ParamState(jnp.zeros((30, 40)))
    >>> net.b = brainstate.ParamState(jnp.zeros(40))
    >>> brainstate.nn.count_parameters(net)
    +---------+------------+
    | Modules | Parameters |
    +---------+------------+
    | b       |         40 |
    | w       |      1.20K |
    +---------+------------+
    | Total   |      1.24K |
    +---------+------------+
    1240
    """
    if not isinstance(module, Module):
        raise TypeError(
            f"count_parameters needs a brainstate.nn.Module, got {type(module).__name__}."
        )
    if not isinstance(precision, int) or isinstance(precision, bool) or precision < 0:
        raise TypeError(f"count_parameters precision must be a non-negative int, got "
                        f"{precision!r}.")
    rows: list = [("Modules", "Parameters")]
    total = 0
    for path, state in module.states(ParamState).items():
        n = int(state.numel())
        rows.append((".".join(str(p) for p in path), _format_count(n, precision)))
        total += n
    rows.append(("Total", _format_count(total, precision)))
    table = _table(rows)
    print(table)
    return (table, total) if return_table else total


def _norm_order(norm_type: Any) -> float:
    """The p of the p-norm as a float (``inf``/``-inf`` included), or a clear error."""
    if norm_type is None:
        return 2.0
    if isinstance(norm_type, str):
        text = norm_type.strip().lower()
        if text in ("inf", "+inf"):
            return math.inf
        if text == "-inf":
            return -math.inf
        raise ValueError(
            f"clip_grad_norm norm_type {norm_type!r} is not understood; give a number p > 0, "
            "'inf' or '-inf'."
        )
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float, np.number)):
        raise TypeError(
            f"clip_grad_norm norm_type must be a number, 'inf', '-inf' or None, got "
            f"{norm_type!r} of type {type(norm_type).__name__}."
        )
    p = float(norm_type)
    if math.isnan(p) or (p <= 0 and p != -math.inf):
        raise ValueError(
            f"clip_grad_norm norm_type must be > 0, inf or -inf, got {norm_type!r} (p <= 0 is "
            "not a norm)."
        )
    return p


def _norm_dtype(leaves: list) -> Any:
    wide = any(jnp.dtype(getattr(g, "dtype", jnp.float32)).itemsize >= 8 for g in leaves)
    # float64 only where x64 is on (canonicalize_dtype gives float32 otherwise)
    return jax.dtypes.canonicalize_dtype(jnp.float64) if wide else jnp.dtype(jnp.float32)


def _total_norm(leaves: list, p: float, dtype: Any) -> jax.Array:
    """The p-norm of all leaves taken as one concatenated vector."""
    mags = [jnp.abs(jnp.asarray(g)).astype(dtype).ravel() for g in leaves]
    if p == math.inf:
        return jnp.max(jnp.stack([jnp.max(m, initial=0) for m in mags]))
    if p == -math.inf:
        return jnp.min(jnp.concatenate(mags))
    if p == 1.0:
        return sum((jnp.sum(m) for m in mags), jnp.zeros((), dtype))
    if p == 2.0:
        return jnp.sqrt(sum((jnp.sum(m * m) for m in mags), jnp.zeros((), dtype)))
    return sum((jnp.sum(m ** p) for m in mags), jnp.zeros((), dtype)) ** (1.0 / p)


def clip_grad_norm(grad: PyTree, max_norm: float | jax.Array,
                   norm_type: int | float | str | None = 2.0,
                   return_norm: bool = False) -> PyTree | tuple[PyTree, jax.Array]:
    """Scale a pytree of gradients down so that their joint p-norm is at most ``max_norm``.

    The norm is taken over all leaves together, as if they were one concatenated vector, and
    every leaf is multiplied by ``min(1, max_norm / (norm + 1e-6))``.

    Parameters
    ----------
    grad : pytree of arrays
        The gradients (``None`` leaves are left alone).
    max_norm : float or array
        The largest norm kept.
    norm_type : float, int, 'inf', '-inf' or None, default 2.0
        The p of the p-norm (``None`` means 2; ``'inf'`` is the largest magnitude,
        ``'-inf'`` the smallest).
    return_norm : bool, default False
        Also return the norm before clipping.

    Returns
    -------
    pytree or (pytree, Array)
        The clipped gradients (same structure and dtypes), and the norm when
        ``return_norm``. An empty tree is returned as is, with norm 0.

    Raises
    ------
    TypeError, ValueError
        An invalid ``norm_type`` (not a number, ``p <= 0``, NaN, an unknown string), or a
        negative number ``max_norm``.

    Notes
    -----
    Differs from upstream: ``norm_type`` is validated (upstream passed anything to
    ``jnp.linalg.norm``, so ``0`` or a negative p silently gave meaningless scaling); leaves
    of different dtypes are combined (the norm is computed in float32, float64 if a leaf is
    64-bit and x64 is on) and each clipped leaf keeps its own dtype, which also holds under
    strict dtype promotion. Gradients carrying physical units are not supported.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> grads = {"w": jnp.asarray([3.0, 4.0]), "b": jnp.asarray([12.0])}
    >>> clipped, norm = brainstate.nn.clip_grad_norm(grads, max_norm=6.5, return_norm=True)
    >>> float(norm)
    13.0
    >>> [round(float(v), 3) for v in clipped["w"]]
    [1.5, 2.0]
    >>> float(brainstate.nn.clip_grad_norm(grads, 1.0, norm_type="inf", return_norm=True)[1])
    12.0
    """
    p = _norm_order(norm_type)
    if isinstance(max_norm, (int, float)) and not isinstance(max_norm, bool) and max_norm < 0:
        raise ValueError(f"clip_grad_norm max_norm must be >= 0, got {max_norm}.")
    leaves = jax.tree_util.tree_leaves(grad)
    if not leaves:
        return (grad, jnp.zeros((), jnp.float32)) if return_norm else grad
    dtype = _norm_dtype(leaves)
    total = _total_norm(leaves, p, dtype)
    limit = jnp.asarray(max_norm).astype(dtype)
    factor = jnp.minimum(jnp.ones((), dtype), limit / (total + jnp.asarray(1e-6, dtype)))
    clipped = jax.tree_util.tree_map(lambda g: g * factor.astype(jnp.asarray(g).dtype), grad)
    return (clipped, total) if return_norm else clipped
