"""Type aliases and protocols for annotating brainstate code.

The aliases here are ordinary ``typing`` objects: use them in annotations, inside ``Union`` /
``Optional``, and (where the alias is a plain ``Union`` of classes, such as :data:`ArrayLike`)
with ``isinstance``. :class:`PyTree` and :class:`Array` are subscriptable classes whose
``isinstance`` checks look at the value (every leaf, or array-ness).

``brainunit`` is optional: when it is importable, :data:`ArrayLike` also admits
``brainunit.Quantity``. :data:`ArrayLike` is the one lazy name here: importing this module never
imports brainunit (which pulls in matplotlib); the union is built, and brainunit imported if
installed, on the first access of ``brainstate.typing.ArrayLike`` (including
``from brainstate.typing import ArrayLike``), through a module ``__getattr__`` (PEP 562). Modules
of this package that only annotate with it import it under ``TYPE_CHECKING``.

Examples
--------
>>> import numpy as np
>>> from brainstate.typing import ArrayLike, PyTree, Size
>>> def scale(x: ArrayLike, size: Size) -> PyTree[float]:
...     return {'x': x, 'n': size}
>>> isinstance(np.float32(1.0), ArrayLike)
True
>>> isinstance({'a': 1.0, 'b': (2.0,)}, PyTree[float])
True
"""

from __future__ import annotations

import functools
import types
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Hashable,
    List,
    Protocol,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    runtime_checkable,
)

import jax
import numpy as np

__all__ = [
    # path and filter types
    "PathParts",
    "Predicate",
    "Filter",
    "FilterLiteral",
    # arrays and shapes
    "Array",
    "ArrayLike",
    "Shape",
    "Size",
    "Axes",
    "DType",
    "DTypeLike",
    "SupportsDType",
    # pytrees
    "PyTree",
    # random numbers
    "SeedOrKey",
    # utilities
    "Key",
    "Missing",
    # type variables
    "K",
    "_T",
    "_Annotation",
]

_MODULE = "brainstate.typing"

# --- type variables ----------------------------------------------------------------------------

K = TypeVar("K", bound="Key")
"""A key that is hashable and ordered."""

_T = TypeVar("_T")
"""Any type."""

_Annotation = TypeVar("_Annotation")
"""The annotation carried by a subscripted :class:`Array`."""


# --- keys, paths and filters -------------------------------------------------------------------


@runtime_checkable
class Key(Hashable, Protocol):
    """Protocol of a key in a PyTree path: hashable and ordered with ``<``.

    Examples
    --------
    >>> isinstance('layer', Key), isinstance(3, Key), isinstance([1], Key)
    (True, True, False)
    """

    def __lt__(self: K, value: K, /) -> bool: ...


Key.__module__ = _MODULE

PathParts = Tuple[Key, ...]
"""A path through a PyTree, e.g. ``('layers', 0, 'weight')``; ``()`` is the root."""

Predicate = Callable[[PathParts, Any], bool]
"""A callable ``(path, value) -> bool`` selecting values of a PyTree."""

FilterLiteral = Union[type, str, Predicate, bool, types.EllipsisType, None]
"""One filter: a class, a tag string, a predicate, ``True``/``False``, ``...`` or ``None``."""

Filter = Union[FilterLiteral, Tuple["Filter", ...], List["Filter"]]
"""A filter literal or a (nested) tuple/list of filters, matching when any member matches."""


# --- arrays and shapes -------------------------------------------------------------------------

_ARRAY_LIKE_BASE: tuple = (
    jax.Array,
    np.ndarray,
    np.bool_,
    np.number,
    bool,
    int,
    float,
    complex,
)


def _array_like() -> Any:
    """Build :data:`ArrayLike`, with ``brainunit.Quantity`` when brainunit is importable."""
    try:  # brainunit is optional; without it ArrayLike is the unit-free union.
        from brainunit import Quantity
    except ImportError:
        extra: tuple = ()
    else:
        extra = (Quantity,)
    return Union[_ARRAY_LIKE_BASE + extra]  # type: ignore[valid-type]


def __getattr__(name: str) -> Any:
    if name == "ArrayLike":  # built once; later lookups find it in the module namespace
        value = globals()["ArrayLike"] = _array_like()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | {"ArrayLike"})


if TYPE_CHECKING:  # what static checkers see; at run time the name is built lazily above
    ArrayLike = Union[jax.Array, np.ndarray, np.bool_, np.number, bool, int, float, complex]
    """Anything that converts to a JAX array without ambiguity (lazy: see the module docstring).

    JAX and NumPy arrays, NumPy scalars, Python ``bool``/``int``/``float``/``complex``, and
    ``brainunit.Quantity`` when brainunit is installed. Unlike ``numpy.typing.ArrayLike`` it
    excludes lists and strings. Usable with ``isinstance``. The first access imports brainunit
    when it is installed.
    """

