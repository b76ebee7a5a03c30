"""Named collections: :class:`DictManager` and its state-holding subclass :class:`StateDictManager`.

Both are ``dict`` subclasses registered as JAX pytrees (values are the children, keys the
auxiliary data, insertion order kept). Every subclass is registered too, so a user's
``class MyManager(DictManager)`` is a pytree of its values rather than an opaque leaf.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jax import tree_util as jtu

__all__ = ["DictManager", "StateDictManager"]


def _flatten(d):
    return tuple(d.values()), tuple(d.keys())


def _flatten_with_keys(d):
    return tuple((jtu.DictKey(k), v) for k, v in d.items()), tuple(d.keys())


def _register(cls) -> None:
    def unflatten(keys, values):
        return cls(zip(keys, values))

    jtu.register_pytree_with_keys(cls, _flatten_with_keys, unflatten, flatten_func=_flatten)


def _check_by(by: str) -> None:
    if by not in ("id", "value"):
        raise ValueError(f"Unsupported method: by={by!r}. Use by='id' (identity) or by='value' (==).")


def _member_test(values: Iterable, by: str) -> Callable[[Any], bool]:
    _check_by(by)
    if by == "id":
        ids = {id(v) for v in values}
        return lambda x: id(x) in ids
    pool = list(values)
    try:
        hashed = set(pool)
    except TypeError:  # unhashable values (arrays, lists): fall back to == one by one
        return lambda x: any(x is v or x == v for v in pool)
    return lambda x: x in hashed


class DictManager(dict):
    """A ``dict`` with helpers to select, split and combine a collection of objects.

    Registered as a JAX pytree: the values are the children (insertion order) and the keys are
    the auxiliary data.

    Examples
    --------
    >>> dm = DictManager(a=1, b=2.0, c='x')
    >>> dm.subset(int)
    DictManager({'a': 1})
    >>> ints, floats, rest = dm.split(int, float)
    >>> rest
    DictManager({'c': 'x'})
    """

    __module__ = "brainstate.util"
    # Identity index of values for add_unique_value; None means "rebuild before use". Every
    # dict mutator below drops it, so it can never miss a value stored some other way.
    __slots__ = ("_value_index",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._value_index = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _register(cls)

    # --- mutators that invalidate the identity index ---

    def __setitem__(self, key, value):
        self._value_index = None
        dict.__setitem__(self, key, value)

    def __delitem__(self, key):
        self._value_index = None
        dict.__delitem__(self, key)

    def pop(self, *args):
        self._value_index = None
        return dict.pop(self, *args)

    def popitem(self):
        self._value_index = None
        return dict.popitem(self)

    def clear(self):
        self._value_index = None
        dict.clear(self)

    def update(self, *args, **kwargs):
        self._value_index = None
        dict.update(self, *args, **kwargs)

    def setdefault(self, key, default=None):
        self._value_index = None
        return dict.setdefault(self, key, default)

    def __ior__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        self.update(other)
        return self

    # --- element checks (subclasses validate) ---

    def _check_elem(self, elem: Any) -> None:
        """Validate an element added through ``add_unique_key``/``add_unique_value`` (no-op here)."""

    def add_unique_key(self, key, val) -> None:
        """Store ``val`` under ``key`` unless ``key`` already holds a different object.

        Parameters
        ----------
        key : hashable
            The key.
        val : object
            The value; storing the very same object again is a no-op.

        Raises
        ------
        ValueError
            If ``key`` is already bound to another object.
        """
        self._check_elem(val)
        if key in self:
            existing = dict.__getitem__(self, key)
            if existing is not val:
                raise ValueError(
                    f"Key {key!r} already exists with a different value. Existing: {existing!r}, "
                    f"new: {val!r}. Use another key, or assign with d[key] = val to replace it."
                )
        else:
            self[key] = val

    def add_unique_value(self, key, val) -> bool:
        """Store ``val`` under ``key`` only if the same object is not stored under any key.

        Parameters
        ----------
        key : hashable
            The key.
        val : object
            The value, compared by identity.

        Returns
        -------
        bool
            ``True`` if it was stored, ``False`` if the object was already present.
        """
        self._check_elem(val)
        index = getattr(self, "_value_index", None)
        if index is None:
            index = {}
            for k, v in self.items():
                index.setdefault(id(v), k)
        if id(val) in index:
            self._value_index = index
            return False
        replaced = key in self
        dict.__setitem__(self, key, val)
        index[id(val)] = key
        # Overwriting a key may drop the old value's last occurrence: let the next call rebuild.
        self._value_index = None if replaced else index
        return True

    # --- selections ---

    def subset(self, sep) -> DictManager:
        """Return the items whose value is an instance of ``sep`` (or satisfies it, if callable).

        Parameters
        ----------
        sep : type, tuple of types, or callable
            A class or classes for ``isinstance``, or a predicate ``sep(value) -> bool``.

        Returns
        -------
        DictManager
            A new manager of the same type.
        """
        if callable(sep) and not isinstance(sep, type):
            return type(self)((k, v) for k, v in self.items() if sep(v))
        _check_types(sep, "subset")
        return type(self)((k, v) for k, v in self.items() if isinstance(v, sep))

    def not_subset(self, sep) -> DictManager:
        """Return the items whose value is not an instance of ``sep``.

        Parameters
        ----------
        sep : type or tuple of types
            The classes to exclude.

        Returns
        -------
        DictManager
            A new manager of the same type.
        """
        _check_types(sep, "not_subset")
        return type(self)((k, v) for k, v in self.items() if not isinstance(v, sep))

    def unique(self) -> DictManager:
        """Return a copy keeping only the first key of each distinct (by identity) value.

        Returns
        -------
        DictManager
            A new manager of the same type.
        """
        seen = set()
        out = type(self)()
        for k, v in self.items():
            if id(v) not in seen:
                seen.add(id(v))
                dict.__setitem__(out, k, v)
        return out

    def unique_(self) -> DictManager:
        """Drop, in place, every key whose value (by identity) appeared under an earlier key.

        Returns
        -------
        DictManager
            ``self``.
        """
        seen = set()
        duplicates = []
        for k, v in self.items():
            if id(v) in seen:
                duplicates.append(k)
            else:
                seen.add(id(v))
        for k in duplicates:
            del self[k]
        return self

    def assign(self, *args: Mapping, **kwargs) -> None:
        """Update in place from dicts and keyword arguments.

        Parameters
        ----------
        *args : dict
            Dicts merged in order.
        **kwargs
            Extra items.

        Raises
        ------
        TypeError
            If a positional argument is not a ``dict``.
        """
        for arg in args:
            if not isinstance(arg, dict):
                raise TypeError(
                    f"Must be an instance of dict. {type(self).__name__}.assign got "
                    f"{type(arg).__qualname__}; pass dicts (or keyword arguments)."
                )
        for arg in args:
            self.update(arg)
        if kwargs:
            self.update(kwargs)

    def split(self, *types) -> tuple:
        """Partition by value type: one manager per type (first match wins) plus the rest.

        Parameters
        ----------
        *types : type or tuple of types
            The classes to split by.

        Returns
        -------
        tuple of DictManager
            ``len(types) + 1`` managers of the same type; the last holds unmatched items.
        """
        for t in types:
            _check_types(t, "split")
        results = tuple(type(self)() for _ in range(len(types) + 1))
        pairs = tuple(zip(types, results))
        rest = results[-1]
        for k, v in self.items():
            for t, bucket in pairs:
                if isinstance(v, t):
                    dict.__setitem__(bucket, k, v)
                    break
            else:
                dict.__setitem__(rest, k, v)
        return results

    def filter_by_predicate(self, predicate: Callable[[Any, Any], bool]) -> DictManager:
        """Return the items for which ``predicate(key, value)`` is true.

        Parameters
        ----------
        predicate : callable
            ``predicate(key, value) -> bool``.

        Returns
        -------
        DictManager
            A new manager of the same type.
        """
        return type(self)((k, v) for k, v in self.items() if predicate(k, v))

    def map_values(self, func: Callable[[Any], Any]) -> DictManager:
        """Return a manager with ``func(value)`` under each key.

        Parameters
        ----------
        func : callable
            Applied to every value.

        Returns
        -------
        DictManager
            A new manager of the same type.
        """
        return type(self)((k, func(v)) for k, v in self.items())

    def map_keys(self, func: Callable[[Any], Any]) -> DictManager:
        """Return a manager with each value under ``func(key)``.

        Parameters
        ----------
        func : callable
            Applied to every key.

        Returns
        -------
        DictManager
            A new manager of the same type.

        Raises
        ------
        ValueError
            If two keys map to the same new key.
        """
        out = type(self)()
        origin: dict[Any, Any] = {}
        for k, v in self.items():
            new_key = func(k)
            if new_key in origin:
                raise ValueError(
                    f"Key transformation created duplicate: {new_key!r} (from {origin[new_key]!r} "
                    f"and {k!r}). Make func injective."
                )
            origin[new_key] = k
            dict.__setitem__(out, new_key, v)
        return out

    def pop_by_keys(self, keys: Iterable) -> None:
        """Remove, in place, every item whose key is in ``keys`` (absent keys are ignored).

        Parameters
        ----------
        keys : iterable
            Keys to remove.
        """
        for k in set(keys):
            if k in self:
                del self[k]

    def pop_by_values(self, values: Iterable, by: str = "id") -> None:
        """Remove, in place, every item whose value is in ``values``.

        Parameters
        ----------
        values : iterable
            Values to remove.
        by : {'id', 'value'}, default 'id'
            Compare by identity or by equality.

        Raises
        ------
        ValueError
            If ``by`` is neither ``'id'`` nor ``'value'``.
        """
        member = _member_test(values, by)
        for k in [k for k, v in self.items() if member(v)]:
            del self[k]

    def difference_by_keys(self, keys: Iterable) -> DictManager:
        """Return the items whose key is not in ``keys``.

        Parameters
        ----------
        keys : iterable
            Keys to leave out.

        Returns
        -------
        DictManager
            A new manager of the same type.
        """
        keys = set(keys)
        return type(self)((k, v) for k, v in self.items() if k not in keys)

    def difference_by_values(self, values: Iterable, by: str = "id") -> DictManager:
        """Return the items whose value is not in ``values``.

        Parameters
        ----------
        values : iterable
            Values to leave out.
        by : {'id', 'value'}, default 'id'
            Compare by identity or by equality.

        Returns
        -------
        DictManager
            A new manager of the same type.
        """
        member = _member_test(values, by)
        return type(self)((k, v) for k, v in self.items() if not member(v))

    def intersection_by_keys(self, keys: Iterable) -> DictManager:
        """Return the items whose key is in ``keys``.

        Parameters
        ----------
        keys : iterable
            Keys to keep.

        Returns
        -------
        DictManager
            A new manager of the same type.
        """
        keys = set(keys)
        return type(self)((k, v) for k, v in self.items() if k in keys)

    def intersection_by_values(self, values: Iterable, by: str = "id") -> DictManager:
        """Return the items whose value is in ``values``.

        Parameters
        ----------
        values : iterable
            Values to keep.
        by : {'id', 'value'}, default 'id'
            Compare by identity or by equality.

        Returns
        -------
        DictManager
            A new manager of the same type.
        """
        member = _member_test(values, by)
        return type(self)((k, v) for k, v in self.items() if member(v))

    # --- combination, conversion, copying ---

    def __add__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        out = type(self)(self)
        out.update(other)
        return out

    __or__ = __add__

    def to_dict(self) -> dict:
        """Return a plain ``dict`` with the same items.

        Returns
        -------
        dict
            A shallow copy.
        """
        return dict(self)

    def copy(self) -> DictManager:
        """Return a shallow copy of the same type.

        Returns
        -------
        DictManager
            A new manager with the same items.
        """
        return type(self)(self)

    __copy__ = copy

    def __deepcopy__(self, memo) -> DictManager:
        out = type(self)()
        memo[id(self)] = out
        for k, v in self.items():
            dict.__setitem__(out, copy.deepcopy(k, memo), copy.deepcopy(v, memo))
        return out

    def __reduce__(self):
        # The identity index holds id()s, meaningless after unpickling: rebuild from items only.
        return (type(self), (dict(self),))

    def __repr__(self) -> str:
        items = ", ".join(f"{k!r}: {v!r}" for k, v in self.items())
        return f"{type(self).__name__}({{{items}}})"


def _check_types(sep, where: str) -> None:
    ok = isinstance(sep, type) or (
        isinstance(sep, tuple) and all(isinstance(t, type) for t in sep)
    )
    if not ok:
        raise TypeError(
            f"DictManager.{where} expects a class or a tuple of classes, got {sep!r} "
            f"({type(sep).__qualname__})."
        )


_register(DictManager)


class StateDictManager(DictManager):
    """A :class:`DictManager` of named ``State`` objects, with helpers over their values.

    Values are validated only when added through :meth:`add_unique_key` /
    :meth:`add_unique_value`; plain item assignment stores anything.

    Examples
    --------
    >>> import brainstate, jax.numpy as jnp
    >>> sm = StateDictManager(w=brainstate.ParamState(jnp.zeros(2)))
    >>> sm.assign_values({'w': jnp.ones(2)})
    >>> sm.to_dict_values()['w']
    Array([1., 1.], dtype=float32)
    """

    __module__ = "brainstate"
    __slots__ = ()

    def _check_elem(self, elem: Any) -> None:
        from brainstate._state import State

        if not isinstance(elem, State):
            raise TypeError(
                f"{type(self).__name__} elements must be instance of State, got "
                f"{type(elem).__qualname__} ({elem!r}). Wrap the value, e.g. "
                "brainstate.State(value)."
            )

    def assign_values(self, *args: Mapping) -> None:
        """Write ``self[key].value = value`` for every item of the given dicts.

        All arguments and keys are checked before anything is written.

        Parameters
        ----------
        *args : dict
            ``{key: new value}`` dicts, applied in order.

        Raises
        ------
        TypeError
            If an argument is not a ``dict``.
        KeyError
            If a key is not in this manager.
        """
        for arg in args:
            if not isinstance(arg, dict):
                raise TypeError(
                    f"Must be an instance of dict. {type(self).__name__}.assign_values got "
                    f"{type(arg).__qualname__}; pass {{key: value}} dicts."
                )
            for k in arg:
                if k not in self:
                    raise KeyError(
                        f"{k!r} is not a key of this {type(self).__name__}; known keys: "
                        f"{list(self)[:10]!r}. assign_values only writes existing states."
                    )
        for arg in args:
            for k, v in arg.items():
                self[k].value = v

    def split_values(self, *types) -> tuple:
        """Partition the states' *values* by state type (first match wins), plus the rest.

        Parameters
        ----------
        *types : type or tuple of types
            State classes to split by.

        Returns
        -------
        tuple of DictManager
            ``len(types) + 1`` managers of values; the last holds unmatched states' values.
        """
        return tuple(part.collect_values() for part in DictManager.split(self, *types))

    def collect_values(self) -> DictManager:
        """Return a :class:`DictManager` of every state's current value.

        Returns
        -------
        DictManager
            ``{key: state.value}``.
        """
        return DictManager((k, v.value) for k, v in self.items())

    def to_dict_values(self) -> dict:
        """Return a plain dict of every state's current value.

        Returns
        -------
        dict
            ``{key: state.value}``.
        """
        return {k: v.value for k, v in self.items()}

    def split(self, first, *others) -> tuple:
        """Partition the states by type (first match wins), plus the rest.

        Parameters
        ----------
        first, *others : type or tuple of types
            State classes to split by.

        Returns
        -------
        tuple of StateDictManager
            ``len(others) + 2`` managers; the last holds unmatched states.
        """
        return DictManager.split(self, first, *others)
