"""The numbers both cores and the Python layers must agree on are defined once, in
``brainstate/_core_constants.py``; the compiled core's C enums must equal them.

A value changed on one side only fails here (and, for the graph numbers, at import: the
graph layer hands them to ``configure_graph``, which refuses numbers other than its own).
"""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate import _core_constants as K

HOOK_BITS = (K.HOOK_READ, K.HOOK_WRITE_BEFORE, K.HOOK_WRITE_AFTER, K.HOOK_RESTORE, K.HOOK_INIT)
STATE_FLAGS = {"view": K.FLAG_VIEW, "tracer": K.FLAG_TRACER}


def test_the_numbers_are_distinct_and_the_bits_single():
    for group in K.GRAPH_CONSTANTS.values():
        assert len(set(group)) == len(group)
    for bits in (HOOK_BITS, tuple(STATE_FLAGS.values())):
        assert len(set(bits)) == len(bits)
        assert all(b > 0 and b & (b - 1) == 0 for b in bits)


@pytest.mark.c_extension
def test_the_compiled_core_has_the_same_numbers():
    from brainstate import _core

    assert _core._GRAPH_CONSTANTS == K.GRAPH_CONSTANTS
    assert _core._STATE_FLAGS == STATE_FLAGS
    assert _core._HOOK_BITS == HOOK_BITS


def test_the_python_layers_take_the_shared_numbers():
    from brainstate import _hooks, _hosted
    from brainstate._core_py import _hooks as py_hooks
    from brainstate._core_py import _refs, _state
    from brainstate.graph import _graphdef, _registry

    kinds = (_registry.GRAPH_NODE, _registry.PYTREE, _registry.STATE, _registry.STATE_LEAF,
             _registry.STATIC, _registry.NONE)
    assert kinds == K.GRAPH_CONSTANTS["kinds"]
    assert (_registry.LIST_KIND, _registry.TUPLE_KIND, _registry.DICT_KIND) == \
        K.GRAPH_CONSTANTS["treedef_kinds"]
    codes = (_graphdef.NODE_DEF, _graphdef.NODE_REF, _graphdef.STATE_DEF, _graphdef.STATE_REF,
             _graphdef.STATIC, _graphdef.PYTREE, _graphdef.LEAF, _graphdef.STATE_AT)
    assert codes == K.GRAPH_CONSTANTS["codes"]
    assert _refs._GRAPH_CONSTANTS is K.GRAPH_CONSTANTS
    assert (_hooks.READ, _hooks.WRITE_BEFORE, _hooks.WRITE_AFTER, _hooks.RESTORE,
            _hooks.INIT) == HOOK_BITS
    assert (py_hooks._READ, py_hooks._WRITE_BEFORE, py_hooks._WRITE_AFTER, py_hooks._RESTORE,
            py_hooks._INIT) == HOOK_BITS
    for mod in (_state, _hosted):
        assert {"view": mod._VIEW, "tracer": mod._TRACER} == STATE_FLAGS


@pytest.fixture
def configured(core):
    brainstate._wiring.configure_core(core)
    return core


def test_a_state_flags_a_view_and_a_tracer_with_the_shared_bits(configured):
    st = configured.StateCore(jnp.zeros(2))
    assert st._flags == 0
    st._set_view(jnp.ones(3))
    assert st._flags == K.FLAG_VIEW
    st._restore_silent(jnp.zeros(2))
    assert st._flags == 0

    seen = []

    @jax.jit
    def f(x):
        s = configured.StateCore(jnp.zeros(2))
        s.value = x
        seen.append(s._flags)
        s.value = jnp.zeros(2)
        return x

    f(jnp.ones(2))
    assert seen == [K.FLAG_TRACER]


def test_a_manager_mask_holds_the_bit_of_each_hook_type(configured):
    from brainstate._hooks import HOOK_TYPES, HookManager

    for hook_type, bit in zip(HOOK_TYPES, HOOK_BITS):
        mgr = HookManager()
        mgr.register_hook(hook_type, lambda ctx: None)
        assert mgr.mask == bit
        if hasattr(configured, "_hook_layout_debug"):  # what the compiled dispatch reads
            assert configured._hook_layout_debug(mgr)[0] == bit


@pytest.mark.parametrize("group", sorted(K.GRAPH_CONSTANTS))
def test_configure_graph_refuses_other_graph_numbers(core, group):
    flat = importlib.import_module("brainstate.graph._flatten")
    changed = dict(K.GRAPH_CONSTANTS)
    changed[group] = tuple(n + 1 for n in changed[group])
    with pytest.raises(RuntimeError, match="differ from the core's"):
        core.configure_graph(
            constants=changed, kinds=flat.R._KIND, classify=flat.R.classify,
            node_impls=flat.R._NODE_IMPLS, plain_nodes=flat.R._PLAIN_NODES,
            flatten_pytree=flat.R.flatten_pytree, node_children=flat.R.node_children,
            seq_treedef=flat.R.seq_treedef, dict_treedef=flat.R.dict_treedef,
            treedef_kinds=flat.R._TREEDEF_KIND, hashable_by_value=flat.R.hashable_by_value,
            fast_ref=flat._FAST_REF, fast_ref_ok=flat._fast_ref_ok, fast_state=flat._FAST_STATE,
            fast_state_ok=flat._fast_state_ok, ref_type=brainstate.TreefyState,
            rebuild_error=flat._RebuildError, missing=flat._MISSING)
