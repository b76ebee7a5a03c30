"""Utilities: path-keyed state mappings, named collections and filters.

``brainstate.util.filter`` holds the filter predicates (``WithTag``, ``OfType``, ...).
"""

from . import filter
from ._dict_manager import DictManager
from ._pretty_pytree import FlattedDict, NestedDict, flat_mapping, nest_mapping

__all__ = [
    "filter",
    "NestedDict",
    "FlattedDict",
    "flat_mapping",
    "nest_mapping",
    "DictManager",
]
