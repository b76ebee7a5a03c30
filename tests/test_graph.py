"""The graph model: nodes, flatten/unflatten, GraphDef, user operations.

Round-trip properties over random graphs live in ``test_graph_props.py``; ``nn.Module`` in
``test_module.py``.
"""

from __future__ import annotations

import copy
import pickle
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import (
    ParamState,
    ShortTermState,
    State,
    StateSignatureError,
    TraceContextError,
    TreefyState,
)
from brainstate import graph
from brainstate.graph import (
    GraphDef,
    Node,
    NodeEdge,
    NodeSpec,
    PytreeEdge,
    PytreeType,
    RefMap,
    StateEdge,
    StateLeafEdge,
    Static,
    StaticEdge,
)
from brainstate.graph import _flatten
from brainstate.util import FlattedDict, NestedDict
from brainstate.util.filter import Any as AnyOf, Not, PathContains


@pytest.fixture(autouse=True)
def _no_global_hooks():
    yield
    brainstate.clear_state_hooks()


class Cell(Node):
    def __init__(self, n=2, tag="cell"):
        self.w = ParamState(jnp.ones((n,)))
        self.h = ShortTermState(jnp.zeros((n,)))
        self.label = tag


class Holder(Node):
    def __init__(self, **attrs):
        vars(self).update(attrs)


def _paths(mapping):
    return list(mapping.to_flat()) if isinstance(mapping, NestedDict) else list(mapping)


# --- Node ----------------------------------------------------------------------------------------


class TestNode:
    def test_public_module_names(self):
        for obj in (Node, GraphDef, NodeEdge, StateEdge, StateLeafEdge, PytreeEdge, StaticEdge,
                    NodeSpec, RefMap, Static, graph.NodeStates, PytreeType):
            assert obj.__module__ == "brainstate.graph", obj
        for fn in (graph.treefy_split, graph.treefy_merge, graph.flatten, graph.states):
            assert fn.__module__ == "brainstate.graph"

    def test_construction_is_plain_new_and_init(self):
        calls = []

        class Counted(Node):
            def __new__(cls, *args):
                calls.append(("new", args))
                return super().__new__(cls)

            def __init__(self, x):
                calls.append(("init", x))
                self.x = x

        c = Counted(3)
        assert calls == [("new", (3,)), ("init", 3)]
        assert c.x == 3

    def test_children_are_sorted_attributes(self):
        node = Holder(zeta=ParamState(jnp.zeros(1)), alpha=ParamState(jnp.zeros(1)), mid=2)
        assert [p for p, _ in graph.iter_leaf(node)] == [("alpha",), ("mid",), ("zeta",)]

    def test_invisible_attrs_are_not_walked_or_split(self):
        class Cached(Node):
            graph_invisible_attrs = ("cache",)

            def __init__(self):
                self.w = ParamState(jnp.ones(2))
                self.cache = ParamState(jnp.ones(3))

        c = Cached()
        assert list(graph.states(c)) == [("w",)]
        rebuilt = graph.clone(c)
        assert not hasattr(rebuilt, "cache")
        assert "cache" not in repr(c)

    def test_repr_hides_none_and_handles_cycles(self):
        node = Holder(a=1, b=None)
        node.me = node
        text = repr(node)
        assert "a=1" in text and "b=" not in text and "Holder(...)" in text

    def test_set_key_rejects_non_str_keys(self):
        from brainstate.graph._node import _node_pop_key, _node_set_key

        with pytest.raises(KeyError, match="Invalid key"):
            _node_set_key(Holder(), 1, 2)
        with pytest.raises(KeyError, match="Invalid key"):
            _node_pop_key(Holder(), 1)

    def test_set_key_updates_existing_state_in_place(self):
        from brainstate.graph._node import _node_set_key

        c = Cell()
        w = c.w
        _node_set_key(c, "w", ParamState(jnp.full(2, 7.0)).to_state_ref())
        assert c.w is w and np.allclose(w.value, 7.0)

    def test_custom_setattr_is_honoured_on_rebuild(self):
        seen = []

        class Watched(Node):
            def __init__(self):
                self.w = ParamState(jnp.ones(2))

            def __setattr__(self, name, value):
                seen.append(name)
                object.__setattr__(self, name, value)

        orig = Watched()
        seen.clear()
        rebuilt = graph.clone(orig)
        assert seen == ["w"] and isinstance(rebuilt.w, ParamState)

    def test_check_valid_context(self):
        c = Cell()
        assert c.check_valid_context(lambda: "bad") is None
        leaked = []

        @jax.jit
        def f(x):
            leaked.append(ParamState(x))
            return x

        f(jnp.ones(2))
        c.extra = leaked[0]
        with pytest.raises(TraceContextError, match="bad"):
            c.check_valid_context(lambda: "bad")


class TestRegisterGraphNodeType:
    class Bag:
        def __init__(self):
            self.items = {}

    @classmethod
    def _register(cls, flatten=None):
        Bag = cls.Bag
        graph.register_graph_node_type(
            Bag,
            flatten=flatten or (lambda b: (sorted(b.items.items()), None)),
            set_key=lambda b, k, v: b.items.__setitem__(k, v),
            pop_key=lambda b, k: b.items.pop(k),
            create_empty=lambda metadata: Bag(),
            clear=lambda b: b.items.clear(),
        )

    def test_round_trip_with_int_keys_and_sharing(self):
        self._register()
        bag = self.Bag()
        st = ParamState(jnp.ones(2))
        bag.items.update({0: st, 1: st, 2: "static"})
        gd, mapping = graph.treefy_split(bag)
        assert _paths(mapping) == [(0,)]
        out = graph.treefy_merge(gd, mapping)
        assert isinstance(out, self.Bag)
        assert out.items[0] is out.items[1] and out.items[2] == "static"

    def test_duplicate_keys_are_rejected(self):
        self._register(lambda b: ([("a", 1), ("a", 2)], None))
        with pytest.raises(ValueError, match="duplicate child keys 'a'"):
            graph.flatten(self.Bag())

    def test_failing_flatten_names_the_path(self):
        def broken(b):
            raise RuntimeError("boom")

        self._register(broken)
        holder = Holder(inner=[self.Bag()])
        with pytest.raises(ValueError, match=r"path inner\.0.*boom"):
            graph.flatten(holder)

    def test_unknown_type_in_graphdef(self):
        class Ghost:
            pass

        spec = NodeSpec(Ghost, 0, None, ())
        gd = GraphDef(NodeEdge(0), (spec,))
        with pytest.raises(ValueError, match="Unknown graph node type .*register_graph_node_type"):
            graph.unflatten(gd, NestedDict())


