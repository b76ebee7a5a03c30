"""Pretty, cycle-safe reprs built from a stream of :class:`PrettyType` / :class:`PrettyAttr`.

An object opts in by subclassing :class:`PrettyRepr` and writing ``__pretty_repr__``: a generator
that yields one :class:`PrettyType` (the header: type name, brackets, separator) and then one
:class:`PrettyAttr` per field. :func:`yield_unique_pretty_repr_items` writes such a generator
for you and prints an object met a second time in the same ``repr`` as ``Type(...)``, so cyclic
structures terminate.
"""

from __future__ import annotations

import dataclasses
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Optional, Union

__all__ = [
    "yield_unique_pretty_repr_items",
    "PrettyType",
    "PrettyAttr",
    "PrettyRepr",
    "PrettyMapping",
    "MappingReprMixin",
]

_MODULE = "brainstate.util"


@dataclasses.dataclass
class PrettyType:
    """Header of a pretty ``repr``: the type and how its fields are laid out.

    Attributes
    ----------
    type : str or type
        The name printed before ``start`` (a class prints its ``__name__``).
    start, end : str
        The opening and closing brackets, ``'('`` and ``')'`` by default.
    value_sep : str
        Printed between a field's key and value, ``'='`` by default.
    elem_indent : str
        Indentation of each field line, two spaces by default.
    empty_repr : str
        Printed between the brackets when there are no fields.
    """

    type: Union[str, type]
    start: str = "("
    end: str = ")"
    value_sep: str = "="
    elem_indent: str = "  "
    empty_repr: str = ""


PrettyType.__module__ = _MODULE


@dataclasses.dataclass
class PrettyAttr:
    """One field of a pretty ``repr``: ``key``, ``value`` (a ``str`` is printed verbatim), and
    optional text put before the key (``start``) and after the value (``end``)."""

    key: str
    value: Any
    start: str = ""
    end: str = ""


PrettyAttr.__module__ = _MODULE


