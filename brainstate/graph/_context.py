"""``split_context`` / ``merge_context``: share one index space across several splits or merges.

Objects shared *between* graphs split in one ``split_context`` keep a single global index, and
the matching ``merge_context`` rebuilds them as one object. The stacks of active contexts are
thread-local.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

from ._flatten import flatten, merge_nested, unflatten
from ._graphdef import GraphDef
from ._operations import _split_nested, state_filters_to_predicates
from ._reftrack import RefMap

__all__ = ["split_context", "merge_context", "SplitContext", "MergeContext"]


class _GraphContext(threading.local):
    def __init__(self) -> None:
        self.split_stack: list = []
        self.merge_stack: list = []


GRAPH_CONTEXT = _GraphContext()


class SplitContext:
    """The handle yielded by :func:`split_context`; its splits share one ``RefMap``."""

    __module__ = "brainstate.graph"
    __slots__ = ("ref_index",)
    ref_index: RefMap | None  # None once the split_context block has exited

    def __init__(self, ref_index: RefMap) -> None:
        self.ref_index = ref_index

    def treefy_split(self, node: Any, *filters: Any) -> tuple:
        """Like :func:`~brainstate.graph.treefy_split`, in this context's index space."""
        if self.ref_index is None:
            raise RuntimeError(
                "This SplitContext has exited; split inside the `with split_context()` block."
            )
        graphdef, mapping = flatten(node, ref_index=self.ref_index)
        if not filters:
            return graphdef, mapping
        predicates = state_filters_to_predicates(filters, "treefy_split")
        return (graphdef, *_split_nested(mapping, predicates, True))


class MergeContext:
    """The handle yielded by :func:`merge_context`; its merges share one index table."""

    __module__ = "brainstate.graph"
    __slots__ = ("index_ref",)
    index_ref: dict | None  # None once the merge_context block has exited

    def __init__(self, index_ref: dict) -> None:
        self.index_ref = index_ref

    def treefy_merge(
        self,
        graphdef: GraphDef,
        state_mapping: Any,
        /,
        *state_mappings: Any,
        check_signatures: bool = True,
        copy_hooks: bool = False,
    ) -> Any:
        """Like :func:`~brainstate.graph.treefy_merge`, in this context's index table."""
        if self.index_ref is None:
            raise RuntimeError(
                "This MergeContext has exited; merge inside the `with merge_context()` block."
            )
        mapping = merge_nested((state_mapping, *state_mappings))
        return unflatten(graphdef, mapping, index_ref=self.index_ref,
                         check_signatures=check_signatures, copy_hooks=copy_hooks)


@contextlib.contextmanager
def split_context() -> Iterator[tuple]:
    """Split several graphs in one index space: yields ``(ctx, ref_index)``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> shared = brainstate.ParamState(jnp.ones(2))
    >>> class Cell(brainstate.graph.Node):
    ...     def __init__(self, w):
    ...         self.w = w
    >>> a, b = Cell(shared), Cell(shared)
    >>> with brainstate.graph.split_context() as (ctx, _):
    ...     ga, sa = ctx.treefy_split(a)
    ...     gb, sb = ctx.treefy_split(b)
    >>> with brainstate.graph.merge_context() as (ctx, _):
    ...     a2 = ctx.treefy_merge(ga, sa)
    ...     b2 = ctx.treefy_merge(gb, sb)
    >>> a2.w is b2.w
    True
    """
    ref_index = RefMap()
    ctx = SplitContext(ref_index)
    GRAPH_CONTEXT.split_stack.append(ctx)
    try:
        yield ctx, ref_index
    finally:
        GRAPH_CONTEXT.split_stack.pop()
        ctx.ref_index = None


@contextlib.contextmanager
def merge_context() -> Iterator[tuple]:
    """Merge several GraphDefs in one index table: yields ``(ctx, index_ref)`` (the live table).

    GraphDefs split in one :func:`split_context` must be merged in one ``merge_context``, in
    the order they were split, so a later graph finds the objects an earlier one defined.
    """
    index_ref: dict = {}
    ctx = MergeContext(index_ref)
    GRAPH_CONTEXT.merge_stack.append(ctx)
    try:
        yield ctx, index_ref
    finally:
        GRAPH_CONTEXT.merge_stack.pop()
        ctx.index_ref = None
