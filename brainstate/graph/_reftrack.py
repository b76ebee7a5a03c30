"""``RefMap``: a mutable mapping keyed by object identity."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

__all__ = ["RefMap"]


class RefMap(MutableMapping):
    """A mutable mapping keyed by object **identity** (``id``), not equality.

    Two keys that compare equal but are distinct objects occupy distinct entries. The map keeps
    its keys alive (so an ``id`` cannot be reused while the entry exists) and iterates the real
    keys. :func:`~brainstate.graph.flatten` uses one to give every distinct graph node and state
    its global index; ``split_context`` shares one across several splits.

    Parameters
    ----------
    mapping : Mapping or iterable of (key, value), optional
        Initial entries.

    Examples
    --------
    >>> from brainstate.graph import RefMap
    >>> a, b = [1, 2], [1, 2]
    >>> m = RefMap()
    >>> m[a] = 0
    >>> m[b] = 1
    >>> len(m), m[a], b in m
    (2, 0, True)
    """

    __module__ = "brainstate.graph"
    __slots__ = ("_mapping",)

    def __init__(self, mapping: Mapping | Iterable = ()) -> None:
        # id(key) -> (key, value); the flatten hot loop reads this dict directly.
        self._mapping: dict = {}
        self.update(mapping)

    def __getitem__(self, key: Any) -> Any:
        try:
            return self._mapping[id(key)][1]
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: Any) -> bool:
        return id(key) in self._mapping

    def __setitem__(self, key: Any, value: Any) -> None:
        self._mapping[id(key)] = (key, value)

    def __delitem__(self, key: Any) -> None:
        try:
            del self._mapping[id(key)]
        except KeyError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator:
        return (key for key, _ in self._mapping.values())

    def __len__(self) -> int:
        return len(self._mapping)

    def __repr__(self) -> str:
        items = ", ".join(f"{k!r}: {v!r}" for k, v in self._mapping.values())
        return f"RefMap({{{items}}})"
