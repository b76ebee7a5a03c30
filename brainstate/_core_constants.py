"""The numbers the two cores and the Python layers above them must agree on, defined once.

The pure core (``brainstate/_core_py/``), the graph layer (``brainstate/graph/``), the hook API
(``brainstate/_hooks.py``) and the hosted core (``brainstate/_hosted.py``) import them from here.
The compiled core keeps its own copies as C enums (``csrc/_core_*.pxi``) and shows them in
``_GRAPH_CONSTANTS``, ``_STATE_FLAGS`` and ``_HOOK_BITS``: ``tests/test_core_constants.py``
compares those with these, and ``configure_graph`` refuses graph numbers that differ from its
own. Change a value in both places together and raise ``CORE_ABI``.

Imports nothing, so that every core and layer can import it.
"""

from __future__ import annotations

# --- graph kinds: what brainstate.graph._registry.classify says a value is -------------------
KIND_NODE = 0  # a graph node (a registered node type)
KIND_PYTREE = 1  # a pytree container the walks descend into
KIND_STATE = 2  # a State
KIND_STATE_LEAF = 3  # a TreefyState standing as a leaf
KIND_STATIC = 4  # a value carried verbatim
KIND_NONE = 5  # None

# --- GraphDef code tags: the first element of each code (brainstate/graph/_graphdef.py) --------
CODE_NODE_DEF = 0
CODE_NODE_REF = 1
CODE_STATE_DEF = 2
CODE_STATE_REF = 3
CODE_STATIC = 4
CODE_PYTREE = 5
CODE_LEAF = 6
CODE_STATE_AT = 7

# --- treedef kinds: built-in containers the decoder rebuilds without JAX's unflatten -----------
TREEDEF_LIST = 1
TREEDEF_TUPLE = 2
TREEDEF_DICT = 3

#: What ``configure_graph(constants=...)`` receives: a core refuses numbers other than its own.
GRAPH_CONSTANTS = {
    "kinds": (KIND_NODE, KIND_PYTREE, KIND_STATE, KIND_STATE_LEAF, KIND_STATIC, KIND_NONE),
    "codes": (CODE_NODE_DEF, CODE_NODE_REF, CODE_STATE_DEF, CODE_STATE_REF, CODE_STATIC,
              CODE_PYTREE, CODE_LEAF, CODE_STATE_AT),
    "treedef_kinds": (TREEDEF_LIST, TREEDEF_TUPLE, TREEDEF_DICT),
}

# --- state flags: the bits of a state core's ``_flags`` ---------------------------------------
FLAG_VIEW = 1  # the value is a transform's per-lane view (installed by new_arg / _set_view)
FLAG_TRACER = 2  # the value holds a JAX tracer

# --- hook bits: the bits of HookManager.mask, one per hook type (HOOK_TYPES order) -------------
HOOK_READ = 1
HOOK_WRITE_BEFORE = 2
HOOK_WRITE_AFTER = 4
HOOK_RESTORE = 8
HOOK_INIT = 16