# --- value kinds, flatten -------------------------------------------------------------------------


class TestFlatten:
    def test_returns_graphdef_and_nested_dict(self):
        gd, mapping = graph.flatten(Cell())
        assert isinstance(gd, GraphDef) and isinstance(mapping, NestedDict)
        assert all(isinstance(v, TreefyState) for v in mapping.to_flat().values())

    def test_treefy_state_false_keeps_live_states(self):
        c = Cell()
        _, mapping = graph.flatten(c, treefy_state=False)
        assert mapping["w"] is c.w

    @pytest.mark.parametrize("root", [ParamState(jnp.ones(1)), 3, "text"])
    def test_non_node_root_is_rejected(self, root):
        with pytest.raises(ValueError, match="Cannot flatten a non-node root of type"):
            graph.flatten(root)

    def test_ref_index_must_be_a_refmap(self):
        with pytest.raises(TypeError, match="RefMap"):
            graph.flatten(Cell(), ref_index={})

    def test_fast_refs_equal_to_state_ref(self):
        st = ParamState(jnp.arange(3.0), name="w", tag="t")
        st.value = jnp.ones(3)
        h = st.register_hook("read", lambda ctx: None)
        _, mapping = graph.flatten(Holder(w=st))
        fast, slow = mapping["w"], st.to_state_ref()
        assert list(vars(fast)) == list(vars(slow))
        assert {k: v for k, v in vars(fast).items() if k != "value"} == \
               {k: v for k, v in vars(slow).items() if k != "value"}
        assert jax.tree.structure(fast) == jax.tree.structure(slow)
        h.remove()

    def test_states_with_custom_metadata_use_to_state_ref(self):
        st = State(jnp.ones(2), unit="mV")
        gd, mapping = graph.flatten(Holder(v=st))
        assert mapping["v"].unit == "mV"
        out = graph.unflatten(gd, mapping)
        assert out.v.unit == "mV" and out.v is not st

    def test_static_attribute_round_trips(self):
        c = Cell(tag="hello")
        assert graph.clone(c).label == "hello"

    def test_plain_array_attribute_is_static(self):
        arr = np.arange(3)
        node = Holder(arr=arr, w=ParamState(jnp.ones(1)))
        gd, mapping = graph.flatten(node)
        assert _paths(mapping) == [("w",)]
        out = graph.unflatten(gd, mapping)
        assert out.arr is arr

    def test_bare_treefy_state_attribute_is_a_pytree(self):
        node = Cell()
        node.ref = ParamState(jnp.arange(3.0)).to_state_ref()
        gd, mapping = graph.flatten(node)
        assert ("ref",) not in mapping.to_flat()
        out = graph.unflatten(gd, mapping)
        assert isinstance(out.ref, TreefyState) and np.allclose(out.ref.value, jnp.arange(3.0))

    def test_none_collapses_to_a_static_edge(self):
        gd = graph.graphdef(Holder(x=None))
        assert gd.node_specs[0].fields == (("x", StaticEdge(None)),)

    def test_hashable_static_tuple_collapses(self):
        gd = graph.graphdef(Holder(t=(1, (2, "a")), lst=[1, 2]))
        fields = dict(gd.node_specs[0].fields)
        assert fields["t"] == StaticEdge((1, (2, "a")))
        assert isinstance(fields["lst"], PytreeEdge)

    def test_identity_hashed_container_does_not_collapse(self):
        ref = ParamState(jnp.ones(1)).to_state_ref()  # a pytree hashed by identity
        fields = dict(graph.graphdef(Holder(r=ref)).node_specs[0].fields)
        assert isinstance(fields["r"], PytreeEdge)

    def test_mixed_dict_keys_error_names_the_path(self):
        node = Holder(table={1: ParamState(jnp.ones(1)), "a": 2})
        with pytest.raises(ValueError, match=r"dict at path table.*not mutually sortable"):
            graph.flatten(node)

    def test_int_dict_keys_are_paths(self):
        node = Holder(table={2: ParamState(jnp.ones(1)), 1: ParamState(jnp.zeros(1))})
        gd, mapping = graph.flatten(node)
        assert _paths(mapping) == [("table", 1), ("table", 2)]
        out = graph.unflatten(gd, mapping)
        assert set(out.table) == {1, 2}

    def test_pytree_keys_of_dataclass_like_containers(self):
        from collections import namedtuple

        Pair = namedtuple("Pair", "first second")
        node = Holder(pair=Pair(ParamState(jnp.ones(1)), ParamState(jnp.zeros(1))))
        gd, mapping = graph.flatten(node)
        assert len(mapping.to_flat()) == 2
        out = graph.unflatten(gd, mapping)
        assert isinstance(out.pair, Pair) and isinstance(out.pair.first, ParamState)

    def test_failing_pytree_flatten_names_the_path(self):
        class Bad:
            pass

        def broken(b):
            raise RuntimeError("nope")

        jax.tree_util.register_pytree_node(Bad, broken, lambda aux, children: Bad())
        with pytest.raises(ValueError, match=r"Cannot walk the .*Bad at path a\.b.*nope"):
            graph.flatten(Holder(a={"b": Bad()}))


# --- GraphDef -------------------------------------------------------------------------------------


