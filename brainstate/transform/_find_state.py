"""``StateFinder``: which states does a function read or write?"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Sequence

from brainstate._state import State
from brainstate.transform._make_jaxpr import StatefulFunction
from brainstate.util.filter import to_predicate

__all__ = ["StateFinder"]

_USAGES = ("all", "read", "write", "both")
_RETURN_TYPES = ("dict", "list", "tuple")
_KEYS = ("index", "name", "path")


def _graph_paths(fn: Any) -> dict:
    """``{id(state): path}`` for the states of the module ``fn`` is (or is a method of)."""
    from brainstate import graph

    owner = getattr(fn, "__self__", fn)
    if not isinstance(owner, graph.Node):
        return {}
    try:
        found = graph.states(owner)
    except Exception:  # a node graph.states cannot walk: fall back to no paths
        return {}
    return {id(st): tuple(path) for path, st in found.items()}


class StateFinder:
    """Find the states a function touches, filtered, as a dict, list or tuple.

    The function is traced abstractly (nothing runs, no state changes) for the arguments
    given to :meth:`find`; the states it reads and writes come back in first-access order.

    Parameters
    ----------
    fn : callable
        The function, a module, or a module's method.
    filter : filter, optional
        Which states to keep (see :mod:`brainstate.util.filter`): a state class, a tag string,
        a predicate ``(path, state) -> bool``, ... The path is the state's attribute path in
        the module when ``fn`` is a module or one of its methods, else ``()``.
    usage : {'all', 'read', 'write', 'both'}
        All states, those only read, those written, or ``{'read': ..., 'write': ...}``.
    return_type : {'dict', 'list', 'tuple'}
        The container; with ``'both'`` it is used for each of the two entries.
    key_fn : callable or {'index', 'name', 'path'}, optional
        Dict keys: ``key_fn(index, state)``, or the position (default), the state's name, or
        its path in the module (a ``'.'``-joined string). A missing or repeated key falls back
        to the state's name, then ``state_<index>``, with ``_1``, ``_2``, ... appended to keep
        keys unique.

    Raises
    ------
    ValueError
        If ``usage``, ``return_type`` or a string ``key_fn`` is not one of the choices.
    TypeError
        If ``fn`` is not callable.

    Notes
    -----
    Differs from upstream: ``key_fn`` also takes ``'index'``, ``'name'`` or ``'path'``, and
    filters see the state's path in a module instead of an empty one.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> w = brainstate.ParamState(jnp.ones(()), name="w")
    >>> n = brainstate.State(jnp.zeros(()), name="n")
    >>> def step(x):
    ...     n.value = n.value + 1
    ...     return w.value * x
    >>> finder = brainstate.transform.StateFinder(step, usage="both", key_fn="name")
    >>> {k: list(v) for k, v in finder(2.0).items()}
    {'read': ['w'], 'write': ['n']}
    >>> params = brainstate.transform.StateFinder(step, brainstate.ParamState, return_type="list")
    >>> params(2.0)[0] is w
    True
    """

    __module__ = "brainstate.transform"

    def __init__(self, fn: Callable, filter: Any = None, *, usage: str = "all",
                 return_type: str = "dict", key_fn: Any = None) -> None:
        if not callable(fn):
            raise TypeError(f"StateFinder needs a callable, got {type(fn).__name__}.")
        if usage not in _USAGES:
            raise ValueError(f"StateFinder: invalid usage {usage!r}; expected one of {_USAGES}.")
        if return_type not in _RETURN_TYPES:
            raise ValueError(f"StateFinder: invalid return_type {return_type!r}; expected one "
                             f"of {_RETURN_TYPES}.")
        if isinstance(key_fn, str) and key_fn not in _KEYS:
            raise ValueError(f"StateFinder: invalid key_fn {key_fn!r}; expected a callable "
                             f"key_fn(index, state) or one of {_KEYS}.")
        if key_fn is not None and not isinstance(key_fn, str) and not callable(key_fn):
            raise TypeError(f"StateFinder: key_fn must be a callable or one of {_KEYS}, got "
                            f"{type(key_fn).__name__}.")
        self.fn = fn
        self._usage = usage
        self._return_type = return_type
        self._key_fn = key_fn
        self._filter = None if filter is None else to_predicate(filter)
        self.stateful_fn = StatefulFunction(fn, name="StateFinder")
        self._paths: dict | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.find(*args, **kwargs)

    def find(self, *args: Any, **kwargs: Any) -> Any:
        """The states ``fn(*args, **kwargs)`` touches, selected and packed as configured."""
        self._paths = None  # the module may have changed since the last call
        if self._usage == "both":
            return {"read": self._format(self._collect("read", args, kwargs)),
                    "write": self._format(self._collect("write", args, kwargs))}
        return self._format(self._collect(self._usage, args, kwargs))

    def _path(self, st: State) -> tuple:
        if self._paths is None:
            self._paths = _graph_paths(self.fn)
        return self._paths.get(id(st), ())

    def _collect(self, usage: str, args: tuple, kwargs: dict) -> list:
        sf = self.stateful_fn
        get = {"all": sf.get_states, "read": sf.get_read_states,
               "write": sf.get_write_states}[usage]
        states = list(get(*args, **kwargs))
        if self._filter is not None:
            states = [st for st in states if self._filter(self._path(st), st)]
        return states

    def _format(self, states: Sequence[State]) -> Any:
        if self._return_type == "list":
            return list(states)
        if self._return_type == "tuple":
            return tuple(states)
        out: dict = {}
        for i, st in enumerate(states):
            key = self._ensure_unique_key(self._ensure_hashable(self._key(i, st)), i, st,
                                          set(out))
            out[key] = st
        return out

    def _key(self, i: int, st: State) -> Any:
        key_fn = self._key_fn
        if key_fn is None or key_fn == "index":
            return i
        if key_fn == "name":
            return st.name
        if key_fn == "path":
            path = self._path(st)
            return ".".join(map(str, path)) if path else None
        return key_fn(i, st)

    @staticmethod
    def _ensure_hashable(key: Any) -> Hashable:
        """``key``, or its ``str`` when it cannot be hashed."""
        try:
            hash(key)
        except TypeError:
            return str(key)
        return key

    @staticmethod
    def _ensure_unique_key(key: Hashable, idx: int, state: State, used: set) -> Hashable:
        """``key`` unless None or taken; then the state's name or ``state_<idx>``, suffixed."""
        if key is not None and key not in used:
            return key
        name = getattr(state, "name", None)
        base = name if name not in (None, "") else f"state_{idx}"
        candidate, n = base, 1
        while candidate in used:
            candidate = f"{base}_{n}"
            n += 1
        return candidate
