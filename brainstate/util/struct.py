"""Immutable PyTree containers: JAX-registered dataclasses and :class:`FrozenDict`.

* :func:`dataclass` / :class:`PyTreeNode` make frozen dataclasses that are JAX pytrees; fields
  declared with ``field(pytree_node=False)`` are static metadata instead of children.
* :class:`FrozenDict` is an immutable mapping (nested dicts frozen too) registered as a pytree;
  :func:`freeze`, :func:`unfreeze`, :func:`copy` and :func:`pop` work on it and on plain dicts.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> @dataclass
... class Linear:
...     w: jax.Array
...     name: str = field(pytree_node=False, default='fc')
>>> layer = Linear(jnp.ones(2))
>>> jax.tree.leaves(layer)
[Array([1., 1.], dtype=float32)]
>>> layer.replace(name='out').name
'out'
"""

from __future__ import annotations

import dataclasses
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any, Optional, TypeVar, dataclass_transform

from jax import tree_util as jtu

__all__ = [
    "field",
    "is_dataclass",
    "dataclass",
    "PyTreeNode",
    "FrozenDict",
    "freeze",
    "unfreeze",
    "copy",
    "pop",
    "pretty_repr",
]

_MODULE = "brainstate.util"
_MARK = "_brainstate_dataclass"
T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


def _public(obj):
    obj.__module__ = _MODULE
    return obj


@_public
def field(pytree_node: bool = True, **kwargs) -> Any:
    """Declare a dataclass field; ``pytree_node=False`` makes it static metadata.

    Parameters
    ----------
    pytree_node : bool, default True
        Whether the field is a pytree child (seen by ``jax.tree`` functions and transforms).
    **kwargs
        Passed on to :func:`dataclasses.field` (``default``, ``default_factory``, ...).

    Returns
    -------
    dataclasses.Field
        The field, with ``metadata['pytree_node']`` set.
    """
    metadata = dict(kwargs.pop("metadata", None) or {})
    metadata["pytree_node"] = pytree_node
    return dataclasses.field(metadata=metadata, **kwargs)


@_public
def is_dataclass(obj: Any) -> bool:
    """Return whether ``obj`` (a class or an instance) was made by :func:`dataclass`."""
    cls = obj if isinstance(obj, type) else type(obj)
    return _MARK in cls.__dict__


def _replace(self, **updates):
    """Return a copy with the given fields replaced."""
    return dataclasses.replace(self, **updates)


@_public
@dataclass_transform(field_specifiers=(field,))
def dataclass(cls: Optional[type] = None, **kwargs):
    """Make ``cls`` a frozen dataclass registered as a JAX pytree, with a ``replace`` method.

    Fields are pytree children unless declared with ``field(pytree_node=False)``. Usable bare
    (``@dataclass``) or with arguments (``@dataclass(frozen=False)``).

    Parameters
    ----------
    cls : type
        The class to convert.
    **kwargs
        Passed to :func:`dataclasses.dataclass`; ``frozen`` defaults to ``True``.

    Returns
    -------
    type
        The converted class (a class converted already is returned unchanged).

    Notes
    -----
    Differs from upstream: also usable with arguments, ``@dataclass(frozen=False)``.
    """
    if cls is None:
        return lambda c: dataclass(c, **kwargs)
    if is_dataclass(cls):
        return cls
    kwargs.setdefault("frozen", True)
    cls = dataclasses.dataclass(**kwargs)(cls)
    data: list[str] = []
    meta: list[str] = []
    for f in dataclasses.fields(cls):
        (data if f.metadata.get("pytree_node", True) else meta).append(f.name)
    if "replace" not in cls.__dict__:
        setattr(cls, "replace", _replace)
    jtu.register_dataclass(cls, data_fields=data, meta_fields=meta)
    setattr(cls, _MARK, True)
    return cls


@dataclass_transform(field_specifiers=(field,))
class PyTreeNode:
    """Base class: every subclass becomes a frozen pytree :func:`dataclass`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> class Layer(PyTreeNode):
    ...     w: jnp.ndarray
    ...     act: str = field(pytree_node=False, default='relu')
    >>> Layer(jnp.zeros(2)).replace(act='tanh').act
    'tanh'
    """

    __module__ = _MODULE

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__()
        dataclass(cls, **kwargs)

    def replace(self, **updates):
        """Return a copy with the given fields replaced."""
        return dataclasses.replace(self, **updates)


# --- FrozenDict --------------------------------------------------------------------------------


def _freeze_value(value):
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, dict):
        return FrozenDict(value)
    return value