class TestGraphDef:
    def test_equal_and_hash_for_identical_models(self):
        a, b = graph.graphdef(Cell()), graph.graphdef(Cell())
        assert a == b and hash(a) == hash(b) and not (a != b)

    def test_unequal_for_different_shapes_or_statics(self):
        assert graph.graphdef(Cell(2)) != graph.graphdef(Cell(3))
        assert graph.graphdef(Cell(tag="a")) != graph.graphdef(Cell(tag="b"))

    def test_identity_hashed_statics_make_graphdefs_unequal(self):
        a = Holder(lock=threading.Lock())
        b = Holder(lock=threading.Lock())
        assert graph.graphdef(a) != graph.graphdef(b)

    def test_unhashable_static_fails_lazily_with_path(self):
        node = Holder(inner=Holder(arr=np.ones(3)), w=ParamState(jnp.ones(1)))
        gd, mapping = graph.treefy_split(node)
        out = graph.treefy_merge(gd, mapping)  # split/merge still work
        assert out.inner.arr is node.inner.arr
        with pytest.raises(TypeError, match=r"not hashable .*unhashable static value at path "
                                             r"inner\.arr .*Wrap dynamic arrays in a State"):
            hash(gd)

    def test_array_statics_compare_without_raising(self):
        arr = np.ones(3)
        assert graph.graphdef(Holder(a=arr)) == graph.graphdef(Holder(a=arr))
        assert graph.graphdef(Holder(a=np.ones(3))) != graph.graphdef(Holder(a=np.ones(3)))

    def test_immutable(self):
        gd = graph.graphdef(Cell())
        with pytest.raises(AttributeError):
            gd.root = None

    def test_is_a_static_pytree(self):
        gd = graph.graphdef(Cell())
        assert jax.tree.leaves(gd) == []
        assert jax.tree.map(lambda x: x, gd) == gd

    def test_jit_keys_on_graphdef(self):
        traces = []

        @jax.jit
        def f(gd, mapping):
            traces.append(1)
            model = graph.treefy_merge(gd, mapping)
            return model.w.value * 2

        for _ in range(2):
            gd, mapping = graph.treefy_split(Cell())
            f(gd, mapping)
        assert len(traces) == 1

    def test_public_view(self):
        c = Cell()
        c.alias = c.w
        gd = graph.graphdef(c)
        assert gd.type is Cell and gd.index == 0 and gd.root == NodeEdge(0)
        (spec,) = gd.node_specs
        fields = dict(spec.fields)
        assert spec.type is Cell and spec.metadata == (Cell,)
        assert fields["alias"] == StateEdge(1, ("alias",), ParamState, c.w._signature)
        assert fields["w"] == StateEdge(1, None, ParamState)
        assert fields["label"] == StaticEdge("cell")

    def test_pytree_root(self):
        c = Cell()
        gd, mapping = graph.flatten([c, c.w])
        assert gd.type is PytreeType and gd.index == 0
        assert isinstance(gd.root, PytreeEdge) and gd.root.treedef == gd.root.metadata
        out = graph.unflatten(gd, mapping)
        assert isinstance(out, list) and out[1] is out[0].w

    def test_hand_built_graphdef_equals_flattened(self):
        c = Cell()
        c.children = [Cell(), {"x": c}]
        gd = graph.graphdef(c)
        rebuilt = GraphDef(gd.root, gd.node_specs)
        assert rebuilt == gd and hash(rebuilt) == hash(gd)

    def test_pickle_and_deepcopy(self):
        gd, mapping = graph.treefy_split(Cell())
        assert pickle.loads(pickle.dumps(gd)) == gd
        assert copy.deepcopy(gd) == gd and copy.copy(gd) is gd

    def test_repr_mentions_types_and_sharing(self):
        c = Cell()
        c.alias = c.w
        text = repr(graph.graphdef(c))
        assert "Cell" in text and "ParamState#1 (shared)" in text

    def test_state_leaf_edge_hand_built(self):
        template, _ = graph.flatten(Cell())
        spec0 = template.node_specs[0]
        spec = NodeSpec(spec0.type, spec0.index, spec0.metadata,
                        (("w", StateLeafEdge(("somewhere",))),))
        gd = GraphDef(NodeEdge(spec0.index), (spec,))
        with pytest.raises(ValueError, match="Expected key somewhere in the state mapping"):
            graph.unflatten(gd, NestedDict())
        ref = ParamState(jnp.arange(3.0)).to_state_ref()
        out = graph.unflatten(gd, NestedDict.from_flat({("somewhere",): ref}))
        assert isinstance(out.w, ParamState) and np.allclose(out.w.value, jnp.arange(3.0))

    def test_state_edge_at_explicit_path(self):
        spec = NodeSpec(Holder, 0, (Holder,), (("w", StateEdge(1, ("elsewhere", "w"), ParamState)),))
        gd = GraphDef(NodeEdge(0), (spec,))
        ref = ParamState(jnp.ones(2)).to_state_ref()
        out = graph.unflatten(gd, {"elsewhere": {"w": ref}})
        assert isinstance(out.w, ParamState)


# --- unflatten: identity -------------------------------------------------------------------------


