"""Small helpers: unique names, epoch splitting, dict merging/flattening, instance predicates.

These are the free functions of ``brainstate.util``; the containers live in their own modules.
"""

from __future__ import annotations

import functools
import gc
import numbers
import threading
from collections.abc import Callable, Mapping
from typing import Any, Optional

import jax

__all__ = [
    "split_total",
    "get_unique_name",
    "clear_buffer_memory",
    "not_instance_eval",
    "is_instance_eval",
    "merge_dicts",
    "flatten_dict",
    "unflatten_dict",
]

_MODULE = "brainstate.util"


def _public(fn):
    fn.__module__ = _MODULE
    return fn


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


@_public
def split_total(total: int, fraction: int | float) -> int:
    """Return how many of ``total`` items (e.g. epochs) a ``fraction`` stands for.

    Parameters
    ----------
    total : int
        The total count; a positive integer.
    fraction : int or float
        A float in ``[0, 1]`` is a share of ``total`` (rounded down); an integer in
        ``[0, total]`` is the count itself.

    Returns
    -------
    int
        The selected count.

    Raises
    ------
    TypeError
        If ``total`` is not an integer or ``fraction`` is neither an integer nor a float
        (booleans are refused for both).
    ValueError
        If ``total`` is not positive, or ``fraction`` is out of range or not finite.

    Examples
    --------
    >>> split_total(100, 0.25)
    25
    >>> split_total(100, 30)
    30
    """
    if not _is_int(total):
        raise TypeError(f"split_total: 'total' must be an integer, got {total!r} of type "
                        f"{type(total).__name__}.")
    total = int(total)
    if total <= 0:
        raise ValueError(f"split_total: 'total' must be a positive integer, got {total}.")
    if _is_int(fraction):
        count = int(fraction)
        if not 0 <= count <= total:
            raise ValueError(f"split_total: an integer 'fraction' is a count and must lie in "
                             f"[0, {total}] (the total), got {count}.")
        return count
    if isinstance(fraction, numbers.Real) and not isinstance(fraction, bool):
        share = float(fraction)
        if not 0.0 <= share <= 1.0:  # also rejects nan
            raise ValueError(f"split_total: a float 'fraction' is a share and must lie in "
                             f"[0, 1], got {fraction!r}. Pass an integer for a count.")
        return int(total * share)
    raise TypeError(f"split_total: 'fraction' must be an int (a count) or a float (a share), "
                    f"got {fraction!r} of type {type(fraction).__name__}.")


