"""Signature building blocks and the words of a signature mismatch (the slow path).

The core compares signatures; when a comparison fails it calls ``signature_error`` here to
find the first differing leaf and phrase the error, so both cores raise the same message.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax import dtypes as _dtypes

from brainstate._error import StateSignatureError

__all__ = ["leaf_spec", "signature_error", "format_spec"]

_PY_SCALARS = (bool, int, float, complex)


def _canonical(dtype: Any) -> Any:
    try:
        return _dtypes.canonicalize_dtype(dtype)
    except (TypeError, ValueError):  # extended dtypes (PRNG keys) are already canonical
        return dtype


def leaf_spec(leaf: Any) -> Any:
    """The signature entry of one leaf: ``(shape, canonical dtype)`` or the leaf's type.

    Python scalars take JAX's default dtypes (``float`` -> float32 without x64), numpy data is
    canonicalised under the current x64 setting, weak types are ignored, typed PRNG keys keep
    their key dtype. Anything JAX cannot abstractify contributes its Python type.
    """
    t = type(leaf)
    if t in _PY_SCALARS:
        return ((), _canonical(np.dtype(t if t is not int else np.int64)))
    shape = getattr(leaf, "shape", None)
    dtype = getattr(leaf, "dtype", None)
    if shape is not None and dtype is not None:
        try:
            return (tuple(shape), _canonical(dtype))
        except TypeError:
            pass
    return t


def format_spec(spec: Any) -> str:
    """``(3, 4) float32`` for an array spec, ``<type str>`` for an opaque leaf."""
    if isinstance(spec, tuple) and len(spec) == 2:
        shape, dtype = spec
        return f"shape={tuple(shape)} dtype={dtype}"
    if isinstance(spec, type):
        return f"non-array leaf of type {spec.__qualname__}"
    return repr(spec)


def _path_str(path: tuple) -> str:
    return jax.tree_util.keystr(path) if path else "<root>"


def _expected_leaves(sig: Any) -> tuple[Any, list]:
    if sig.treedef is None:
        return jax.tree_util.tree_structure(0), [(sig.shape, _canonical(sig.dtype))]
    return sig.treedef, list(sig.specs)


def _first_difference(sig: Any, value: Any) -> str:
    treedef, expected = _expected_leaves(sig)
    pairs, got_treedef = jax.tree_util.tree_flatten_with_path(value)
    if got_treedef != treedef:
        return (
            f"tree structure differs:\n  expected {treedef}\n  got      {got_treedef}"
        )
    for (path, leaf), want in zip(pairs, expected):
        got = leaf_spec(leaf)
        if got != want:
            return (
                f"leaf {_path_str(path)} differs: expected {format_spec(want)}, "
                f"got {format_spec(got)}"
            )
    return "signatures differ"  # pragma: no cover - the core only calls on a real mismatch


def signature_error(state: Any, op: str, sig: Any, value: Any) -> StateSignatureError:
    """The error for a ``value`` that does not match ``sig`` during ``op`` on ``state``."""
    from brainstate._messages import describe_state

    return StateSignatureError(
        f"Cannot {op} {describe_state(state)}: the value does not match the state's signature; "
        f"{_first_difference(sig, value)}.\n"
        "The first value of a state fixes its tree structure and each leaf's shape and dtype. "
        "To change the signature on purpose, wrap the assignment in "
        "`brainstate.check_state_value_tree(False)`."
    )