class TestIdentity:
    def test_tied_weights(self):
        a, b = Cell(), Cell()
        b.w = a.w
        model = Holder(a=a, b=b)
        gd, mapping = graph.treefy_split(model)
        assert ("b", "w") not in mapping.to_flat()
        out = graph.treefy_merge(gd, mapping)
        assert out.a.w is out.b.w and out.a.w is not a.w

    def test_shared_node(self):
        shared = Cell()
        model = Holder(x=shared, y=[shared, {"z": shared}])
        out = graph.clone(model)
        assert out.x is out.y[0] is out.y[1]["z"] and out.x is not shared

    def test_recursive_structure(self):
        a, b = Holder(), Holder()
        a.other, b.other = b, a
        a.me = a
        a.w = ParamState(jnp.ones(1))
        b.w = a.w
        out = graph.clone(a)
        assert out.other.other is out and out.me is out and out.other.w is out.w

    def test_pytree_containers_are_recreated(self):
        d = {"w": ParamState(jnp.ones(1))}
        node = Holder(items=[d, 3, d])
        out = graph.clone(node)
        assert out.items[0] is not out.items[2]
        assert out.items[0]["w"] is out.items[2]["w"]

    def test_parent_refers_to_child_state_under_a_later_name(self):
        # 'child' < 'z_alias': the state is defined inside the child record, used by the parent.
        child = Cell()
        parent = Holder(child=child, z_alias=child.w)
        gd, mapping = graph.treefy_split(parent)
        assert gd._prepass
        out = graph.treefy_merge(gd, mapping)
        assert out.z_alias is out.child.w

    def test_root_pytree_refers_to_a_state_defined_in_a_node(self):
        c = Cell()
        gd, mapping = graph.flatten({"a": c, "b": c.w})
        out = graph.unflatten(gd, mapping)
        assert out["b"] is out["a"].w

    def test_rebuilt_states_are_fresh_and_usable(self):
        c = Cell()
        out = graph.clone(c)
        assert out.w is not c.w and out.w._trace_is_valid()
        assert out.w.stack_level == 0
        out.w.value = jnp.full(2, 3.0)
        assert np.allclose(c.w.value, 1.0)
        assert out.w._signature == c.w._signature

    def test_merge_inside_jit_gives_writable_states(self):
        gd, mapping = graph.treefy_split(Cell())

        @jax.jit
        def step(mapping):
            model = graph.treefy_merge(gd, mapping)
            model.w.value = model.w.value + 1  # states rebuilt in this trace are writable
            return graph.treefy_split(model)[1]

        new = step(mapping)
        assert np.allclose(new["w"].value, 2.0)

    def test_split_merge_split_round_trip(self):
        gd, mapping = graph.treefy_split(Cell())
        gd2, mapping2 = graph.treefy_split(graph.treefy_merge(gd, mapping))
        assert gd2 == gd
        assert jax.tree.structure(mapping2) == jax.tree.structure(mapping)

    def test_poisoned_states_stay_poisoned(self):
        c = Cell()
        c.w._invalidate_trace_value()
        out = graph.clone(c)
        with pytest.raises(TraceContextError):
            out.w.value
        out.w.value = jnp.ones(2)  # a concrete value of the recorded signature un-poisons it
        assert np.allclose(out.w.value, 1.0)

    def test_split_under_a_per_lane_view_records_the_lane_signature(self):
        c = Cell()
        c.w._set_view(jnp.ones(()))  # what a mapping transform installs inside its body
        try:
            out = graph.clone(c)
            assert out.w.value.shape == () and out.w._signature.shape == ()
        finally:
            c.w._restore_rebind(jnp.ones(2))

    def test_metadata_is_kept_and_tags_are_not_aliased(self):
        st = ParamState(jnp.ones(2), name="w", tag="x")
        st.value = jnp.ones(2)
        out = graph.clone(Holder(w=st))
        assert out.w.name == "w" and out.w.tag == {"x"} and out.w._been_writen
        out.w.add_tag("y")
        assert st.tag == {"x"}

    def test_hooks_are_not_carried_by_default(self):
        st = ParamState(jnp.ones(2))
        seen = []
        st.register_hook("write_after", lambda ctx: seen.append("orig"))
        out = graph.clone(Holder(w=st))
        assert not out.w.has_hooks() and out.w.hooks is not st.hooks
        out.w.value = jnp.zeros(2)
        assert seen == []

    def test_copy_hooks_registers_copies(self):
        st = ParamState(jnp.ones(2))
        seen = []
        st.register_hook("write_after", lambda ctx: seen.append(1), priority=5, name="h")
        gd, mapping = graph.treefy_split(Holder(w=st))
        out = graph.treefy_merge(gd, mapping, copy_hooks=True)
        (hook,) = out.w.list_hooks("write_after")
        assert hook.name == "h" and hook.priority == 5 and out.w.hooks is not st.hooks
        out.w.value = jnp.zeros(2)
        assert seen == [1]
        out.w.clear_hooks()
        assert st.has_hooks("write_after")

    def test_rebuild_under_strict_attribute_guard(self):
        gd, mapping = graph.treefy_split(Cell())
        with brainstate.check_state_jax_tracer():
            out = graph.treefy_merge(gd, mapping)
        assert isinstance(out.w, ParamState)

    def test_rebuilt_states_are_not_caught_and_fire_no_init_hooks(self):
        gd, mapping = graph.treefy_split(Cell())
        fired = []
        brainstate.register_state_hook("init", lambda ctx: fired.append(1))
        with brainstate.catch_new_states() as catcher:
            graph.treefy_merge(gd, mapping)
        assert len(catcher) == 0 and fired == []

    def test_fast_rebuild_matches_to_state(self):
        st = ParamState(jnp.ones(2), name="n", tag="t")
        ref = st.to_state_ref()
        a, b = _flatten.ref_to_state(ref), ref.to_state()
        assert type(a) is type(b)
        assert a._attr_dict() == b._attr_dict()
        assert a._signature == b._signature and a._source_info is b._source_info


# --- unflatten: bad input -------------------------------------------------------------------------


class TestMergeErrors:
    def test_graphdef_must_be_a_graphdef(self):
        _, mapping = graph.flatten(Cell())
        with pytest.raises(TypeError, match="GraphDef"):
            graph.unflatten("not-a-graphdef", mapping)

    def test_missing_path(self):
        model = Holder(layers=[Cell(), Cell()])
        gd, mapping = graph.treefy_split(model)
        del mapping["layers"][1]["w"]
        with pytest.raises(ValueError, match=r"Expected key layers\.1\.w in the state mapping"):
            graph.treefy_merge(gd, mapping)

    def test_missing_everything(self):
        gd, _ = graph.flatten(Cell())
        with pytest.raises(ValueError, match="Expected key (h|w) in the state mapping"):
            graph.unflatten(gd, NestedDict())

    def test_extra_path(self):
        gd, mapping = graph.treefy_split(Holder(layers=[Cell()]))
        mapping["layers"][0]["bogus"] = ParamState(jnp.ones(1)).to_state_ref()
        mapping["other"] = {"deep": ParamState(jnp.ones(1)).to_state_ref()}
        with pytest.raises(ValueError, match=r"2 path\(s\) that the GraphDef does not use: "
                                             r"layers\.0\.bogus, other"):
            graph.treefy_merge(gd, mapping)

    def test_wrong_signature(self):
        gd, mapping = graph.treefy_split(Holder(inner=Cell(2)))
        mapping["inner"]["w"] = mapping["inner"]["w"].replace(jnp.ones(5))
        with pytest.raises(StateSignatureError, match=r"ParamState at path inner\.w.*shape"):
            graph.treefy_merge(gd, mapping)

    def test_wrong_dtype(self):
        gd, mapping = graph.treefy_split(Cell())
        bad = jax.tree.map(lambda x: x.astype(jnp.int32), mapping)
        with pytest.raises(StateSignatureError, match="dtype"):
            graph.treefy_merge(gd, bad)

    def test_signature_change_on_purpose(self):
        gd, mapping = graph.treefy_split(Cell(2))
        big = jax.tree.map(lambda x: jnp.zeros(5), mapping)
        out = graph.treefy_merge(gd, big, check_signatures=False)
        assert out.w.value.shape == (5,) and out.w._signature.shape == (5,)
        with brainstate.check_state_value_tree(False):
            out = graph.treefy_merge(gd, big)
        assert out.h.value.shape == (5,)

    def test_non_state_at_state_path(self):
        gd, mapping = graph.treefy_split(Holder(c=Cell()))
        mapping["c"]["w"] = jnp.ones(2)
        with pytest.raises(ValueError, match=r"Expected a TreefyState or State at path c\.w"):
            graph.treefy_merge(gd, mapping)

    def test_leaf_where_a_sub_mapping_belongs(self):
        gd, mapping = graph.treefy_split(Holder(c=Cell()))
        mapping["c"] = ParamState(jnp.ones(2)).to_state_ref()
        with pytest.raises(ValueError, match=r"Expected a sub-mapping at path c"):
            graph.treefy_merge(gd, mapping)

    def test_conflicting_mappings(self):
        gd, mapping = graph.treefy_split(Holder(c=Cell()))
        with pytest.raises(ValueError, match="leaf in one mapping and a sub-mapping"):
            graph.treefy_merge(gd, mapping, {"c": ParamState(jnp.ones(1)).to_state_ref()})

    def test_non_mapping_argument(self):
        gd, _ = graph.treefy_split(Cell())
        with pytest.raises(TypeError, match="state mapping"):
            graph.treefy_merge(gd, [1, 2])

    def test_live_states_in_the_mapping_are_used_as_is(self):
        c = Cell()
        gd, mapping = graph.flatten(c, treefy_state=False)
        out = graph.unflatten(gd, mapping)
        assert out.w is c.w and out is not c

    def test_flatted_mappings_are_accepted(self):
        gd, mapping = graph.treefy_split(Holder(c=Cell()))
        out = graph.treefy_merge(gd, mapping.to_flat())
        assert isinstance(out.c.w, ParamState)


