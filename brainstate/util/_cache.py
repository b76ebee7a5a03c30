""":class:`BoundedCache`: a thread-safe LRU mapping with hit/miss statistics."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["BoundedCache"]


class BoundedCache:
    """A thread-safe least-recently-used cache holding at most ``maxsize`` entries.

    Reading a key (:meth:`get`) marks it recently used; adding a key to a full cache evicts the
    least recently used one. Entries are added once with :meth:`set` and changed explicitly
    with :meth:`replace`, so an accidental overwrite of a cached value is an error.

    Parameters
    ----------
    maxsize : int, default 128
        The capacity; a positive integer.

    Raises
    ------
    ValueError
        If ``maxsize`` is not a positive integer.

    Notes
    -----
    Differs from upstream: ``maxsize`` is validated, and the miss error of
    ``get(..., raise_on_miss=True)`` lists the cached keys with a generic hint (upstream's
    message referred to ``make_jaxpr``).

    Examples
    --------
    >>> cache = BoundedCache(maxsize=2)
    >>> cache.set('a', 1); cache.set('b', 2)
    >>> cache.get('a')
    1
    >>> cache.set('c', 3)          # evicts 'b', the least recently used
    >>> cache.keys()
    ['a', 'c']
    >>> cache.get_stats()['hits']
    1
    """

    __module__ = "brainstate.util"

    def __init__(self, maxsize: int = 128):
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize <= 0:
            raise ValueError(f"BoundedCache: maxsize must be a positive integer, got {maxsize!r}.")
        self._cache: OrderedDict = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.RLock()
        self._hits = 0
        self._misses = 0

    @property
    def maxsize(self) -> int:
        """The capacity."""
        return self._maxsize

    def get(self, key: Any, default: Any = None, raise_on_miss: bool = False,
            error_context: str = "item") -> Any:
        """Return the value cached under ``key`` (marking it recently used), else ``default``.

        Parameters
        ----------
        key : hashable
            The key.
        default : Any, optional
            Returned on a miss.
        raise_on_miss : bool, default False
            Raise instead of returning ``default`` on a miss.
        error_context : str, default 'item'
            What is cached, for the miss message (e.g. ``'compiled function'``).

        Raises
        ------
        ValueError
            On a miss with ``raise_on_miss=True``; the message lists the cached keys.
        """
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                self._hits += 1
                return self._cache[key]
            self._misses += 1
            if raise_on_miss:
                raise ValueError(self._miss_message(key, error_context))
            return default

    def _miss_message(self, key, what: str) -> str:
        lines = [f"No {what} is cached for key {key!r}.",
                 f"{len(self._cache)} cached key(s):"]
        lines += [f"  [{i}] {k!r}" for i, k in enumerate(self._cache, 1)] or ["  (none)"]
        lines.append(f"Add the {what} with set() before reading it.")
        return "\n".join(lines)

    def set(self, key: Any, value: Any) -> None:
        """Add ``value`` under a new ``key``, evicting the least recently used entry if full.

        Raises
        ------
        ValueError
            If ``key`` is already cached (use :meth:`replace`).
        """
        with self._lock:
            if key in self._cache:
                raise ValueError(f"Key {key!r} is already cached; use replace() to change its "
                                 "value, or pop() it first.")
            if len(self._cache) >= self._maxsize:
                self._cache.popitem(last=False)
            self._cache[key] = value

    def replace(self, key: Any, value: Any) -> None:
        """Change the value of a cached ``key`` (and mark it recently used).

        Raises
        ------
        KeyError
            If ``key`` is not cached (use :meth:`set`).
        """
        with self._lock:
            if key not in self._cache:
                raise KeyError(f"Key {key!r} is not cached; use set() to add it.")
            self._cache[key] = value
            self._cache.move_to_end(key)

    def pop(self, key: Any, default: Any = None) -> Any:
        """Remove ``key`` and return its value, or ``default`` if it is not cached."""
        with self._lock:
            return self._cache.pop(key, default)

    def __contains__(self, key: Any) -> bool:
        with self._lock:
            return key in self._cache

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def clear(self) -> None:
        """Remove every entry and reset the statistics."""
        with self._lock:
            self._cache.clear()
            self._hits = 0
            self._misses = 0

    def keys(self) -> list:
        """Return the cached keys, least recently used first."""
        with self._lock:
            return list(self._cache)

    def get_stats(self) -> dict:
        """Return ``size``, ``maxsize``, ``hits``, ``misses`` and ``hit_rate`` (percent)."""
        with self._lock:
            total = self._hits + self._misses
            return {
                "size": len(self._cache),
                "maxsize": self._maxsize,
                "hits": self._hits,
                "misses": self._misses,
                "hit_rate": 100.0 * self._hits / total if total else 0.0,
            }

    def __repr__(self) -> str:
        return f"BoundedCache(size={len(self)}, maxsize={self._maxsize})"