@jtu.register_pytree_with_keys_class
class FrozenDict(Mapping):
    """An immutable mapping; nested ``dict`` objects are frozen too. A JAX pytree (keys sorted).

    "Modifying" methods return new objects: ``copy(add_or_replace)`` and ``pop(key)``.

    Examples
    --------
    >>> fd = FrozenDict({'a': 1, 'b': {'c': 2}})
    >>> fd['b']['c'], isinstance(fd['b'], FrozenDict)
    (2, True)
    >>> fd2, value = fd.pop('a')
    >>> value, 'a' in fd2, 'a' in fd
    (1, False, True)
    """

    __module__ = _MODULE
    __slots__ = ("_data", "_hash")
    _data: dict
    _hash: int | None

    def __init__(self, *args, **kwargs):
        data = dict(*args, **kwargs)
        object.__setattr__(self, "_data", {k: _freeze_value(v) for k, v in data.items()})
        object.__setattr__(self, "_hash", None)

    def __setattr__(self, name, value):
        raise AttributeError(f"FrozenDict is immutable; cannot set attribute {name!r}.")

    def __getitem__(self, key):
        return self._data[key]

    def __setitem__(self, key, value):
        raise TypeError("FrozenDict does not support item assignment; use "
                        "fd.copy({key: value}) to get an updated copy.")

    def __delitem__(self, key):
        raise TypeError("FrozenDict does not support item deletion; use fd.pop(key) to get "
                        "a copy without the key.")

    def __contains__(self, key) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def keys(self) -> KeysView:
        return KeysView(self)

    def values(self) -> ValuesView:
        return ValuesView(self)

    def items(self) -> ItemsView:
        return ItemsView(self)

    def __eq__(self, other) -> bool:
        if isinstance(other, FrozenDict):
            return self._data == other._data
        if isinstance(other, dict):
            return self._data == other
        return NotImplemented

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            try:
                h = hash(frozenset(self._data.items()))
            except TypeError as e:
                raise TypeError(f"FrozenDict is hashable only when its values are: {e}.") from None
            object.__setattr__(self, "_hash", h)
        return h

    def __reduce__(self):
        return (FrozenDict, (unfreeze(self),))

    def __repr__(self) -> str:
        return self.pretty_repr()

    def copy(self, add_or_replace: Optional[Mapping] = None) -> "FrozenDict":
        """Return a new ``FrozenDict`` with ``add_or_replace`` applied."""
        return type(self)({**self._data, **(add_or_replace or {})})

    def pop(self, key) -> tuple["FrozenDict", Any]:
        """Return ``(copy without key, value)``.

        Raises
        ------
        KeyError
            If ``key`` is missing.
        """
        if key not in self._data:
            raise KeyError(key)
        rest = dict(self._data)
        value = rest.pop(key)
        return type(self)(rest), value

    def unfreeze(self) -> dict:
        """Return plain nested ``dict`` objects."""
        return unfreeze(self)

    def pretty_repr(self, indent: int = 2) -> str:
        """Return an indented ``FrozenDict({...})`` text."""
        return f"FrozenDict({_format_mapping(self._data, 0, indent)})"

    def tree_flatten_with_keys(self):
        keys = _sorted_keys(self._data)
        return [(jtu.DictKey(k), self._data[k]) for k in keys], keys

    @classmethod
    def tree_unflatten(cls, keys, values) -> "FrozenDict":
        out = cls.__new__(cls)
        object.__setattr__(out, "_data", dict(zip(keys, values)))
        object.__setattr__(out, "_hash", None)
        return out


def _sorted_keys(d: dict) -> tuple:
    try:
        return tuple(sorted(d))
    except TypeError:  # keys Python cannot order against each other
        return tuple(sorted(d, key=lambda k: (type(k).__qualname__, repr(k))))


def _format_mapping(d: Mapping, level: int, indent: int) -> str:
    if not d:
        return "{}"
    pad = " " * (level + 1) * indent
    lines = []
    for k, v in d.items():
        text = _format_mapping(v, level + 1, indent) if isinstance(v, Mapping) else repr(v)
        lines.append(f"{pad}{k!r}: {text}")
    return "{\n" + ",\n".join(lines) + "\n" + " " * level * indent + "}"


@_public
def freeze(x: Mapping) -> FrozenDict:
    """Return ``x`` as a :class:`FrozenDict` (itself when it already is one)."""
    return x if isinstance(x, FrozenDict) else FrozenDict(x)


@_public
def unfreeze(x):
    """Return plain nested ``dict`` objects for a :class:`FrozenDict` or ``dict``; other values as is."""
    if isinstance(x, (FrozenDict, dict)):
        return {k: unfreeze(v) for k, v in x.items()}
    return x


def _check_dict(fname: str, x) -> None:
    if not isinstance(x, (FrozenDict, dict)):
        raise TypeError(f"{fname} expects a FrozenDict or dict, got {type(x).__name__}.")


@_public
def copy(x, add_or_replace: Optional[Mapping] = None):
    """Return a copy of a :class:`FrozenDict` or ``dict`` (same kind) with updates applied.

    Raises
    ------
    TypeError
        If ``x`` is neither.
    """
    _check_dict("copy", x)
    if isinstance(x, FrozenDict):
        return x.copy(add_or_replace)
    return {**x, **(add_or_replace or {})}


@_public
def pop(x, key):
    """Return ``(copy of x without key, value)`` for a :class:`FrozenDict` or ``dict``.

    Raises
    ------
    TypeError
        If ``x`` is neither.
    KeyError
        If ``key`` is missing.
    """
    _check_dict("pop", x)
    if isinstance(x, FrozenDict):
        return x.pop(key)
    rest = dict(x)
    value = rest.pop(key)
    return rest, value


@_public
def pretty_repr(x: Any, indent: int = 2) -> str:
    """Return an indented text of a mapping (nested levels too), or ``repr(x)`` otherwise.

    Examples
    --------
    >>> print(pretty_repr({'a': 1, 'b': {'c': 2}}))
    {
      'a': 1,
      'b': {
        'c': 2
      }
    }
    """
    if isinstance(x, FrozenDict):
        return x.pretty_repr(indent)
    if isinstance(x, Mapping):
        return _format_mapping(x, 0, indent)
    return repr(x)