class _NameCounters(threading.local):
    """Per-thread counters behind :func:`get_unique_name`."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}


_NAMES = _NameCounters()


@_public
def get_unique_name(type_: str, prefix: str = "") -> str:
    """Return ``f'{prefix}{type_}{n}'`` with ``n`` counting up per ``type_`` (per thread).

    Parameters
    ----------
    type_ : str
        The base name whose counter is used.
    prefix : str, optional
        Text put before ``type_``; it does not select a separate counter.

    Returns
    -------
    str
        A name not returned before for ``type_`` in this thread.

    Raises
    ------
    TypeError
        If ``type_`` or ``prefix`` is not a string.

    Examples
    --------
    >>> a, b = get_unique_name('DocLayer'), get_unique_name('DocLayer')
    >>> a != b and a.startswith('DocLayer') and b.startswith('DocLayer')
    True
    """
    if not isinstance(type_, str) or not isinstance(prefix, str):
        raise TypeError(f"get_unique_name takes strings, got type_={type_!r}, prefix={prefix!r}.")
    n = _NAMES.counts.get(type_, 0)
    _NAMES.counts[type_] = n + 1
    return f"{prefix}{type_}{n}"


@_public
def clear_buffer_memory(
    platform: Optional[str] = None,
    array: bool = True,
    compilation: bool = False,
) -> None:
    """Delete live device arrays and, optionally, JAX's compilation caches.

    Useful between runs of a model in a Python loop to return device memory.

    .. warning:: Every array deleted here is unusable afterwards; recreate your data.

    Parameters
    ----------
    platform : str, optional
        Only arrays on this platform (``'cpu'``, ``'gpu'``, ``'tpu'``); default: JAX's
        default backend.
    array : bool, default True
        Delete the live arrays.
    compilation : bool, default False
        Also clear the compilation caches (``jax.clear_caches()``).
    """
    if array:
        for buf in jax.live_arrays(platform):
            buf.delete()
    if compilation:
        jax.clear_caches()
    gc.collect()


def _is_not_instance(x, cls) -> bool:
    return not isinstance(x, cls)


def _is_instance(x, cls) -> bool:
    return isinstance(x, cls)


def _check_classes(fname: str, cls: tuple) -> None:
    if not cls:
        raise TypeError(f"{fname}() needs at least one class.")
    for c in cls:
        if not isinstance(c, type):
            raise TypeError(f"{fname}() takes classes, got {c!r} of type {type(c).__name__}.")


@_public
def not_instance_eval(*cls: type) -> Callable[[Any], bool]:
    """Return a predicate ``x -> not isinstance(x, cls)``.

    Examples
    --------
    >>> not_int = not_instance_eval(int)
    >>> not_int(3), not_int('a')
    (False, True)
    """
    _check_classes("not_instance_eval", cls)
    return functools.partial(_is_not_instance, cls=cls)


@_public
def is_instance_eval(*cls: type) -> Callable[[Any], bool]:
    """Return a predicate ``x -> isinstance(x, cls)``.

    Examples
    --------
    >>> is_num = is_instance_eval(int, float)
    >>> is_num(3), is_num(2.5), is_num('a')
    (True, True, False)
    """
    _check_classes("is_instance_eval", cls)
    return functools.partial(_is_instance, cls=cls)


@_public
def merge_dicts(*dicts: Mapping, recursive: bool = True) -> dict:
    """Merge mappings left to right into a new ``dict``; later values win.

    Parameters
    ----------
    *dicts : Mapping
        The mappings to merge. None of them is modified.
    recursive : bool, default True
        Merge nested mappings found under the same key instead of replacing them.

    Returns
    -------
    dict
        The merged mapping (nested merged levels are new ``dict`` objects).

    Raises
    ------
    TypeError
        If an argument is not a mapping.

    Examples
    --------
    >>> merge_dicts({'a': 1, 'b': {'c': 2}}, {'b': {'d': 3}})
    {'a': 1, 'b': {'c': 2, 'd': 3}}
    >>> merge_dicts({'b': {'c': 2}}, {'b': {'d': 3}}, recursive=False)
    {'b': {'d': 3}}
    """
    result: dict = {}
    for i, d in enumerate(dicts):
        if not isinstance(d, Mapping):
            raise TypeError(f"merge_dicts: argument {i} must be a mapping, got {d!r} of type "
                            f"{type(d).__name__}.")
        for key, value in d.items():
            old = result.get(key)
            if recursive and isinstance(old, Mapping) and isinstance(value, Mapping):
                result[key] = merge_dicts(old, value, recursive=True)
            else:
                result[key] = value
    return result


def _flatten_into(out: dict, d: Mapping, prefix: str, sep: str) -> None:
    for k, v in d.items():
        key = f"{prefix}{sep}{k}" if prefix else f"{k}"
        if isinstance(v, Mapping) and v:
            _flatten_into(out, v, key, sep)
            continue
        if key in out:
            raise ValueError(
                f"flatten_dict: two entries flatten to the same key {key!r} with sep={sep!r}. "
                "Rename the key containing the separator, or choose another sep."
            )
        out[key] = v


@_public
def flatten_dict(d: Mapping, parent_key: str = "", sep: str = ".") -> dict:
    """Flatten a nested mapping into one level with ``sep``-joined string keys.

    Empty nested mappings are kept as values.

    Parameters
    ----------
    d : Mapping
        The nested mapping.
    parent_key : str, default ''
        A prefix for every key.
    sep : str, default '.'
        The separator put between key levels.

    Returns
    -------
    dict
        The flat mapping.

    Raises
    ------
    TypeError
        If ``d`` is not a mapping.
    ValueError
        If two entries flatten to the same key (e.g. ``{'a.b': 1, 'a': {'b': 2}}``).

    Notes
    -----
    Differs from upstream: colliding keys raise instead of silently keeping the last value, and
    empty nested mappings are kept (upstream dropped them), so :func:`unflatten_dict` restores
    the input exactly.

    Examples
    --------
    >>> flatten_dict({'a': 1, 'b': {'c': 2, 'd': {'e': 3}}})
    {'a': 1, 'b.c': 2, 'b.d.e': 3}
    """
    if not isinstance(d, Mapping):
        raise TypeError(f"flatten_dict expects a mapping, got {type(d).__name__}.")
    out: dict = {}
    _flatten_into(out, d, parent_key, sep)
    return out


@_public
def unflatten_dict(d: Mapping, sep: str = ".") -> dict:
    """Rebuild a nested ``dict`` from ``sep``-joined string keys (the inverse of :func:`flatten_dict`).

    Parameters
    ----------
    d : Mapping
        The flat mapping; every key must be a ``str``.
    sep : str, default '.'
        The separator between key levels.

    Returns
    -------
    dict
        The nested mapping.

    Raises
    ------
    TypeError
        If a key is not a string.
    ValueError
        If a key is both a value and a prefix of another key (e.g. ``'a'`` and ``'a.b'``).

    Examples
    --------
    >>> unflatten_dict({'a': 1, 'b.c': 2, 'b.d.e': 3})
    {'a': 1, 'b': {'c': 2, 'd': {'e': 3}}}
    """
    result: dict = {}
    for key, value in d.items():
        if not isinstance(key, str):
            raise TypeError(f"unflatten_dict needs string keys, got {key!r}.")
        *parents, last = key.split(sep)
        node = result
        for depth, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(_conflict(key, sep.join(parents[: depth + 1])))
        if last in node and isinstance(node[last], dict) and node[last]:
            raise ValueError(_conflict(key, key))
        node[last] = value
    return result


def _conflict(key: str, prefix: str) -> str:
    return (f"unflatten_dict: key {key!r} conflicts with {prefix!r}, which is both a value and "
            "a parent of other keys. Remove one of them.")
