"""Mirrors csrc/_core_signature.pxi: signatures and the comparison of a written value with
one (the compiled twin's checked tree writes walk plain containers without JAX's flatten; here
the flatten is the reference for their verdicts)."""

from __future__ import annotations

from typing import Any

from brainstate._core_py import _context

# --- signatures -----------------------------------------------------------------------------


class Signature:
    """The abstract signature of a value: tree structure plus (shape, dtype) per leaf.

    A single-array value (the common case) keeps ``treedef=None`` and is compared without
    flattening. ``specs`` holds one entry per leaf: ``(shape, dtype)`` for array-likes, the
    Python type for leaves JAX cannot abstractify.
    """

    __slots__ = ("treedef", "specs", "shape", "dtype")

    def __init__(self, treedef: Any, specs: tuple, shape: Any = None, dtype: Any = None):
        self.treedef = treedef
        self.specs = specs
        self.shape = shape
        self.dtype = dtype

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Signature):
            return NotImplemented
        if self.treedef is None or other.treedef is None:
            # PyTreeDef.__eq__ raises TypeError on None; one single-array form and one full
            # form never match (a full form never describes exactly one array leaf)
            return (self.treedef is None and other.treedef is None
                    and self.shape == other.shape and self.dtype == other.dtype)
        return self.treedef == other.treedef and self.specs == other.specs

    def __hash__(self) -> int:
        return hash(self._full())

    def _full(self) -> tuple:
        if self.treedef is None:
            return (None, ((self.shape, self.dtype),))
        return (self.treedef, self.specs)

    def __repr__(self) -> str:
        if self.treedef is None:
            return f"Signature(shape={self.shape}, dtype={self.dtype})"
        return f"Signature(treedef={self.treedef}, leaves={list(self.specs)})"

    def __reduce__(self):
        return (Signature, (self.treedef, self.specs, self.shape, self.dtype))


def _analyse(value: Any) -> tuple[Signature, bool]:
    """Signature of ``value`` and whether any leaf is a JAX tracer."""
    array_type = _context._array_type
    if type(value) is array_type:
        # aval directly: ArrayImpl.shape/.dtype are properties that read it (two calls saved)
        aval = value.aval
        return Signature(None, (), aval.shape, aval.dtype), False
    leaves, treedef = _context._tree_flatten(value)
    tracer_type = _context._tracer_type
    leaf_spec = _context._leaf_spec
    has_tracer = False
    specs = []
    for leaf in leaves:
        if type(leaf) is array_type:  # jax arrays: already canonical
            aval = leaf.aval
            specs.append((aval.shape, aval.dtype))
            continue
        if isinstance(leaf, tracer_type):
            has_tracer = True
        specs.append(leaf_spec(leaf))
    if len(specs) == 1 and type(specs[0]) is tuple and treedef.num_nodes == 1:
        # a bare array-like leaf: the single form, equal to what a jax array gives
        return Signature(None, (), specs[0][0], specs[0][1]), has_tracer
    return Signature(treedef, tuple(specs)), has_tracer


def make_signature(value: Any) -> Signature:
    """The abstract signature of ``value``."""
    return _analyse(value)[0]


def _matches(sig: Signature, value: Any) -> tuple[bool, bool]:
    """(does ``value`` match ``sig``, does it hold a tracer)."""
    # The compiled twin confirms matches of plain-container trees by walking them without
    # JAX's flatten (_walk_node); this flatten stays the reference for its verdicts.
    if sig.treedef is None and type(value) is _context._array_type:
        aval = value.aval
        return aval.shape == sig.shape and aval.dtype == sig.dtype, False
    got, has_tracer = _analyse(value)
    return got == sig, has_tracer


def _same_structure(a: Signature, b: Signature) -> bool:
    # the single-array form stands for the leaf treedef
    if a.treedef is None:
        return b.treedef is None or (b.treedef.num_nodes == 1 and b.treedef.num_leaves == 1)
    if b.treedef is None:
        return a.treedef.num_nodes == 1 and a.treedef.num_leaves == 1
    return a.treedef == b.treedef
