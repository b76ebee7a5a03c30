"""Utilities: path-keyed state mappings, containers, pretty reprs, filters and small helpers.

``brainstate.util.filter`` holds the filter predicates (``WithTag``, ``OfType``, ...), also
re-exported here; ``brainstate.util.struct`` holds the immutable pytree dataclasses and
``FrozenDict``.
"""

from . import filter, struct
from ._cache import BoundedCache
from ._dict_manager import DictManager
from ._dotdict import DotDict
from ._others import (
    clear_buffer_memory,
    flatten_dict,
    get_unique_name,
    is_instance_eval,
    merge_dicts,
    not_instance_eval,
    split_total,
    unflatten_dict,
)
from ._pretty_containers import PrettyDict, PrettyList, PrettyObject
from ._nested_dict import FlattedDict, NestedDict, flat_mapping, nest_mapping
from ._pretty_repr import (
    MappingReprMixin,
    PrettyAttr,
    PrettyMapping,
    PrettyRepr,
    PrettyType,
    yield_unique_pretty_repr_items,
)
from ._tracers import StateJaxTracer
from .filter import All, Any, Everything, Not, Nothing, OfType, PathContains, WithTag, to_predicate
from .struct import (
    FrozenDict,
    PyTreeNode,
    copy,
    dataclass,
    field,
    freeze,
    is_dataclass,
    pop,
    pretty_repr,
    unfreeze,
)

__all__ = [
    "filter",
    "struct",
    # path-keyed mappings
    "NestedDict",
    "FlattedDict",
    "flat_mapping",
    "nest_mapping",
    "DictManager",
    # containers and pretty reprs
    "DotDict",
    "PrettyDict",
    "PrettyList",
    "PrettyObject",
    "PrettyType",
    "PrettyAttr",
    "PrettyRepr",
    "PrettyMapping",
    "MappingReprMixin",
    "yield_unique_pretty_repr_items",
    "BoundedCache",
    "StateJaxTracer",
    # helpers
    "split_total",
    "get_unique_name",
    "clear_buffer_memory",
    "not_instance_eval",
    "is_instance_eval",
    "merge_dicts",
    "flatten_dict",
    "unflatten_dict",
    # filters
    "to_predicate",
    "WithTag",
    "PathContains",
    "OfType",
    "Any",
    "All",
    "Nothing",
    "Not",
    "Everything",
    # immutable pytrees
    "field",
    "is_dataclass",
    "dataclass",
    "PyTreeNode",
    "FrozenDict",
    "freeze",
    "unfreeze",
    "copy",
    "pop",
    "pretty_repr",
]
