"""The one place that wires a core to the layers above it.

A core (``brainstate._core`` or its pure twin ``brainstate._core_py``) imports nothing of the
package above it; this module hands it what it needs, in three parts:

- the state core (``configure``): tree flattening, the leaf-signature function, JAX's array,
  key-array and tracer types and current trace, the error factory, the pure hook dispatch, the
  metadata and hosted-state types;
- the hook dispatch (``configure_hooks``, ``set_global_hook_registry``, ``set_hooks_active``):
  the hook API's classes and error policy, and the two facts it publishes (the global registry,
  the number of managers with enabled hooks) for every wired core;
- the graph loops (``configure_graph``): the node registry of ``brainstate/graph/_registry.py``
  and the shortcut tables of ``brainstate/graph/_flatten.py``.

``brainstate/__init__.py`` calls :func:`wire` once, after the State family is defined and
before any subpackage can create a state. Tests call :func:`configure_core` to run the other
core beside the active one, and :func:`configure_graph` to switch the graph shortcuts off.
docs/ARCHITECTURE.md ("The compiled boundary") describes the contract.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any, Optional

import jax

from brainstate import _hooks, _hosted, _impl, _jax_internals, _messages, _signature
from brainstate._core_constants import GRAPH_CONSTANTS
from brainstate._core_py import _hooks as hook_dispatch
from brainstate._state import StateMetadata, TreefyState
from brainstate.graph import _flatten
from brainstate.graph import _registry as R

__all__ = ["wire", "configure_core", "configure_graph", "wired_cores"]

#: The cores wired so far, in order (the active one first once :func:`wire` ran).
_WIRED: list[ModuleType] = []


def wire() -> None:
    """Wire the active core (``brainstate._impl.core``); called once by ``brainstate``."""
    configure_core(_impl.core)


def wired_cores() -> tuple[ModuleType, ...]:
    """The cores wired so far (the active one first)."""
    return tuple(_WIRED)


def configure_core(mod: ModuleType, *, refresh: bool = False) -> None:
    """Wire ``mod`` (a core module): its state core, hook dispatch and graph loops.

    A core already wired is left as it is unless ``refresh`` (a test that patched something
    this module hands over, e.g. ``jax.tree_util.tree_flatten``); ``configure_graph`` rewires
    the graph part alone. Every wired core hears the hook activity count and the global
    registry.
    """
    if mod in _WIRED and not refresh:
        return
    _configure_states(mod)
    mod.configure_hooks(_hooks)
    configure_graph(mod)
    if mod not in _WIRED:
        _WIRED.append(mod)
    # Each listener is called at once with the current value, so ``mod`` starts up to date.
    _hooks.set_activity_listener(_broadcast_activity)
    _hooks.set_registry_listener(_broadcast_registry)


def configure_graph(mod: ModuleType, *, shortcuts: bool = True) -> None:
    """Hand ``mod`` the graph registry; without ``shortcuts``, refs and rebuilt states are built
    the generic way (``State.to_state_ref()``, ``TreefyState.to_state()``), which the parity
    tests compare the shortcuts against."""
    if shortcuts:
        fast: dict[str, Any] = {
            "fast_ref": _flatten._FAST_REF, "fast_ref_ok": _flatten._fast_ref_ok,
            "fast_state": _flatten._FAST_STATE, "fast_state_ok": _flatten._fast_state_ok,
        }
    else:
        fast = {"fast_ref": {}, "fast_ref_ok": _never, "fast_state": {}, "fast_state_ok": _never}
    mod.configure_graph(
        constants=GRAPH_CONSTANTS,
        kinds=R._KIND,
        classify=R.classify,
        node_impls=R._NODE_IMPLS,
        plain_nodes=R._PLAIN_NODES,
        flatten_pytree=R.flatten_pytree,
        node_children=R.node_children,
        seq_treedef=R.seq_treedef,
        dict_treedef=R.dict_treedef,
        treedef_kinds=R._TREEDEF_KIND,
        hashable_by_value=R.hashable_by_value,
        ref_type=TreefyState,
        rebuild_error=_flatten._RebuildError,
        missing=_flatten._MISSING,
        **fast,
    )


def _configure_states(mod: ModuleType) -> None:
    hook_dispatch.configure_hooks(_hooks)  # the pure dispatch serves hosted states too
    mod.configure(
        tree_flatten=jax.tree_util.tree_flatten,
        leaf_spec=_signature.leaf_spec,
        array_type=array_type(),
        key_array_type=key_array_type(),
        tracer_type=jax.core.Tracer,
        trace_ctx=_jax_internals.jax_core.trace_ctx,
        make_error=_messages.make_error,
        hooks=hook_dispatch,
        metadata_type=StateMetadata,
        pkg_prefix=os.path.dirname(os.path.abspath(__file__)) + os.sep,
        source_site=_messages.SourceSite,
        hosted_type=_hosted.HostedStateCore,
    )
    _hosted.configure(StateMetadata)


def array_type() -> type:
    """The concrete type of JAX arrays (``jax.Array`` instances)."""
    found = _jax_internals.array_type()
    if found is None:  # pragma: no cover - moved: pay for one array instead
        return type(jax.numpy.zeros(()))
    return found


def key_array_type() -> type:
    """The concrete type of typed PRNG key arrays (``jax.random.key``), or ``NoneType``."""
    found = _jax_internals.key_array_type()
    return type(None) if found is None else found  # None: the core's generic check


def _never(cls: type) -> bool:
    return False


def _broadcast_activity(count: int) -> None:
    for mod in _WIRED:
        mod.set_hooks_active(count)


def _broadcast_registry(registry: Optional[_hooks.GlobalHookRegistry]) -> None:
    for mod in _WIRED:
        mod.set_global_hook_registry(registry)
