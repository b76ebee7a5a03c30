"""Mirrors csrc/_core_walk_common.pxi: what the graph walks share (explicit stacks instead of
recursion, lazy paths, the depth error, one level of a pytree)."""

from __future__ import annotations

from typing import Any

from brainstate._core_py import _refs

# Deep graphs: the walks below recurse over neither graph nodes nor pytrees. Each keeps an
# explicit stack with one frame per container being walked (a graph node or a pytree), holding
# what a recursive call would hold in its locals; entering a child container pushes a frame,
# finishing one pops it and hands its result to the parent frame exactly where the recursive
# call would have returned. A frame resumes its loop through an iterator over its keys (a
# ``for`` over it is left by ``break`` to descend and continued on return), so the visit order,
# the indices, the records, the mapping and the errors are those of a plain recursive walk.
#
# Graph-node depth is then bounded by memory only. Pytree nesting is still bounded: nested
# pytrees give nested code tuples (and nested sub-mappings), which CPython hashes, compares and
# prints recursively without a depth guard, so past ``sys.getrecursionlimit()`` consecutive
# pytree levels (pytrees inside pytrees, no graph node between) the walks raise RecursionError
# like the compiled core's recursion guard, with the same words.
#
# Paths are links ``(up, key)`` (``None`` is the root's empty path), turned into tuples only
# where one is needed (a state's key in states(), an error message, a LEAF code): a chain of
# nodes n deep would otherwise hold n path tuples of up to n keys each.


def _link_path(link: Any) -> tuple:
    """The path tuple a link ``(up, key)`` stands for (``None``: the root's ``()``)."""
    keys = []
    while link is not None:
        link, k = link
        keys.append(k)
    keys.reverse()
    return tuple(keys)


def _too_deep(while_: str) -> RecursionError:
    return RecursionError(f"maximum recursion depth exceeded {while_}")


_N_RANGES = 64
_RANGES = [tuple(range(n)) for n in range(_N_RANGES)]
# Paths up to this long are handed down as tuples (bounded memory); deeper frames build theirs
# from their link when needed.
_SHORT_PATH = 32


def _pytree_level(x: Any, link: Any) -> tuple:
    """``(keys, src, treedef)`` of one level of pytree ``x`` at ``link``: the registry's
    ``flatten_pytree``, done here for lists, tuples and dicts of sortable keys (the path it
    takes only words its errors, so it is built only for the other pytrees)."""
    t = type(x)
    if t is list or t is tuple:
        n = len(x)
        return (_RANGES[n] if n < _N_RANGES else tuple(range(n))), x, _refs._g_seq_treedef(t, n)
    if t is dict:
        try:
            keys = tuple(sorted(x))
        except TypeError:
            pass  # flatten_pytree raises the error naming the path
        else:
            return keys, x, _refs._g_dict_treedef(keys)
    return _refs._g_flatten_pytree(x, _link_path(link))