class TestIndexRefCache:
    def _first_build(self):
        gd, mapping = graph.flatten(Cell())
        index_ref: dict = {}
        rebuilt = graph.unflatten(gd, mapping, index_ref=index_ref)
        return gd, rebuilt, index_ref

    def test_reuses_shells_and_updates_states_in_place(self):
        gd, rebuilt, cache = self._first_build()
        w = rebuilt.w
        seen = []
        w.register_hook("write_after", lambda ctx: seen.append(1))
        other = Cell()
        other.w.value = jnp.full(2, 9.0)
        out = graph.unflatten(*graph.flatten(other), index_ref_cache=cache)
        assert out is rebuilt and out.w is w and np.allclose(w.value, 9.0) and seen == [1]

    def test_live_state_values_and_restore(self):
        gd, rebuilt, cache = self._first_build()
        other = Cell()  # never written: restored, not written
        out = graph.unflatten(*graph.flatten(other, treefy_state=False), index_ref_cache=cache)
        assert out is rebuilt and np.allclose(out.w.value, 1.0)

    def test_type_mismatch(self):
        gd, _, _ = self._first_build()
        with pytest.raises(ValueError, match="Expected a node of type Cell"):
            graph.unflatten(*graph.flatten(Cell()), index_ref_cache={0: object()})

    def test_non_state_at_state_index(self):
        gd, rebuilt, cache = self._first_build()
        index = next(i for i, v in cache.items() if isinstance(v, State))
        with pytest.raises(ValueError, match="index_ref_cache holds a object"):
            graph.unflatten(*graph.flatten(Cell()), index_ref_cache={index: object()})

    def test_cache_supplies_states_missing_from_the_mapping(self):
        gd, rebuilt, cache = self._first_build()
        out = graph.unflatten(gd, NestedDict(), index_ref_cache=cache)
        assert out.w is rebuilt.w

    def test_reused_shells_are_cleared_before_the_refill(self):
        gd, rebuilt, cache = self._first_build()
        rebuilt.extra = 1  # not in the GraphDef: gone after the refill
        out = graph.unflatten(*graph.flatten(Cell()), index_ref_cache=cache)
        assert out is rebuilt and not hasattr(out, "extra")
        assert sorted(vars(out)) == ["h", "label", "w"]

    def test_update_adopts_name_tag_and_written_from_the_ref(self):
        gd, rebuilt, cache = self._first_build()
        other = Cell()
        other.w.value = jnp.full(2, 3.0)
        other.w._name = "weights"
        other.w.tag = {"trainable"}
        out = graph.unflatten(*graph.flatten(other), index_ref_cache=cache)
        w = out.w
        assert w is rebuilt.w and w.name == "weights" and w.tag == {"trainable"}
        assert w._been_writen and np.allclose(w.value, 3.0)
        assert not out.h._been_writen  # h was never written: restored

    def test_failed_update_leaves_the_cached_state_as_it_was(self):
        gd, rebuilt, cache = self._first_build()
        w = rebuilt.w
        w._name, w.tag = "before", {"old"}
        handle = w.register_hook("write_before", lambda ctx: setattr(ctx, "cancel", True))
        other = Cell()
        other.w.value = jnp.full(2, 5.0)
        other.w._name, other.w.tag = "after", {"new"}
        with pytest.raises(brainstate.HookCancellationError):
            graph.unflatten(*graph.flatten(other), index_ref_cache=cache)
        handle.remove()
        assert (w.name, w.tag, w._been_writen) == ("before", {"old"}, False)
        assert np.allclose(w.value, 1.0)

    def test_a_class_overriding_update_from_ref_is_honoured(self):
        calls = []

        class Tracked(ParamState):
            def update_from_ref(self, ref):
                calls.append(ref)
                super().update_from_ref(ref)

        holder = Holder(p=Tracked(jnp.ones(2)))
        gd, mapping = graph.flatten(holder)
        cache: dict = {}
        rebuilt = graph.unflatten(gd, mapping, index_ref=cache)
        graph.unflatten(gd, mapping, index_ref_cache=cache)
        assert len(calls) == 1 and isinstance(rebuilt.p, Tracked)

    def test_signature_error_names_the_path(self):
        gd, rebuilt, cache = self._first_build()
        bad = NestedDict({"w": ParamState(jnp.ones(4)).to_state_ref()})
        with pytest.raises(StateSignatureError, match="At path w"):
            graph.unflatten(gd, bad, index_ref_cache=cache)


