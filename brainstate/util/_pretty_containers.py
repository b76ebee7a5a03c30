"""Containers with pretty reprs: :class:`PrettyObject`, :class:`PrettyDict`, :class:`PrettyList`.

Their ``repr`` is indented one field per line and cycle-safe (see ``_pretty_repr``). Lists and
dicts found in fields print through :class:`PrettyList` and the ``{key: value}`` layout.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional, Tuple, Union

from jax import tree_util as jtu

from ._pretty_repr import (
    PrettyAttr,
    PrettyRepr,
    PrettyType,
    _public_fields,
    pretty_repr_object,
    yield_unique_pretty_repr_items,
)

__all__ = ["PrettyObject", "PrettyDict", "PrettyList"]

_MODULE = "brainstate.util"


def _nested_view(value):
    """How a field value prints inside a pretty repr: lists and dicts get the pretty layout.

    A ``str`` value is turned into its ``repr`` here, because a ``str`` inside ``PrettyAttr``
    means pre-rendered text and would otherwise print without quotes.
    """
    if isinstance(value, str):
        return repr(value)
    if type(value) is list:
        value = PrettyList(value)
    elif isinstance(value, dict) and not isinstance(value, PrettyRepr):
        value = PrettyDict(value)
    if isinstance(value, PrettyDict):
        return _BracesView(value)
    return value


class _BracesView(PrettyRepr):
    """Prints a :class:`PrettyDict` compactly as ``{key: value, ...}`` inside another repr."""

    __slots__ = ("mapping",)

    def __init__(self, mapping):
        self.mapping = mapping

    def __pretty_repr__(self):
        yield PrettyType("", value_sep=": ", start="{", end="}")
        for key, value in self.mapping.items():
            yield PrettyAttr(repr(key), _nested_view(value))


# --- PrettyObject ------------------------------------------------------------------------------


def _object_header(node) -> Iterator[PrettyType]:
    yield PrettyType(type(node), value_sep="=", start="(", end=")")


def _object_fields(node) -> Iterator[PrettyAttr]:
    hook = getattr(node, "__pretty_repr_item__", None)
    fields = dict(getattr(node, "__dict__", {}))
    if not fields:
        fields = dict(_public_fields(node))
    for key, value in fields.items():
        if hook is not None:
            item = hook(key, value)
            if item is None:
                continue
            key, value = item
        if key is None:
            continue
        yield PrettyAttr(key, _nested_view(value))


class PrettyObject(PrettyRepr):
    """Base class whose ``repr`` lists the instance attributes, one per line.

    Override :meth:`__pretty_repr_item__` to rename or hide attributes.

    Examples
    --------
    >>> class Cfg(PrettyObject):
    ...     def __init__(self):
    ...         self.lr = 0.1
    ...         self.layers = [64, 32]
    ...         self._cache = None
    ...     def __pretty_repr_item__(self, key, value):
    ...         return None if key.startswith('_') else (key, value)
    >>> print(Cfg())
    Cfg(
      lr=0.1,
      layers=[
        64,
        32
      ]
    )
    """

    __module__ = _MODULE

    def __pretty_repr__(self) -> Iterator[Union[PrettyType, PrettyAttr]]:
        yield from yield_unique_pretty_repr_items(self, _object_header, _object_fields)

    def __pretty_repr_item__(self, key: Any, value: Any) -> Optional[Tuple[Any, Any]]:
        """Return the ``(key, value)`` to print for an attribute, or ``None`` to hide it."""
        return key, value


# --- PrettyDict --------------------------------------------------------------------------------


def _dict_header(node) -> Iterator[PrettyType]:
    yield PrettyType(type(node), value_sep=": ", start="({", end="})")


def _dict_fields(node) -> Iterator[PrettyAttr]:
    for key, value in node.items():
        yield PrettyAttr(repr(key), _nested_view(value))


class PrettyDict(dict, PrettyRepr):
    """A ``dict`` with a pretty ``repr`` and attribute access to its keys.

    Subclasses provide :meth:`split`, :meth:`filter` and :meth:`merge`; here they raise
    ``NotImplementedError``.

    Notes
    -----
    Differs from upstream: a missing attribute raises ``AttributeError`` (upstream raised
    ``KeyError``), so ``hasattr`` and ``getattr(d, k, default)`` behave; ``PrettyDict`` itself is
    a JAX pytree (values in insertion order).

    Examples
    --------
    >>> d = PrettyDict({'w': 1, 'b': {'x': 2}})
    >>> d.w
    1
    >>> print(d)
    PrettyDict({
      'w': 1,
      'b': {
        'x': 2
      }
    })
    """

    __module__ = _MODULE

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute or key {key!r}."
            ) from None

    def __repr__(self) -> str:
        return pretty_repr_object(self)

    def __pretty_repr__(self) -> Iterator[Union[PrettyType, PrettyAttr]]:
        yield from yield_unique_pretty_repr_items(self, _dict_header, _dict_fields)

    def to_dict(self) -> dict:
        """Return the items as a plain ``dict`` (one level)."""
        return dict(self)

    def treefy_state(self):
        """Return a copy with every state replaced by its ``to_state_ref()`` reference."""

        def ref(x):
            to_ref = getattr(type(x), "to_state_ref", None)
            return x.to_state_ref() if to_ref is not None else x

        def is_state(x):
            return getattr(type(x), "to_state_ref", None) is not None

        return jtu.tree_map(ref, self, is_leaf=is_state)

    def split(self, *filters):
        """Split by filters; implemented by subclasses."""
        raise NotImplementedError(f"{type(self).__name__} does not implement split().")

    def filter(self, *filters):
        """Keep the entries matching filters; implemented by subclasses."""
        raise NotImplementedError(f"{type(self).__name__} does not implement filter().")

    def merge(self, *states):
        """Merge several mappings; implemented by subclasses."""
        raise NotImplementedError(f"{type(self).__name__} does not implement merge().")

    def subset(self, *filters):
        """Alias of :meth:`filter`."""
        return self.filter(*filters)


def _pdict_flatten_with_keys(d):
    return tuple((jtu.DictKey(k), v) for k, v in d.items()), tuple(d.keys())


jtu.register_pytree_with_keys(
    PrettyDict,
    _pdict_flatten_with_keys,
    lambda keys, values: PrettyDict(zip(keys, values)),
    flatten_func=lambda d: (tuple(d.values()), tuple(d.keys())),
)


# --- PrettyList --------------------------------------------------------------------------------


def _list_header(node) -> Iterator[PrettyType]:
    yield PrettyType("", value_sep="", start="[", end="]")


def _list_fields(node) -> Iterator[PrettyAttr]:
    for value in node:
        yield PrettyAttr("", _nested_view(value))


@jtu.register_pytree_node_class
class PrettyList(list, PrettyRepr):
    """A ``list`` with a pretty ``repr``; a JAX pytree whose children are its items.

    Examples
    --------
    >>> print(PrettyList([1, {'a': 2}]))
    [
      1,
      {
        'a': 2
      }
    ]
    """

    __module__ = _MODULE

    def __repr__(self) -> str:
        return pretty_repr_object(self)

    def __pretty_repr__(self) -> Iterator[Union[PrettyType, PrettyAttr]]:
        yield from yield_unique_pretty_repr_items(self, _list_header, _list_fields)

    def tree_flatten(self):
        return list(self), None

    @classmethod
    def tree_unflatten(cls, aux, children) -> "PrettyList":
        return cls(children)