Size = Union[int, Sequence[int], np.integer, Sequence[np.integer]]
"""An array size: one integer or a sequence of integers (Python or NumPy)."""

Shape = Sequence[int]
"""An array shape: a sequence of integers."""

Axes = Union[int, Sequence[int]]
"""One axis or a sequence of axes."""

DType = np.dtype
"""A NumPy dtype."""


@runtime_checkable
class SupportsDType(Protocol):
    """Protocol of objects that expose a ``dtype`` attribute (arrays, ``ShapeDtypeStruct``)."""

    @property
    def dtype(self) -> DType: ...


SupportsDType.__module__ = _MODULE

DTypeLike = Union[str, type, np.dtype, SupportsDType]
"""What converts to a JAX dtype: a name (``'float32'``), a scalar type, a dtype, or an object
with ``.dtype``. ``None`` is excluded on purpose: spell ``Optional[DTypeLike]`` when allowed."""

SeedOrKey = Union[int, jax.Array, np.ndarray]
"""A random seed (``int``) or a PRNG key array."""


def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


def _item_text(item) -> str:
    if isinstance(item, slice):
        if item.step is not None:
            raise TypeError(
                f"Array[...] does not accept a slice step, got {item!r}; write a shape "
                "annotation such as Array['batch, n'] instead."
            )
        return f"{_item_text(item.start)}: {_item_text(item.stop)}"
    if item is Ellipsis:
        return "..."
    if isinstance(item, type):
        return item.__name__
    return item if isinstance(item, str) else repr(item)


def _annotation_text(item) -> str:
    if isinstance(item, tuple):
        return ", ".join(_item_text(i) for i in item) if item else "()"
    return _item_text(item)


class _ArrayMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        return _is_array(obj)

    def __getitem__(cls, item):
        return _array_annotation(item)

    def __repr__(cls) -> str:
        return f"{_MODULE}.{cls.__qualname__}"


class Array(metaclass=_ArrayMeta):
    """Annotation for an array, optionally with a shape/dtype description.

    ``Array['batch, n']`` records the description in its name only; it is not checked. Both
    ``Array`` and ``Array[...]`` are classes: ``isinstance(x, Array)`` is true for JAX and NumPy
    arrays.

    Notes
    -----
    Differs from upstream: ``isinstance(x, Array)`` answers for arrays instead of always being
    false, and the subscripted form is cached (``Array['n'] is Array['n']``).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> def matmul(a: Array['m, k'], b: Array['k, n']) -> Array['m, n']:
    ...     return a @ b
    >>> Array['m, n'].__name__
    'Array[m, n]'
    >>> isinstance(jnp.ones(2), Array['n'])
    True
    """

    __module__ = _MODULE

    def __new__(cls, *args, **kwargs):
        raise TypeError(
            f"{cls.__qualname__} is an annotation and cannot be instantiated; create arrays "
            "with jax.numpy or numpy."
        )


@functools.lru_cache(maxsize=None)
def _array_annotation_cached(text: str) -> type:
    name = f"Array[{text}]"
    return _ArrayMeta(name, (Array,), {"__module__": _MODULE, "__qualname__": name,
                                       "annotation": text})


def _array_annotation(item) -> type:
    return _array_annotation_cached(_annotation_text(item))


# --- PyTree ------------------------------------------------------------------------------------


def _check_structure(structure) -> str:
    if not isinstance(structure, str):
        raise TypeError(
            "The structure in PyTree[leaftype, structure] must be a string such as 'T' or "
            f"'S T', got {structure!r} of type {type(structure).__name__}."
        )
    text = structure.strip()
    pieces = text.split()
    if not pieces:
        raise ValueError(
            "The structure in PyTree[leaftype, structure] cannot be empty; name it, e.g. "
            "PyTree[float, 'T']."
        )
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        if piece == "..." and i in (0, last):
            continue
        if not piece.isidentifier():
            raise ValueError(
                "The structure in PyTree[leaftype, structure] must be whitespace-separated "
                "identifiers, optionally starting or ending with '...'; got piece "
                f"{piece!r} in {structure!r}."
            )
    return text


def _leaf_text(leaftype) -> str:
    if isinstance(leaftype, type) and not isinstance(leaftype, _PyTreeMeta):
        if leaftype.__module__ == "builtins":
            return leaftype.__qualname__
        return f"{leaftype.__module__}.{leaftype.__qualname__}"
    return repr(leaftype)


