"""Pure-Python reference core: the twin of the compiled ``brainstate._core``.

Mirrors csrc/_core.pyx: same names, same behaviour, same messages as the compiled core;
``brainstate/_core.pyi`` is the contract both meet. Each module of this package mirrors one file
that ``csrc/_core.pyx`` includes (its first line names it), and this module holds what
``_core.pyx`` holds itself (``CORE_ABI``) and the contract's names.

The package imports nothing of brainstate and nothing of jax: ``brainstate._wiring`` hands it
the few callables it needs (tree flattening, the tracer type, JAX's current trace, the error
factory, the hook classes). What lives here is the work done on every state access: the order
of the checks, recording and hooks of a ``value`` read or write, the signature compare, the
trace-frame recording, and the thread-local trace context with process-wide counters that let
the eager path skip all of it; then the loops ``brainstate.graph`` runs once per node and per
state (split, merge, ``states()``) and the storage base of ``TreefyState``.
"""

from __future__ import annotations

from brainstate._core_py._calls import gather, scatter
from brainstate._core_py._context import (
    INVALID,
    ThreadContext,
    _Invalid,
    capture_site,
    configure,
    current_trace_ref,
    get_context,
    hooks_active,
    is_rebinding,
    note_rebind,
    pop_catcher,
    pop_frame,
    pop_tracer_check,
    pop_tree_check,
    push_catcher,
    push_frame,
    push_tracer_check,
    push_tree_check,
    rebind_epoch,
    set_hooks_active,
    stack_level,
)
from brainstate._core_py._decoder import DecoderCore, index_bound
from brainstate._core_py._encoder import encode
from brainstate._core_py._hooks import configure_hooks, set_global_hook_registry
from brainstate._core_py._refs import (
    TreefyStateCore,
    configure_graph,
    make_ref,
    rebuild_state,
    treefy_attrs,
    treefy_flatten,
    treefy_from_attrs,
    treefy_unflatten,
)
from brainstate._core_py._signature import Signature, make_signature
from brainstate._core_py._state import StateCore, TraceFrame, _Hold
from brainstate._core_py._states_walk import collect_states

__all__ = [
    "CORE_ABI",
    "configure",
    "Signature",
    "make_signature",
    "StateCore",
    "TraceFrame",
    "ThreadContext",
    "get_context",
    "push_frame",
    "pop_frame",
    "push_tree_check",
    "pop_tree_check",
    "push_tracer_check",
    "pop_tracer_check",
    "push_catcher",
    "pop_catcher",
    "stack_level",
    "set_hooks_active",
    "hooks_active",
    "INVALID",
    "capture_site",
    "is_rebinding",
    "gather",
    "scatter",
    "rebind_epoch",
    "note_rebind",
    "current_trace_ref",
    "configure_hooks",
    "set_global_hook_registry",
    "configure_graph",
    "TreefyStateCore",
    "treefy_attrs",
    "treefy_from_attrs",
    "treefy_flatten",
    "treefy_unflatten",
    "make_ref",
    "rebuild_state",
    "collect_states",
    "encode",
    "DecoderCore",
    "index_bound",
]

CORE_ABI = 5

# Every class of the core, and every function of the contract, is named as this module's, like
# the compiled core's are ``brainstate._core``'s: pickles, reprs and help() do not depend on
# which module of the package defines it.
for _obj in (*(globals()[_name] for _name in __all__), _Invalid, _Hold):
    if callable(_obj):  # (classes and functions; CORE_ABI and INVALID are neither)
        _obj.__module__ = __name__
del _obj
