"""Mirrors csrc/_core_states_walk.pxi: the walk behind ``graph.states()``."""

from __future__ import annotations

import sys
from typing import Any

from brainstate._core_py import _refs
from brainstate._core_py._refs import _K_NODE, _K_PYTREE, _K_STATE
from brainstate._core_py._walk_common import (
    _SHORT_PATH,
    _link_path,
    _pytree_level,
    _too_deep,
)

def collect_states(root: Any, lo: int, hi: int, accept: Any = None) -> dict:
    """``{path: state}`` in flatten order, each state once at its first path (``graph.states``).

    Containers are entered once by identity; depth grows by one per graph node entered and
    the walk stops below ``hi``. With ``accept`` (``state class -> bool``, memoised per class
    for the call) only states of accepted classes are kept.
    """
    out: dict = {}
    seen: set = set()  # ids of entered containers and of reported states
    seen_add = seen.add
    kind_get = _refs._g_kinds.get
    classify = _refs._g_classify
    plain = _refs._g_plain
    memo: dict | None = None if accept is None else {}
    limit = sys.getrecursionlimit()

    def node_entries(n, link):
        # ``(keys, src)``: ``src[k]`` is the child under ``k`` (a dict of the node's children)
        keys, values, _ = _refs._g_node_children(_refs._g_impls[type(n)], n, _link_path(link))
        return keys, dict(zip(keys, values))

    if hi < 0:
        return out
    kind = classify(root)
    if kind == _K_STATE:
        if lo <= 0 and (accept is None or accept(type(root))):
            out[()] = root
        return out
    if kind == _K_NODE:
        seen_add(id(root))
        if type(root) in plain:
            ks, sv = sorted(root.__dict__), root.__dict__
        else:
            ks, sv = node_entries(root, None)
        stack = [[iter(ks), sv, None, 0, 0, ()]]
    elif kind == _K_PYTREE:
        seen_add(id(root))
        ks, sv, _ = _pytree_level(root, None)
        stack = [[iter(ks), sv, None, 0, 1, ()]]
    else:
        return out

    # A frame: [key iterator, src, link, level (graph nodes entered), run (consecutive pytree
    # levels ending here), its path: built when a state below needs it, handed down while
    # short (a state's key is then one tuple away)].
    while stack:
        frame = stack[-1]
        it, src, link, level, run, path = frame
        for k in it:
            v = src[k]
            t = type(v)
            kind = kind_get(t)
            if kind is None:
                kind = classify(v)
            if kind == _K_STATE:
                if level >= lo:
                    i = id(v)
                    if i not in seen:
                        if memo is not None:
                            keep = memo.get(t)
                            if keep is None:
                                keep = memo[t] = bool(accept(t))
                            if not keep:
                                continue
                        seen_add(i)
                        if path is None:
                            path = frame[5] = _link_path(link)
                        out[(*path, k)] = v
            elif kind == _K_NODE:
                i = id(v)
                if level < hi and i not in seen:
                    seen_add(i)
                    child = (link, k)
                    if t in plain:
                        ks, sv = sorted(v.__dict__), v.__dict__
                    else:
                        ks, sv = node_entries(v, child)
                    stack.append([iter(ks), sv, child, level + 1, 0,
                                  (*path, k) if path is not None and len(path) < _SHORT_PATH
                                  else None])
                    break  # walk the child; this frame's loop resumes after it
            elif kind == _K_PYTREE:
                i = id(v)
                if i not in seen:
                    seen_add(i)
                    if run >= limit:
                        raise _too_deep("while walking a graph")
                    child = (link, k)
                    ks, sv, _ = _pytree_level(v, child)
                    stack.append([iter(ks), sv, child, level, run + 1,
                                  (*path, k) if path is not None and len(path) < _SHORT_PATH
                                  else None])
                    break
        else:  # every child seen: this container is done
            stack.pop()
    return out