class PrettyRepr(ABC):
    """Base of objects whose ``repr`` is built by :func:`pretty_repr_object` from ``__pretty_repr__``.

    Examples
    --------
    >>> class Point(PrettyRepr):
    ...     def __init__(self, x, y):
    ...         self.x, self.y = x, y
    ...     def __pretty_repr__(self):
    ...         yield PrettyType('Point')
    ...         yield PrettyAttr('x', self.x)
    ...         yield PrettyAttr('y', self.y)
    >>> print(Point(1, 2))
    Point(
      x=1,
      y=2
    )
    """

    __module__ = _MODULE
    __slots__ = ()

    @abstractmethod
    def __pretty_repr__(self) -> Iterator[Union[PrettyType, PrettyAttr]]:
        """Yield one :class:`PrettyType`, then one :class:`PrettyAttr` per field."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return pretty_repr_object(self)


def _elem_text(header: PrettyType, elem) -> str:
    if not isinstance(elem, PrettyAttr):
        raise TypeError(
            "__pretty_repr__ must yield PrettyAttr items after its PrettyType header, got "
            f"{type(elem).__name__}: {elem!r}."
        )
    value = elem.value if isinstance(elem.value, str) else repr(elem.value)
    value = value.replace("\n", "\n" + header.elem_indent)
    return f"{header.elem_indent}{elem.start}{elem.key}{header.value_sep}{value}{elem.end}"


def _as_value(value):
    # A str in PrettyAttr is printed verbatim (pre-rendered text); data strings need quotes.
    return repr(value) if isinstance(value, str) else value


def pretty_repr_object(obj) -> str:
    """Render ``obj.__pretty_repr__()`` as text.

    Raises
    ------
    TypeError
        If ``obj`` has no ``__pretty_repr__``, or its first item is not a :class:`PrettyType`,
        or a later item is not a :class:`PrettyAttr`.
    """
    method = getattr(obj, "__pretty_repr__", None)
    if method is None:
        raise TypeError(f"{type(obj).__name__} object has no __pretty_repr__; subclass "
                        "PrettyRepr and implement it.")
    items = method()
    header = next(items, None)
    if not isinstance(header, PrettyType):
        raise TypeError(f"__pretty_repr__ of {type(obj).__name__} must first yield a PrettyType, "
                        f"got {type(header).__name__}.")
    fields = ",\n".join(_elem_text(header, e) for e in items)
    body = f"\n{fields}\n" if fields else header.empty_repr
    name = header.type if isinstance(header.type, str) else header.type.__name__
    return f"{name}{header.start}{body}{header.end}"


class MappingReprMixin(Mapping):
    """Mixin giving a mapping a ``{key: value}`` pretty representation.

    Notes
    -----
    Differs from upstream: string values print quoted, like ``dict``'s ``repr`` (upstream
    printed them bare, which hid the difference between ``'1'`` and ``1``). The same holds
    for :class:`PrettyMapping`, ``PrettyObject``, ``PrettyDict`` and ``PrettyList``.

    Examples
    --------
    >>> class Table(dict, MappingReprMixin, PrettyRepr):
    ...     __repr__ = PrettyRepr.__repr__
    >>> print(Table(a=1))
    {
      'a': 1
    }
    """

    __module__ = _MODULE

    def __pretty_repr__(self) -> Iterator[Union[PrettyType, PrettyAttr]]:
        yield PrettyType(type="", value_sep=": ", start="{", end="}")
        for key, value in self.items():
            yield PrettyAttr(repr(key), _as_value(value))


@dataclasses.dataclass(repr=False)
class PrettyMapping(PrettyRepr):
    """A pretty view of a mapping, optionally headed by ``type_name``.

    Examples
    --------
    >>> print(PrettyMapping({'a': 1}, type_name='Params'))
    Params{
      'a': 1
    }
    """

    mapping: Mapping
    type_name: str = ""

    def __pretty_repr__(self) -> Iterator[Union[PrettyType, PrettyAttr]]:
        yield PrettyType(type=self.type_name, value_sep=": ", start="{", end="}")
        for key, value in self.mapping.items():
            yield PrettyAttr(repr(key), _as_value(value))


PrettyMapping.__module__ = _MODULE


class _SeenObjects(threading.local):
    """Objects already being printed by the ``repr`` running in this thread."""

    def __init__(self) -> None:
        self.seen: Optional[dict] = None


_CONTEXT = _SeenObjects()


def _default_repr_object(node) -> Iterator[PrettyType]:
    yield PrettyType(type=type(node))


def _default_repr_attr(node) -> Iterator[PrettyAttr]:
    for name, value in _public_fields(node):
        yield PrettyAttr(name, repr(value))


def _public_fields(node):
    """``(name, value)`` of the instance attributes not starting with ``_`` (dict and slots)."""
    fields = dict(getattr(node, "__dict__", {}))
    for cls in type(node).__mro__:
        for slot in cls.__dict__.get("__slots__", ()):
            if slot not in fields and slot not in ("__dict__", "__weakref__") and hasattr(node, slot):
                fields[slot] = getattr(node, slot)
    return [(k, v) for k, v in fields.items() if not k.startswith("_")]


def yield_unique_pretty_repr_items(
    node: Any,
    repr_object: Optional[Callable[[Any], Iterator[PrettyType]]] = None,
    repr_attr: Optional[Callable[[Any], Iterator[PrettyAttr]]] = None,
) -> Iterator[Union[PrettyType, PrettyAttr]]:
    """Yield the pretty items of ``node``, printing an object already being printed as ``Type(...)``.

    Parameters
    ----------
    node : Any
        The object to describe.
    repr_object : callable, optional
        ``node -> iterator of PrettyType`` (the header); default: the node's class with
        ``(`` ``)`` brackets.
    repr_attr : callable, optional
        ``node -> iterator of PrettyAttr``; default: the public instance attributes.

    Yields
    ------
    PrettyType or PrettyAttr
        The header, then the fields.

    Examples
    --------
    >>> class Node(PrettyRepr):
    ...     def __init__(self):
    ...         self.next = self
    ...     def __pretty_repr__(self):
    ...         yield from yield_unique_pretty_repr_items(self)
    >>> print(Node())
    Node(
      next=Node(...)
    )
    """
    repr_object = _default_repr_object if repr_object is None else repr_object
    repr_attr = _default_repr_attr if repr_attr is None else repr_attr
    seen = _CONTEXT.seen
    owner = seen is None
    if seen is None:
        seen = _CONTEXT.seen = {}
    try:
        if id(node) in seen:
            yield PrettyType(type=type(node), empty_repr="...")
            return
        yield from repr_object(node)
        seen[id(node)] = node  # kept alive so its id cannot be reused meanwhile
        yield from repr_attr(node)
    finally:
        if owner:
            _CONTEXT.seen = None


yield_unique_pretty_repr_items.__module__ = _MODULE
