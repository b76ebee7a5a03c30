"""Filters: predicates ``(path, value) -> bool`` that select states and nodes of a graph.

A *filter* is anything :func:`to_predicate` accepts (a tag string, a class, ``True``/``...``,
``False``/``None``, a callable, or a list/tuple of filters); a *predicate* is the callable it
turns into. Predicates run once per state per query, so the classes here keep ``__slots__``,
avoid re-dispatch in ``__call__`` and are immutable (hashable, usable as cache keys).

They work on live states (``isinstance`` and ``.tag``) and on ``TreefyState`` references, which
record their state class in ``.type`` and carry ``.tag`` as metadata.

Examples
--------
>>> from brainstate.util.filter import to_predicate, WithTag, OfType, Any, Not
>>> class P:
...     tag = {'trainable'}
>>> to_predicate('trainable')((), P())
True
>>> Any(OfType(int), 'trainable')(('w',), P())
True
>>> Not(OfType(int))((), 3)
False
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from collections.abc import Hashable
from typing import Callable

from jax import tree_util as _jtu

__all__ = [
    "to_predicate",
    "WithTag",
    "PathContains",
    "OfType",
    "Any",
    "All",
    "Not",
    "Everything",
    "Nothing",
]

Predicate = Callable[[tuple, object], bool]

_builtin_type = type
# Containers whose membership means "tagged with"; a State stores its tags as a set.
_TAG_COLLECTIONS = (set, frozenset, list, tuple)


def to_predicate(the_filter) -> Predicate:
    """Convert a filter into a predicate ``(path, value) -> bool``.

    Parameters
    ----------
    the_filter : str, type, bool, Ellipsis, None, callable, list or tuple
        ``str`` becomes :class:`WithTag`; a class becomes :class:`OfType`; ``True`` and ``...``
        become :class:`Everything`; ``False`` and ``None`` become :class:`Nothing`; any other
        callable is returned unchanged; a list or tuple becomes :class:`Any` of its members.

    Returns
    -------
    callable
        The predicate.

    Raises
    ------
    TypeError
        If ``the_filter`` is none of the accepted kinds.

    Examples
    --------
    >>> to_predicate(int)
    OfType(<class 'int'>)
    >>> to_predicate(['a', ...])
    Any(WithTag('a'), Everything())
    """
    if isinstance(the_filter, str):
        return WithTag(the_filter)
    if isinstance(the_filter, _builtin_type):
        return OfType(the_filter)
    # bool before callables: True/False are filters of their own, not predicates.
    if isinstance(the_filter, bool):
        return Everything() if the_filter else Nothing()
    if the_filter is Ellipsis:
        return Everything()
    if the_filter is None:
        return Nothing()
    if callable(the_filter):
        return the_filter
    if isinstance(the_filter, (list, tuple)):
        return Any(*the_filter)
    raise TypeError(
        f"Invalid collection filter: {the_filter!r} (of type {_builtin_type(the_filter).__name__}). "
        "Expected a tag string, a class, True/False, ..., None, a callable "
        "(path, value) -> bool, or a list/tuple of those."
    )


class _Frozen:
    """Mixin: instances are immutable after ``__init__`` (like a frozen dataclass)."""

    __slots__ = ()

    def __setattr__(self, name, value):
        raise FrozenInstanceError(
            f"cannot assign to field {name!r}: {_builtin_type(self).__name__} filters are "
            "immutable; build a new filter instead."
        )

    def __delattr__(self, name):
        raise FrozenInstanceError(
            f"cannot delete field {name!r}: {_builtin_type(self).__name__} filters are immutable."
        )


class WithTag(_Frozen):
    """Match values whose ``tag`` equals ``tag`` or is a collection containing it.

    Parameters
    ----------
    tag : str
        The tag to look for.

    Raises
    ------
    TypeError
        If ``tag`` is not a ``str``.

    Examples
    --------
    >>> class S:
    ...     tag = {'fast', 'trainable'}
    >>> WithTag('fast')((), S())
    True
    >>> WithTag('fast')((), 3)
    False
    """

    __slots__ = ("tag",)
    tag: str

    def __init__(self, tag: str):
        if not isinstance(tag, str):
            raise TypeError(
                f"WithTag expects a str tag, got {tag!r} (of type {_builtin_type(tag).__name__}). "
                "Pass one tag string; combine several with Any('a', 'b')."
            )
        object.__setattr__(self, "tag", tag)

    def __call__(self, path, x) -> bool:
        tag = getattr(x, "tag", None)
        if tag is None:
            return False
        if isinstance(tag, str):
            return tag == self.tag
        if isinstance(tag, _TAG_COLLECTIONS):
            return self.tag in tag
        return False

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return self.tag == other.tag
        return NotImplemented

    def __hash__(self):
        return hash((WithTag, self.tag))

    def __reduce__(self):
        return (self.__class__, (self.tag,))

    def __repr__(self):
        return f"WithTag({self.tag!r})"


def _jax_key_unwrappers():
    # JAX key-path entries wrap the real key; compare by what they wrap.
    table = {
        _jtu.DictKey: lambda k: k.key,
        _jtu.GetAttrKey: lambda k: k.name,
        _jtu.SequenceKey: lambda k: k.idx,
    }
    flattened = getattr(_jtu, "FlattenedIndexKey", None)
    if flattened is not None:
        table[flattened] = lambda k: k.key
    return table


_JAX_KEY_UNWRAP = _jax_key_unwrappers()


class PathContains(_Frozen):
    """Match values whose path has a part equal to ``key``.

    Path parts that are JAX key-path entries (``DictKey``, ``GetAttrKey``, ``SequenceKey``, ...)
    are compared by the key they wrap.

    Parameters
    ----------
    key : hashable
        The path component to look for.

    Examples
    --------
    >>> PathContains('weight')(('layers', 0, 'weight'), None)
    True
    >>> PathContains(1)(('layers', 0, 'weight'), None)
    False
    """

    __slots__ = ("key",)
    key: Hashable

    def __init__(self, key):
        object.__setattr__(self, "key", key)

    def __call__(self, path, x) -> bool:
        key = self.key
        unwrap = _JAX_KEY_UNWRAP
        for part in path:
            cls = part.__class__
            if cls in unwrap:
                part = unwrap[cls](part)
            if part == key:
                return True
        return False

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return self.key == other.key
        return NotImplemented

    def __hash__(self):
        return hash((PathContains, self.key))

    def __reduce__(self):
        return (self.__class__, (self.key,))

    def __repr__(self):
        return f"PathContains({self.key!r})"


class OfType(_Frozen):
    """Match instances of ``type``, and references whose ``.type`` is a subclass of it.

    The second rule makes ``OfType(ParamState)`` select ``TreefyState`` references of
    ``ParamState`` objects, whose ``type`` attribute records the state class.

    Parameters
    ----------
    type : type
        The class to match.

    Examples
    --------
    >>> OfType(int)((), 3)
    True
    >>> class Ref:
    ...     type = bool
    >>> OfType(int)((), Ref())
    True
    """

    __slots__ = ("type",)
    type: _builtin_type

    def __init__(self, type):  # noqa: A002 - public name matches upstream
        object.__setattr__(self, "type", type)

    def __call__(self, path, x) -> bool:
        t = self.type
        if isinstance(x, t):
            return True
        x_type = getattr(x, "type", None)
        return isinstance(x_type, _builtin_type) and issubclass(x_type, t)

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return self.type == other.type
        return NotImplemented

    def __hash__(self):
        return hash((OfType, self.type))

    def __reduce__(self):
        return (self.__class__, (self.type,))

    def __repr__(self):
        return f"OfType({self.type!r})"


def _hash_members(cls, members) -> int:
    try:
        return hash((cls, members))
    except TypeError:
        # An unhashable user predicate must not make the combinator unusable as a cache key;
        # equal filters still share this hash, so the eq/hash contract holds.
        return hash(cls)


class Any(_Frozen):
    """Match when any member filter matches (logical or, short-circuit); ``Any()`` is false.

    Parameters
    ----------
    *filters
        Filters, each converted with :func:`to_predicate`.

    Examples
    --------
    >>> Any(int, str)((), 'x')
    True
    >>> Any()((), 'x')
    False
    """

    __slots__ = ("predicates",)
    predicates: tuple[Predicate, ...]

    def __init__(self, *filters):
        object.__setattr__(self, "predicates", tuple(to_predicate(f) for f in filters))

    def __call__(self, path, x) -> bool:
        for predicate in self.predicates:
            if predicate(path, x):
                return True
        return False

    def __eq__(self, other):
        if isinstance(other, Any):
            return self.predicates == other.predicates
        return NotImplemented

    def __hash__(self):
        return _hash_members(Any, self.predicates)

    def __reduce__(self):
        return (self.__class__, self.predicates)

    def __repr__(self):
        return f"Any({', '.join(map(repr, self.predicates))})"


class All(_Frozen):
    """Match when every member filter matches (logical and, short-circuit); ``All()`` is true.

    Parameters
    ----------
    *filters
        Filters, each converted with :func:`to_predicate`.

    Examples
    --------
    >>> All(int, lambda path, x: x > 0)((), 3)
    True
    >>> All()((), None)
    True
    """

    __slots__ = ("predicates",)
    predicates: tuple[Predicate, ...]

    def __init__(self, *filters):
        object.__setattr__(self, "predicates", tuple(to_predicate(f) for f in filters))

    def __call__(self, path, x) -> bool:
        for predicate in self.predicates:
            if not predicate(path, x):
                return False
        return True

    def __eq__(self, other):
        if isinstance(other, All):
            return self.predicates == other.predicates
        return NotImplemented

    def __hash__(self):
        return _hash_members(All, self.predicates)

    def __reduce__(self):
        return (self.__class__, self.predicates)

    def __repr__(self):
        return f"All({', '.join(map(repr, self.predicates))})"


class Not(_Frozen):
    """Match when the wrapped filter does not match.

    Parameters
    ----------
    collection_filter
        A filter, converted with :func:`to_predicate`.

    Examples
    --------
    >>> Not(int)((), 'x')
    True
    """

    __slots__ = ("predicate",)
    predicate: Predicate

    def __init__(self, collection_filter, /):
        object.__setattr__(self, "predicate", to_predicate(collection_filter))

    def __call__(self, path, x) -> bool:
        return not self.predicate(path, x)

    def __eq__(self, other):
        if isinstance(other, Not):
            return self.predicate == other.predicate
        return NotImplemented

    def __hash__(self):
        return _hash_members(Not, self.predicate)

    def __reduce__(self):
        return (self.__class__, (self.predicate,))

    def __repr__(self):
        return f"Not({self.predicate!r})"


class Everything(_Frozen):
    """Match every value; all instances are equal.

    Examples
    --------
    >>> Everything()(('a',), None)
    True
    """

    __slots__ = ()

    def __call__(self, path, x) -> bool:
        return True

    def __eq__(self, other):
        return isinstance(other, Everything)

    def __hash__(self):
        return hash(Everything)

    def __reduce__(self):
        return (self.__class__, ())

    def __repr__(self):
        return "Everything()"


class Nothing(_Frozen):
    """Match no value; all instances are equal.

    Examples
    --------
    >>> Nothing()(('a',), None)
    False
    """

    __slots__ = ()

    def __call__(self, path, x) -> bool:
        return False

    def __eq__(self, other):
        return isinstance(other, Nothing)

    def __hash__(self):
        return hash(Nothing)

    def __reduce__(self):
        return (self.__class__, ())

    def __repr__(self):
        return "Nothing()"
