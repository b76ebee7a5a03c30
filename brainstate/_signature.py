"""Signature building blocks and the words of a signature mismatch (the slow path).

The core compares signatures; when a comparison fails it calls ``signature_error`` here to
find the first differing leaf and phrase the error, so both cores raise the same message.

Physical units (``brainunit.Quantity``) need no special case in the signature itself: a
Quantity is a pytree node whose aux data is its unit, so the unit is part of the tree
structure and a write in another unit is a structure mismatch. Only the words are unit-aware:
the message names both units, says whether they share a physical dimension and how to convert.
``brainunit`` stays optional; Quantities are recognised by duck typing, never imported.

Notes
-----
Differs from upstream: upstream compares tree structures only inside
``check_state_value_tree()`` and reports two treedefs; a state here always refuses a value in
another unit, even a compatible one (``V`` into an ``mV`` state: no silent conversion, as
upstream), and the message names both units and the conversion to use.
"""

from __future__ import annotations

from typing import Any, cast

import sys

import jax
import numpy as np
from jax import dtypes as _dtypes

from brainstate._error import StateSignatureError

__all__ = ["leaf_spec", "signature_error", "format_spec", "leaf_units"]

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
    try:
        found = _unit_aware_difference(sig, value)
    except Exception:  # the words are best effort: fall back to the plain treedef comparison
        found = None
    return found if found is not None else _plain_difference(sig, value)


def _plain_difference(sig: Any, value: Any) -> str:
    treedef, expected = _expected_leaves(sig)
    pairs, got_treedef = jax.tree_util.tree_flatten_with_path(value)
    if got_treedef != treedef:
        return _structure_text(treedef, got_treedef)
    for (path, leaf), want in zip(pairs, expected):
        got = leaf_spec(leaf)
        if got != want:
            return _leaf_text(path, want, got)
    return "signatures differ"  # pragma: no cover - the core only calls on a real mismatch


def _structure_text(treedef: Any, got_treedef: Any) -> str:
    return f"tree structure differs:\n  expected {treedef}\n  got      {got_treedef}"


def _leaf_text(path: tuple, want: Any, got: Any, unit: Any = None) -> str:
    suffix = "" if unit is None else f" in {_unit_name(unit)}"
    return (f"leaf {_path_str(path)} differs: expected {format_spec(want)}{suffix}, "
            f"got {format_spec(got)}{suffix}")


# --- physical units (duck-typed brainunit.Quantity) ------------------------------------------


class _Want:
    """A placeholder leaf carrying one expected leaf spec through ``tree_unflatten``."""

    __slots__ = ("spec",)

    def __init__(self, spec: Any) -> None:
        self.spec = spec


def _unit_of(x: Any) -> Any:
    """The unit of a Quantity (brainunit or its twins), ``None`` for anything else."""
    for cls in type(x).__mro__:
        if cls.__name__ == "Quantity":
            unit = getattr(x, "unit", None)
            return unit if hasattr(unit, "dim") else None
    return None


def _is_quantity(x: Any) -> bool:
    return _unit_of(x) is not None


def _unit_name(unit: Any) -> str:
    if getattr(unit, "is_unitless", False):
        return "1 (dimensionless)"
    return str(unit)


def _dim_text(unit: Any) -> str:
    text = str(unit.dim)
    return "dimensionless" if text == "1" else text


def _unit_code(unit: Any) -> str | None:
    """``u.mV`` when the unit library exports the unit under that name, else ``None``."""
    pkg = sys.modules.get("brainunit") or sys.modules.get(type(unit).__module__.split(".")[0])
    for name in (str(unit), getattr(unit, "name", None)):
        if not (isinstance(name, str) and name.isidentifier()):
            continue
        exported = getattr(pkg, name, None)
        try:
            if exported is not None and type(exported) is type(unit) and exported == unit:
                return f"u.{name}"
        except Exception:  # an exotic __eq__ only costs the code hint
            continue
    return None