# --- split / merge with filters, queries ----------------------------------------------------------


class TestSplitMerge:
    def test_merge_does_not_depend_on_the_mappings_key_order_or_key_identity(self):
        # the compiled merge reads each node's entries in the mapping's order when it matches
        # the GraphDef's, by key identity; any other order or equal-but-new keys still merge
        model = Holder(first=Cell(), second=Cell(3))
        gd, mapping = graph.treefy_split(model)
        nested = mapping.to_dict() if hasattr(mapping, "to_dict") else dict(mapping)

        def rebuilt(d, flip):  # new key objects (equal, not identical), optionally reversed
            if not isinstance(d, dict):
                return d
            items = list(d.items())
            return {"".join(list(k)): rebuilt(v, flip) for k, v in (items[::-1] if flip else items)}

        for flip in (False, True):
            out = graph.treefy_merge(gd, NestedDict(rebuilt(nested, flip)))
            for name in ("first", "second"):
                for attr in ("w", "h"):
                    got = getattr(getattr(out, name), attr)
                    want = getattr(getattr(model, name), attr)
                    assert type(got) is type(want)
                    np.testing.assert_array_equal(got.value, want.value)

    def test_no_filter(self):
        gd, mapping = graph.treefy_split(Cell())
        assert _paths(mapping) == [("h",), ("w",)]

    def test_filters_partition(self):
        model = Holder(a=Cell(), b=Cell())
        gd, params, rest = graph.treefy_split(model, ParamState, ...)
        assert _paths(params) == [("a", "w"), ("b", "w")]
        assert _paths(rest) == [("a", "h"), ("b", "h")]
        out = graph.treefy_merge(gd, params, rest)
        assert isinstance(out.b.h, ShortTermState)

    def test_single_filter_must_match_everything(self):
        with pytest.raises(ValueError, match=r"(?s)Non-exhaustive filters.*: h\..*Use `...`"):
            graph.treefy_split(Cell(), ParamState)

    def test_ellipsis_must_be_last(self):
        with pytest.raises(ValueError, match=r"`...` or `True` can only be used as the last"):
            graph.treefy_split(Cell(), ..., ParamState)

    def test_path_filter(self):
        model = Holder(enc=Cell(), dec=Cell())
        gd, enc, rest = graph.treefy_split(model, PathContains("enc"), ...)
        assert _paths(enc) == [("enc", "h"), ("enc", "w")]

    def test_treefy_states(self):
        model = Holder(a=Cell())
        assert _paths(graph.treefy_states(model, ParamState)) == [("a", "w")]
        p, s = graph.treefy_states(model, ParamState, ShortTermState)
        assert _paths(s) == [("a", "h")]
        assert graph.treefy_states(model).to_flat().keys() == graph.treefy_split(model)[1].to_flat().keys()

    def test_graphdef_and_clone(self):
        c = Cell()
        assert graph.graphdef(c) == graph.flatten(c)[0]
        out = graph.clone(c)
        assert out.w.value is c.w.value  # values shared by reference


class TestQueries:
    def test_states_dedups_shared_state(self):
        c = Cell()
        model = Holder(a=c, b=c.w, z=[c.w])
        found = graph.states(model)
        assert list(found) == [("a", "h"), ("a", "w")]
        assert isinstance(found, FlattedDict)

    def test_states_filters(self):
        model = Holder(a=Cell())
        assert list(graph.states(model, ParamState)) == [("a", "w")]
        p, s = graph.states(model, ParamState, ShortTermState)
        assert list(s) == [("a", "h")]
        (only,) = (graph.states(model, ParamState, Not(ParamState))[0],)
        assert list(only) == [("a", "w")]

    def test_states_hierarchy(self):
        inner = Holder(w=ParamState(jnp.ones(1)))
        mid = Holder(inner=inner, v=ParamState(jnp.ones(1)))
        root = Holder(mid=mid, u=ParamState(jnp.ones(1)))
        assert list(graph.states(root, allowed_hierarchy=(0, 0))) == [("u",)]
        assert list(graph.states(root, allowed_hierarchy=(1, 1))) == [("mid", "v")]
        assert list(graph.states(root, allowed_hierarchy=(2, 5))) == [("mid", "inner", "w")]
        with pytest.raises(ValueError, match="allowed_hierarchy"):
            graph.states(root, allowed_hierarchy=3)

    def test_pytree_nesting_does_not_count_as_depth(self):
        root = Holder(items=[{"w": ParamState(jnp.ones(1))}])
        assert list(graph.states(root, allowed_hierarchy=(0, 0))) == [("items", 0, "w")]

    def test_nodes(self):
        a = Cell()
        root = Holder(a=a, b=[a, Cell()])
        found = graph.nodes(root)
        assert list(found) == [("a",), ("b", 1), ()]
        assert found[()] is root
        assert list(graph.nodes(root, Cell)) == [("a",), ("b", 1)]
        assert list(graph.nodes(root, allowed_hierarchy=(1, 1))) == [("a",), ("b", 1)]

    def test_iter_leaf_yields_shared_state_once(self):
        st = ParamState(jnp.ones(1))
        root = Holder(a=st, b=[st, 5])
        assert [(p, v is st if isinstance(v, State) else v) for p, v in graph.iter_leaf(root)] == \
               [(("a",), True), (("b", 1), 5)]

    def test_iter_leaf_skips_none_and_terminates_on_cycles(self):
        root = Holder(n=None, e=[], x=1)
        root.me = root
        assert [p for p, _ in graph.iter_leaf(root)] == [("x",)]

    def test_iter_node_count(self):
        model = Cell()
        assert len(list(graph.iter_node([model, model]))) == 1

    def test_iter_node_post_order_and_hierarchy(self):
        inner = Holder()
        root = Holder(inner=inner)
        assert [p for p, _ in graph.iter_node(root)] == [("inner",), ()]
        assert [p for p, _ in graph.iter_node(root, allowed_hierarchy=(0, 0))] == [()]

    def test_filter_algebra(self):
        tagged = ParamState(jnp.ones(1), tag="fast")
        model = Holder(a=Cell(), t=tagged)
        params = set(graph.states(model, ParamState))
        fast = set(graph.states(model, "fast"))
        assert fast == {("t",)}
        assert set(graph.states(model, AnyOf(ParamState, "fast"))) == params | fast
        assert set(graph.states(model, Not(ParamState))) == set(graph.states(model)) - params
        assert set(graph.states(model, [ParamState, ShortTermState])) == set(graph.states(model))


