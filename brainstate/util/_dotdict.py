""":class:`DotDict`: a ``dict`` whose keys are also attributes, nested dicts included."""

from __future__ import annotations

import copy as _copy
from collections.abc import Iterable, Mapping

from jax import tree_util as jtu

__all__ = ["DotDict"]


def _flatten(d: "DotDict"):
    return tuple(d.values()), tuple(d.keys())


def _flatten_with_keys(d: "DotDict"):
    return tuple((jtu.DictKey(k), v) for k, v in d.items()), tuple(d.keys())


def _register(cls: type) -> None:
    def unflatten(keys, values):
        # Rebuilt children are already converted; bypass conversion so a round trip through
        # jax.tree.map gives back exactly the structure that went in.
        out = cls.__new__(cls)
        dict.update(out, zip(keys, values))
        return out

    jtu.register_pytree_with_keys(cls, _flatten_with_keys, unflatten, flatten_func=_flatten)


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


class DotDict(dict):
    """A ``dict`` with attribute access to its keys; nested ``dict`` values become ``DotDict``.

    ``d.key`` reads ``d['key']`` and ``d.key = v`` writes it. Dicts stored in a ``DotDict``
    (directly, or inside lists and tuples) are converted to ``DotDict`` on the way in, so
    ``d.model.layers`` works all the way down. A ``DotDict`` is a JAX pytree: its values are the
    children in insertion order, and subclasses are registered too.

    Parameters
    ----------
    *args
        Mappings, iterables of ``(key, value)`` pairs, or one ``(key, value)`` tuple.
    **kwargs
        More items.

    Notes
    -----
    Differs from upstream: reading a missing attribute raises ``AttributeError`` naming the
    key (so ``hasattr``/``getattr(d, k, default)`` work); dicts assigned after construction
    (``d.x = {...}``, ``d['x'] = {...}``) are converted too; namedtuples keep their type;
    ``|`` returns a ``DotDict``.

    Examples
    --------
    >>> cfg = DotDict({'model': {'layers': 3}}, lr=0.1)
    >>> cfg.model.layers, cfg.lr
    (3, 0.1)
    >>> cfg.model.units = 64
    >>> cfg['model']['units']
    64
    >>> cfg.to_dict()
    {'model': {'layers': 3, 'units': 64}, 'lr': 0.1}
    """

    __module__ = "brainstate.util"
    __slots__ = ()

    def __init__(self, *args, **kwargs):
        super().__init__()
        for arg in args:
            for key, value in self._pairs(arg):
                self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _register(cls)

    @staticmethod
    def _pairs(arg) -> Iterable:
        if isinstance(arg, Mapping):
            return arg.items()
        if isinstance(arg, tuple) and len(arg) == 2 and not isinstance(arg[0], tuple):
            return (arg,)  # a single (key, value) pair
        try:
            pairs = list(arg)
        except TypeError:
            raise TypeError(
                f"DotDict arguments must be mappings or iterables of (key, value) pairs, got "
                f"{type(arg).__name__}."
            ) from None
        for pair in pairs:
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TypeError(f"DotDict expected (key, value) pairs, got element {pair!r}.")
        return pairs

    @classmethod
    def _hook(cls, item):
        """Convert ``dict`` values (also inside lists and tuples) to this class."""
        if isinstance(item, dict):
            return item if isinstance(item, DotDict) else cls(item)
        if type(item) is list:
            return [cls._hook(v) for v in item]
        if type(item) is tuple:
            return tuple(cls._hook(v) for v in item)
        if _is_namedtuple(item):
            return type(item)(*(cls._hook(v) for v in item))
        return item

    # --- item and attribute access ---------------------------------------------------------

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, self._hook(value))

    def __getattr__(self, name: str):
        # Only reached when normal attribute lookup failed.
        try:
            return self[name]
        except KeyError:
            raise AttributeError(self._missing(name)) from None

    def __setattr__(self, name: str, value) -> None:
        if hasattr(type(self), name):
            raise AttributeError(
                f"Cannot set attribute {name!r} of {type(self).__name__}: it is a method or "
                f"class attribute. Use item syntax instead: d[{name!r}] = value."
            )
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(self._missing(name)) from None

    def _missing(self, name: str) -> str:
        keys = list(self.keys())
        shown = ", ".join(repr(k) for k in keys[:10]) + (", ..." if len(keys) > 10 else "")
        return (f"{type(self).__name__!r} object has no attribute or key {name!r}; "
                f"available keys: [{shown}].")

    def __dir__(self):
        return sorted(set(dir(type(self))) | {k for k in self.keys() if isinstance(k, str)})

    # --- dict methods ----------------------------------------------------------------------

    def setdefault(self, key, default=None):
        """Return ``self[key]``, storing ``default`` (converted) first if the key is missing."""
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args, **kwargs) -> None:
        """Update in place, merging nested mappings key by key instead of replacing them.

        Raises
        ------
        TypeError
            If more than one positional argument is given.
        """
        if len(args) > 1:
            raise TypeError(f"update expected at most 1 positional argument, got {len(args)}.")
        incoming: list = []
        for arg in args:
            incoming.extend(self._pairs(arg))
        incoming.extend(kwargs.items())
        for key, value in incoming:
            current = self.get(key)
            if isinstance(current, DotDict) and isinstance(value, Mapping):
                current.update(value)
            else:
                self[key] = value

    def __or__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        out = self.copy()
        for key, value in other.items():
            out[key] = value
        return out

    def __ior__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        for key, value in other.items():
            self[key] = value
        return self

    def copy(self) -> "DotDict":
        """Return a shallow copy of the same class (nested values are shared)."""
        out = type(self).__new__(type(self))
        dict.update(out, self)
        return out

    def __copy__(self) -> "DotDict":
        return self.copy()

    def deepcopy(self) -> "DotDict":
        """Return a deep copy."""
        return _copy.deepcopy(self)

    def __deepcopy__(self, memo) -> "DotDict":
        out = type(self).__new__(type(self))
        memo[id(self)] = out
        for key, value in self.items():
            dict.__setitem__(out, _copy.deepcopy(key, memo), _copy.deepcopy(value, memo))
        return out

    def __reduce__(self):
        return (type(self), (), None, None, iter(self.items()))

    def to_dict(self) -> dict:
        """Return plain ``dict`` objects all the way down (inside lists and tuples too)."""
        return {key: _to_plain(value) for key, value in self.items()}

    @classmethod
    def from_dict(cls, d: Mapping) -> "DotDict":
        """Build a ``DotDict`` from a mapping (nested dicts converted)."""
        return cls(d)

    def __repr__(self) -> str:
        items = ", ".join(f"{k!r}: {v!r}" for k, v in self.items())
        return f"{type(self).__name__}({{{items}}})"


def _to_plain(value):
    if isinstance(value, DotDict):
        return value.to_dict()
    if type(value) is list:
        return [_to_plain(v) for v in value]
    if type(value) is tuple:
        return tuple(_to_plain(v) for v in value)
    if _is_namedtuple(value):
        return type(value)(*(_to_plain(v) for v in value))
    return value


_register(DotDict)