def _unit_aware_difference(sig: Any, value: Any) -> str | None:
    """The first difference with Quantities compared as units; ``None`` if none involved."""
    treedef, expected = _expected_leaves(sig)
    want_tree = jax.tree_util.tree_unflatten(treedef, [_Want(s) for s in expected])
    want_pairs, want_outer = jax.tree_util.tree_flatten_with_path(want_tree, is_leaf=_is_quantity)
    got_pairs, got_outer = jax.tree_util.tree_flatten_with_path(value, is_leaf=_is_quantity)
    want_outer = cast(Any, want_outer)  # PyTreeDef's stub lacks __ne__
    if not any(map(_is_quantity, (x for _, x in want_pairs + got_pairs))):
        return None
    if want_outer != got_outer:
        return _structure_text(treedef, jax.tree_util.tree_structure(value))
    for (path, want), (_, got) in zip(want_pairs, got_pairs):
        text = _pair_difference(path, want, got)
        if text is not None:
            return text
    return None


def _pair_difference(path: tuple, want: Any, got: Any) -> str | None:
    want_unit, got_unit = _unit_of(want), _unit_of(got)
    if want_unit is None and got_unit is None:
        got_spec = leaf_spec(got)
        return None if got_spec == want.spec else _leaf_text(path, want.spec, got_spec)
    if want_unit is None:
        return _unexpected_unit_text(path, got_unit)
    if got_unit is None:
        return _missing_unit_text(path, want_unit, leaf_spec(got))
    if want_unit != got_unit:
        return _wrong_unit_text(path, want_unit, got_unit)
    got_spec = leaf_spec(got.mantissa)
    want_spec = want.mantissa.spec
    return None if got_spec == want_spec else _leaf_text(path, want_spec, got_spec, want_unit)


def _convert_hint(unit: Any) -> str:
    code = _unit_code(unit)
    if code is None:
        return (f"convert the value to {_unit_name(unit)} first, with "
                f"`value.in_unit(<the unit {_unit_name(unit)}>)`")
    return f"convert the value first: `value.in_unit({code})` (or `value.to({code})`)"


def _wrong_unit_text(path: tuple, want: Any, got: Any) -> str:
    head = (f"leaf {_path_str(path)} has the wrong unit: expected {_unit_name(want)}, "
            f"got {_unit_name(got)}")
    if want.dim == got.dim:
        return (f"{head} (the same physical dimension at another scale). A state keeps the "
                f"unit of its first value and never converts on write; {_convert_hint(want)}")
    text = (f"{head}; the physical dimensions differ ({want}: {_dim_text(want)}, "
            f"{got}: {_dim_text(got)}), so no conversion exists: the value is not the "
            "quantity this state holds")
    if getattr(got, "is_unitless", False):
        code = _unit_code(want) or f"<the unit {_unit_name(want)}>"
        text += f". If its numbers are already in {_unit_name(want)}, attach the unit: " \
                f"`value.mantissa * {code}`"
    return text


def _missing_unit_text(path: tuple, want: Any, got_spec: Any) -> str:
    code = _unit_code(want) or f"<the unit {_unit_name(want)}>"
    return (f"leaf {_path_str(path)} has no unit: expected a Quantity in {_unit_name(want)}, "
            f"got a plain value ({format_spec(got_spec)}). Attach the unit: `value * {code}` "
            f"(or `u.Quantity(value, unit={code})`) if its numbers are in {_unit_name(want)}")


def _unexpected_unit_text(path: tuple, got: Any) -> str:
    code = _unit_code(got) or f"<the unit {_unit_name(got)}>"
    return (f"leaf {_path_str(path)} has a unit the state does not: expected a plain value "
            f"(no unit), got a Quantity in {_unit_name(got)}. Strip the unit with "
            f"`value.to_decimal({code})` (its numbers in {_unit_name(got)}), or create the "
            "state with a Quantity to keep units")


def leaf_units(value: Any) -> list:
    """The unit name of each leaf of ``value`` (``None`` for a leaf outside any Quantity).

    One entry per leaf of ``jax.tree_util.tree_leaves(value)``, in the same order; a
    Quantity's mantissa is one leaf and gets the Quantity's unit (``str(unit)``, e.g. ``"mV"``).
    Useful where values are stored leaf by leaf and the unit would otherwise be lost.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> leaf_units({"a": jnp.zeros(2), "b": [jnp.ones(1)]})
    [None, None]
    """
    out: list = []
    for x in jax.tree_util.tree_leaves(value, is_leaf=_is_quantity):
        unit = _unit_of(x)
        if unit is None:
            out.append(None)
        else:
            out.extend([str(unit)] * len(jax.tree_util.tree_leaves(x)))
    return out


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