class TestPopStates:
    def test_requires_a_filter(self):
        with pytest.raises(ValueError, match="Expected at least one filter"):
            graph.pop_states(Cell())

    def test_pops_live_states(self):
        c = Cell()
        w = c.w
        popped = graph.pop_states(c, ParamState)
        assert isinstance(popped, NestedDict) and popped["w"] is w
        assert not hasattr(c, "w") and hasattr(c, "h")

    def test_several_filters(self):
        c = Cell()
        p, s = graph.pop_states(c, ParamState, ShortTermState)
        assert list(p) == ["w"] and list(s) == ["h"] and vars(c) == {"label": "cell"}

    def test_shared_aliases_are_all_detached(self):
        c = Cell()
        other = Holder(alias=c.w)
        root = Holder(c=c, other=other, z=c.w)
        popped = graph.pop_states(root, ParamState)
        assert _paths(popped) == [("c", "w")]
        assert not hasattr(c, "w") and not hasattr(other, "alias") and not hasattr(root, "z")

    def test_state_inside_a_pytree_is_refused_and_nothing_changes(self):
        c = Cell()
        root = Holder(c=c, items=[ParamState(jnp.ones(1))])
        with pytest.raises(ValueError, match=r"Cannot pop key 0 from node of type list at path items"):
            graph.pop_states(root, ParamState)
        assert hasattr(c, "w")

    def test_tags_from_catch_new_states(self):
        with brainstate.catch_new_states("new"):
            fresh = ParamState(jnp.ones(1))
        root = Holder(old=ParamState(jnp.ones(1)), fresh=fresh)
        popped = graph.pop_states(root, "new")
        assert popped["fresh"] is fresh and hasattr(root, "old")


class TestUpdateStates:
    def test_update_from_refs_keeps_identity_and_hooks(self):
        c = Cell()
        w = c.w
        seen = []
        w.register_hook("write_after", lambda ctx: seen.append(1))
        new = Cell()
        new.w.value = jnp.full(2, 4.0)
        graph.update_states(c, graph.treefy_states(new))
        assert c.w is w and np.allclose(w.value, 4.0) and seen == [1]

    def test_update_from_live_states_and_several_mappings(self):
        c = Cell()
        src = Cell()
        src.w.value = jnp.full(2, 5.0)
        src.h.value = jnp.full(2, 6.0)
        graph.update_states(c, graph.states(src, ParamState), graph.states(src, ShortTermState))
        assert np.allclose(c.w.value, 5.0) and np.allclose(c.h.value, 6.0)

    def test_absent_attribute_is_created(self):
        c = Cell()
        live = ParamState(jnp.ones(3))
        graph.update_states(c, {"ref": ParamState(jnp.ones(1)).to_state_ref(), "live": live})
        assert isinstance(c.ref, ParamState) and c.live is live

    def test_errors(self):
        root = Holder(c=Cell(), items=[ParamState(jnp.ones(1))], n=3)
        ref = ParamState(jnp.ones(2)).to_state_ref()
        with pytest.raises(ValueError, match=r"Expected a subgraph for 'c' at path c"):
            graph.update_states(root, {"c": ref})
        with pytest.raises(ValueError, match=r"non-State attribute 'n'"):
            graph.update_states(root, {"n": ref})
        with pytest.raises(ValueError, match=r"Cannot set key 5 on immutable node of type list"):
            graph.update_states(root, {"items": {5: ref}})
        with pytest.raises(ValueError, match="Unsupported update type int"):
            graph.update_states(root, {"c": {"w": 3}})
        with pytest.raises(ValueError, match="Unsupported update type dict"):
            graph.update_states(root, {"new": {"x": ref}})
        with pytest.raises(ValueError, match=r"Invalid key 3 \(int\) at path c\.3"):
            graph.update_states(root, {"c": {3: ref}})

    def test_signature_mismatch_updates_nothing(self):
        c = Cell()
        bad = {"h": ShortTermState(jnp.full(2, 8.0)).to_state_ref(),
               "w": ParamState(jnp.ones(5)).to_state_ref()}
        with pytest.raises(StateSignatureError, match="(?s)ParamState at path w.*Nothing was updated"):
            graph.update_states(c, bad)
        assert np.allclose(c.h.value, 0.0)


class TestDeepCopy:
    def test_independent_copy_with_sharing(self):
        c = Cell()
        c.alias = c.w
        c.lock = threading.Lock()
        out = copy.deepcopy(c)
        assert out.alias is out.w and out.w is not c.w
        assert out.lock is c.lock  # cannot be copied: shared
        out.w.value = out.w.value + 1
        assert np.allclose(c.w.value, 1.0)

    def test_memo_keeps_outside_references_shared(self):
        c = Cell()
        a, b = copy.deepcopy([c, c.w])
        assert b is a.w


class TestContexts:
    def test_split_and_merge_contexts_share_objects(self):
        shared = ParamState(jnp.ones(2))
        a, b = Holder(w=shared), Holder(w=shared, v=ParamState(jnp.zeros(1)))
        with graph.split_context() as (ctx, ref_index):
            ga, sa = ctx.treefy_split(a)
            gb, params, rest = ctx.treefy_split(b, ParamState, ...)
            assert shared in ref_index
        assert _paths(params) == [("v",)]
        with graph.merge_context() as (ctx, index_ref):
            a2 = ctx.treefy_merge(ga, sa)
            b2 = ctx.treefy_merge(gb, params, rest)
            assert a2.w in index_ref.values()
        assert a2.w is b2.w and a2.w is not shared

    def test_merge_outside_the_context_names_the_problem(self):
        shared = ParamState(jnp.ones(2))
        with graph.split_context() as (ctx, _):
            ctx.treefy_split(Holder(w=shared))
            gb, sb = ctx.treefy_split(Holder(w=shared))
        with pytest.raises(ValueError, match=r"state at path w refers to index .*merge_context"):
            graph.treefy_merge(gb, sb)

    def test_exited_contexts(self):
        with graph.split_context() as (sctx, _):
            pass
        with graph.merge_context() as (mctx, _):
            pass
        with pytest.raises(RuntimeError, match="exited"):
            sctx.treefy_split(Cell())
        with pytest.raises(RuntimeError, match="exited"):
            mctx.treefy_merge(*graph.treefy_split(Cell()))


