"""Mirrors csrc/_core_encoder.pxi: the encoder behind ``graph.flatten`` / ``treefy_split``."""

from __future__ import annotations

import sys
from typing import Any

from brainstate._core_py import _refs
from brainstate._core_py._refs import (
    _C_LEAF,
    _C_NODE_DEF,
    _C_NODE_REF,
    _C_PYTREE,
    _C_STATE_DEF,
    _C_STATE_REF,
    _C_STATIC,
    _K_NODE,
    _K_NONE,
    _K_PYTREE,
    _K_STATE,
    _K_STATIC,
    _NONE_CODE,
    make_ref,
)
from brainstate._core_py._signature import make_signature
from brainstate._core_py._state import _held_elsewhere
from brainstate._core_py._walk_common import _link_path, _pytree_level, _too_deep

def encode(root: Any, root_kind: int, table: dict | None, treefy: bool) -> tuple:
    """The pre-order walk behind ``graph.flatten``.

    Returns ``(root_code, records, mapping, prepass, size)``; ``size`` is one more than the
    largest index used when ``table`` started empty, else None. ``table`` maps
    ``id(obj) -> (obj, index)`` and is extended in place (a split_context shares it across
    calls); None for a fresh one that the caller does not need back. See
    ``brainstate/graph/_graphdef.py`` for the codes.
    """
    if table is None:
        table = {}
    elif type(table) is not dict:
        raise TypeError(f"table must be a dict or None, got {type(table).__name__}")
    kind_get = _refs._g_kinds.get
    classify = _refs._g_classify
    impls = _refs._g_impls
    table_get = table.get
    none_code = _NONE_CODE
    limit = sys.getrecursionlimit()

    records: list = []
    # owner[i - base]: position of the record holding the defining code of index i (-1: the
    # root pytree). A STATE_REF in an earlier-filled record than its definition needs a pre-pass.
    owner: list = []
    base = len(table)
    prepass = False

    # A frame: [key iterator, src, link, pos (the record holding the codes: the node's own, or
    # for a pytree its node's), codes so far, sub-mapping so far, run (consecutive pytree
    # levels ending here: 0 for a node), the node (type, index, metadata, keys) or None for a
    # pytree, the pytree (x, treedef, keys) or None for a node].
    def node_frame(node, link, index):
        t = type(node)
        impl = impls[t]
        pos = len(records)
        records.append(None)  # filled when the node is done: records stay in index order
        if impl.fast:
            src = node.__dict__
            invisible = t.graph_invisible_attrs
            if invisible:
                keys = tuple(sorted(k for k in src if k not in invisible))
            else:
                keys = tuple(sorted(src))
            metadata = (t,)
        else:
            keys, values, metadata = _refs._g_node_children(impl, node, _link_path(link))
            keys = tuple(keys)
            src = dict(zip(keys, values))
        return [iter(keys), src, link, pos, [], {}, 0, (t, index, metadata, keys), None]

    def pytree_frame(x, link, pos, run):
        if run > limit:
            raise _too_deep("while flattening a graph")
        keys, src, treedef = _pytree_level(x, link)
        return [iter(keys), src, link, pos, [], {}, run, None, (x, treedef, keys)]

    try:
        # size: one more than the largest index used, known when the table started empty
        if root_kind == _K_NODE:
            e = table_get(id(root))
            if e is not None:  # already split earlier in this split_context
                return (_C_NODE_REF, e[1]), (), {}, False, None
            i = len(table)
            table[id(root)] = (root, i)
            owner.append(-1)
            root_code: Any = (_C_NODE_DEF, i)
            stack = [node_frame(root, None, i)]
        elif root is None:
            return none_code, (), {}, False, None if base else len(table)
        else:
            root_code = None  # the root pytree's, when its frame is done
            stack = [pytree_frame(root, None, -1, 1)]
        root_sub: Any = None

        while stack:
            frame = stack[-1]
            it, src, link, pos, codes, sub, run, node, pt = frame
            append = codes.append
            for k in it:
                v = src[k]
                t = type(v)
                kind = kind_get(t)
                if kind is None:
                    kind = classify(v)
                if kind == _K_STATE:
                    e = table_get(id(v))
                    if e is None:
                        i = len(table)
                        table[id(v)] = (v, i)
                        owner.append(pos)
                        sub[k] = make_ref(v) if treefy else v
                        # A state under a transform's per-lane view holds a value of another
                        # shape than its stored signature: record what a rebuilt state will have.
                        append(
                            (_C_STATE_DEF, i, t,
                             v._signature if not v._flags or _held_elsewhere(v) is not None
                             else make_signature(v._value))
                        )
                    else:
                        i = e[1]
                        if i >= base and owner[i - base] > pos:
                            prepass = True
                        append((_C_STATE_REF, i, t))
                elif kind == _K_NONE:
                    append(none_code)
                elif kind == _K_STATIC:
                    append((_C_STATIC, v))
                elif kind == _K_NODE:
                    e = table_get(id(v))
                    if e is None:
                        i = len(table)
                        table[id(v)] = (v, i)
                        owner.append(pos)
                        stack.append(node_frame(v, (link, k), i))
                        break  # encode the child; this frame's loop resumes after it
                    append((_C_NODE_REF, e[1]))
                elif kind == _K_PYTREE:
                    if v is None:
                        append(none_code)
                    else:
                        stack.append(pytree_frame(v, (link, k), pos, run + 1))
                        break
                else:  # a bare TreefyState that is not a pytree
                    sub[k] = v
                    append((_C_LEAF, _link_path((link, k))))
            else:
                # Every child encoded: finish this container and hand its code and sub-mapping
                # to its parent, where the recursive call would have returned them.
                stack.pop()
                codes = tuple(codes)
                code: tuple
                if node is not None:
                    t, index, metadata, keys = node
                    records[pos] = (t, index, metadata, keys, codes)
                    code = (_C_NODE_DEF, index)
                else:
                    x, treedef, keys = pt
                    # all static: every child a static (None included), so the container is one
                    if all(c[0] == _C_STATIC for c in codes) and _refs._g_hashable_by_value(x):
                        code = (_C_STATIC, x)
                        sub = None
                    else:
                        code = (_C_PYTREE, treedef, keys, codes)
                if not stack:  # the root
                    if node is None:
                        root_code = code
                    root_sub = sub
                    break
                parent = stack[-1]
                if sub:
                    parent[5][link[1]] = sub
                parent[4].append(code)

        size = None if base else len(table)
        return root_code, tuple(records), root_sub or {}, prepass, size
    finally:
        # The closures refer to each other through their cells: clear the cells so the call
        # leaves no reference cycle behind for the garbage collector.
        node_frame = pytree_frame = None  # type: ignore[assignment]  # noqa: F841