def _leaf_matcher(leaftype) -> Callable[[Any], bool]:
    if leaftype is Any:
        return lambda leaf: True
    try:
        isinstance(None, leaftype)
    except TypeError as e:
        raise TypeError(
            f"isinstance(x, PyTree[{_leaf_text(leaftype)}]) needs a leaf type usable with "
            f"isinstance (a class or a Union of classes); {leaftype!r} is not ({e}). Use it "
            "in annotations only, or check the leaves yourself."
        ) from None
    return lambda leaf: isinstance(leaf, leaftype)


class _PyTreeMeta(type):
    def __call__(cls, *args, **kwargs):
        raise TypeError(
            "PyTree is an annotation and cannot be instantiated; any nested structure of "
            "lists, tuples, dicts and registered nodes already is a PyTree."
        )

    def __instancecheck__(cls, obj) -> bool:
        leaftype = cls.__dict__.get("leaftype", Any)
        if leaftype is Any:
            return True
        matches = _leaf_matcher(leaftype)
        return all(matches(leaf) for leaf in jax.tree_util.tree_leaves(obj))

    def __getitem__(cls, item):
        if cls is not PyTree:
            raise TypeError(f"{cls.__name__} is already subscripted; subscript PyTree itself.")
        if isinstance(item, tuple):
            if len(item) != 2:
                raise TypeError(
                    "PyTree[...] takes a leaf type, PyTree[int], or a leaf type and a structure "
                    f"name, PyTree[int, 'T']; got a tuple of {len(item)} items."
                )
            return _pytree_of(item[0], _check_structure(item[1]))
        return _pytree_of(item, None)

    def __repr__(cls) -> str:
        return f"{_MODULE}.{cls.__name__}"


class PyTree(metaclass=_PyTreeMeta):
    """Annotation for a PyTree, optionally naming its leaf type and structure.

    Supported forms: ``PyTree``, ``PyTree[LeafType]``, ``PyTree[LeafType, 'T']`` (a structure
    name, shared by arguments that must have the same structure), ``PyTree[LeafType, 'S T']``
    (a composition), and ``'... T'`` / ``'T ...'`` (suffix / prefix structures). Subscripted
    forms are cached classes.

    ``isinstance(x, PyTree)`` is always true (every object is a PyTree, possibly a single
    leaf); ``isinstance(x, PyTree[L])`` checks that every leaf of ``x`` is an ``L``. Structure
    names are not checked by ``isinstance``.

    Notes
    -----
    Differs from upstream: ``isinstance`` checks leaves instead of always answering false, and
    a non-string structure raises ``TypeError`` (upstream raised ``AttributeError``).

    Examples
    --------
    >>> isinstance([1, (2, 3)], PyTree[int])
    True
    >>> isinstance([1, 2.5], PyTree[int])
    False
    >>> PyTree[float, 'T'].structure
    'T'
    """

    __module__ = _MODULE
    leaftype: Any = Any
    structure: str | None = None


@functools.lru_cache(maxsize=None)
def _pytree_cached(leaftype, structure):
    text = _leaf_text(leaftype)
    name = f"PyTree[{text}]" if structure is None else f'PyTree[{text}, "{structure}"]'
    return _PyTreeMeta(name, (PyTree,), {
        "__module__": _MODULE,
        "__qualname__": name,
        "leaftype": leaftype,
        "structure": structure,
    })


def _pytree_of(leaftype, structure):
    try:
        return _pytree_cached(leaftype, structure)
    except TypeError:  # an unhashable leaf annotation: build an uncached class
        return _pytree_cached.__wrapped__(leaftype, structure)


# --- sentinels ---------------------------------------------------------------------------------


class Missing:
    """Sentinel type for "no value given", where ``None`` is a meaningful value.

    All instances are equal to each other, so ``x == Missing()`` and
    ``isinstance(x, Missing)`` both test for the sentinel.

    Notes
    -----
    Differs from upstream: instances compare equal (upstream compared by identity), so a
    sentinel that went through ``copy`` or ``pickle`` is still recognised.

    Examples
    --------
    >>> def f(value=Missing()):
    ...     return 'nothing passed' if isinstance(value, Missing) else value
    >>> f(), f(None)
    ('nothing passed', None)
    """

    __module__ = _MODULE
    __slots__ = ()

    def __repr__(self) -> str:
        return "Missing()"

    def __eq__(self, other) -> bool:
        return isinstance(other, Missing)

    def __hash__(self) -> int:
        return hash(Missing)