class TestConvert:
    def test_round_trip(self):
        node = Cell()
        tree, found = graph.graph_to_tree({"m": node, "x": 1})
        assert isinstance(tree["m"], graph.NodeStates) and len(jax.tree.leaves(found)) == 2
        assert all(hasattr(x, "shape") for x in jax.tree.leaves(tree["m"]))
        back = graph.tree_to_graph(tree)
        assert isinstance(back["m"], Cell) and back["x"] == 1
        assert np.allclose(back["m"].w.value, node.w.value)

    def test_sharing_between_leaves(self):
        node = Cell()
        tree, _ = graph.graph_to_tree([node, node, Holder(w=node.w)])
        back = graph.tree_to_graph(tree)
        assert back[0] is back[1] and back[2].w is back[0].w

    def test_through_vmap(self):
        node = Cell()
        tree, _ = graph.graph_to_tree(node)
        batched = jax.tree.map(lambda x: jnp.stack([x, x + 1]), tree)

        def f(t):
            m = graph.tree_to_graph(t)
            return m.w.value.sum()

        assert np.allclose(jax.vmap(f)(batched), [2.0, 4.0])

    def test_inconsistent_aliasing(self):
        shared = Cell()
        graph.graph_to_tree([shared, shared], prefix=0)
        with pytest.raises(ValueError, match="Inconsistent aliasing detected"):
            graph.graph_to_tree([shared, shared], prefix=[0, 1])
        tree, _ = graph.graph_to_tree([shared, shared], prefix=[0, 1], check_aliasing=False)
        inner = Holder()
        with pytest.raises(ValueError, match="Inconsistent aliasing detected"):
            graph.graph_to_tree([Holder(i=inner), Holder(i=inner)], prefix=[0, 1])

    def test_stale_trace(self):
        leaked = []

        @jax.jit
        def f(x):
            leaked.append(ParamState(x))
            return x

        f(jnp.ones(2))
        with pytest.raises(TraceContextError, match="different trace level"):
            graph.graph_to_tree(Holder(w=leaked[0]))

    def test_prefix_leaf_count_mismatch(self):
        with pytest.raises(ValueError):
            graph.graph_to_tree([Cell(), Cell()], prefix=[0, 1, 2])

    def test_map_non_graph_nodes(self):
        tree, _ = graph.graph_to_tree({"x": jnp.zeros(3)}, map_non_graph_nodes=True,
                                      split_fn=lambda ctx, path, prefix, leaf: leaf + 1.0)
        back = graph.tree_to_graph(tree, map_non_graph_nodes=True,
                                   merge_fn=lambda ctx, path, prefix, leaf: leaf - 1.0)
        assert np.allclose(back["x"], 0.0)

    def test_node_states(self):
        gd, state = graph.treefy_split(Cell())
        ns = graph.NodeStates.from_split(gd, state)
        assert ns.graphdef is gd and ns.state is state
        with pytest.raises(ValueError, match="No graphdef"):
            graph.NodeStates.from_states(state).graphdef
        with pytest.raises(ValueError, match="exactly one"):
            graph.NodeStates.from_states(state, state).state
        assert graph.NodeStates.from_prefixes([1, 2], metadata="m").states == (1, 2)


class TestMisc:
    def test_refmap(self):
        a, b = [1], [1]
        m = RefMap([(a, 0)])
        m[b] = 1
        assert len(m) == 2 and m[a] == 0 and m[b] == 1 and list(m) == [a, b]
        del m[a]
        assert a not in m and b in m
        with pytest.raises(KeyError):
            m[a]
        assert "RefMap" in repr(m)

    def test_static(self):
        s = Static((1, 2))
        assert jax.tree.leaves(s) == [] and s == Static((1, 2)) and hash(s) == hash(Static((1, 2)))
        gd = graph.graphdef(Holder(s=s))
        assert dict(gd.node_specs[0].fields)["s"] == StaticEdge(s)
        assert graph.clone(Holder(s=s)).s is s

    def test_split_merge_and_queries_leave_no_reference_cycles(self):
        import gc

        model = Holder(layers=[Cell() for _ in range(5)], table={"a": Cell()})
        graph.clone(model)  # warm the per-type caches
        gc.collect()
        gc.disable()
        try:
            gd, *mappings = graph.treefy_split(model, ParamState, ...)
            graph.treefy_merge(gd, *mappings)
            graph.states(model)
            graph.nodes(model)
            list(graph.iter_leaf(model))
            graph.update_states(model, graph.treefy_states(model))
            del gd, mappings
            assert gc.collect() == 0
        finally:
            gc.enable()

    def test_gc_is_paused_during_operations_and_restored(self):
        import gc

        seen = []

        class Probe(Node):
            def __init__(self):
                self.w = ParamState(jnp.ones(1))

        graph.register_graph_node_type(
            Probe,
            flatten=lambda n: (seen.append(gc.isenabled()) or [("w", n.w)], None),
            set_key=lambda n, k, v: setattr(n, k, v),
            pop_key=lambda n, k: vars(n).pop(k),
            create_empty=lambda m: object.__new__(Probe),
            clear=lambda n: vars(n).clear(),
        )
        assert gc.isenabled()
        graph.treefy_split(Probe())
        assert seen == [False] and gc.isenabled()
        gc.disable()
        try:
            graph.treefy_split(Probe())
            assert not gc.isenabled()
        finally:
            gc.enable()


def test_a_state_class_registered_as_a_pytree_is_still_a_state():
    # brainpy registers its Variable (a State) as a pytree node: the graph must see a state
    @jax.tree_util.register_pytree_node_class
    class TreeState(brainstate.ShortTermState):
        def tree_flatten(self):
            return (self.value,), None

        @classmethod
        def tree_unflatten(cls, aux, children):
            return cls(children[0])

    class M(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            self.s = TreeState(jnp.zeros(2))

    m = M()
    assert list(m.states().values()) == [m.s]
    gd, st = graph.treefy_split(m)
    m2 = graph.treefy_merge(gd, st)
    assert type(m2.s) is TreeState and m2.s is not m.s
