"""Tests of ``NestedDict``, ``FlattedDict``, ``flat_mapping`` and ``nest_mapping``."""

from __future__ import annotations

import copy
import pickle

import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import brainstate
from brainstate.util import FlattedDict, NestedDict, flat_mapping, nest_mapping
from brainstate.util._nested_dict import empty_node
from brainstate.util.filter import OfType, PathContains, WithTag

NON_EXHAUSTIVE = "Non-exhaustive filters, got a non-empty remainder"
USE_ELLIPSIS = "Use `...` to match all remaining elements"
ELLIPSIS_LAST = "`...` or `True` can only be used as the last filters"


def sample_nested():
    return NestedDict({"a": 1, "b": {"c": 2, "d": {"e": "x"}}, "f": 3.5})


def states_mapping():
    return NestedDict(
        {
            "w": brainstate.ParamState(jnp.zeros(2)),
            "h": brainstate.ShortTermState(jnp.ones(3)),
            "sub": {"b": brainstate.ParamState(jnp.zeros(1)), "n": 4},
        }
    )


# --- basics -------------------------------------------------------------------------------------


def test_is_dict_and_public_module():
    d = sample_nested()
    assert isinstance(d, dict) and isinstance(FlattedDict(), dict)
    assert NestedDict.__module__ == FlattedDict.__module__ == "brainstate.util"
    assert type(d["b"]) is dict


def test_attribute_access_reads_items():
    d = sample_nested()
    assert d.a == 1 and d.b["d"]["e"] == "x"
    state = brainstate.ParamState(jnp.zeros(2))
    d2 = NestedDict({"w": state})
    d2.w.value = jnp.ones(2)
    np.testing.assert_array_equal(d2["w"].value, jnp.ones(2))


def test_missing_attribute_raises_key_error():
    d = sample_nested()
    with pytest.raises(KeyError, match="has no key 'zz'"):
        d.zz
    # ours: the error is also an AttributeError, so the attribute protocol keeps working
    with pytest.raises(AttributeError):
        d.zz
    assert getattr(d, "zz", "default") == "default"
    assert not hasattr(d, "zz") and not hasattr(d, "__deepcopy_missing__")


def test_methods_win_over_keys_in_attribute_access():
    d = NestedDict({"split": 1})
    assert callable(d.split) and d["split"] == 1


def test_cannot_set_instance_attributes():
    with pytest.raises(AttributeError):
        NestedDict().x = 1


def test_to_dict_and_copy_keep_types():
    d = sample_nested()
    plain = d.to_dict()
    assert type(plain) is dict and plain == d
    c = d.copy()
    assert type(c) is NestedDict and c == d and c is not d
    assert type(FlattedDict({("a",): 1}).copy()) is FlattedDict


def test_pickle_and_deepcopy_round_trip():
    for m in (sample_nested(), sample_nested().to_flat()):
        for clone in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m), copy.copy(m)):
            assert type(clone) is type(m) and clone == m


# --- flat_mapping / nest_mapping ----------------------------------------------------------------


def test_flat_mapping_basic_and_order():
    flat = flat_mapping({"foo": 1, "bar": {"a": 2, "b": {}}})
    assert type(flat) is FlattedDict
    assert list(flat.items()) == [(("foo",), 1), (("bar", "a"), 2)]


def test_flat_mapping_keep_empty_nodes():
    flat = flat_mapping({"a": 1, "b": {}, "c": {"d": {}}}, keep_empty_nodes=True)
    assert flat == {("a",): 1, ("b",): empty_node, ("c", "d"): empty_node}
    assert flat_mapping({}, keep_empty_nodes=True) == {}
    nested = nest_mapping(flat)
    assert nested.to_dict() == {"a": 1, "b": {}, "c": {"d": {}}}


def test_flat_mapping_is_leaf():
    nested = {"a": 1, "b": {"c": 2, "d": 3}, "e": {"f": {"g": 4}}}
    flat = flat_mapping(nested, is_leaf=lambda path, m: len(path) >= 1)
    assert flat == {("a",): 1, ("b",): {"c": 2, "d": 3}, ("e",): {"f": {"g": 4}}}
    seen = []
    flat_mapping({"x": {"y": 1}}, is_leaf=lambda path, m: seen.append(path) or False)
    assert seen == [(), ("x",)]
    whole = {"x": 1}
    assert flat_mapping(whole, is_leaf=lambda path, m: True) == {(): whole}


def test_flat_mapping_sep():
    assert dict(flat_mapping({"a": 1, "b": {"c": 2}}, sep="/")) == {"a": 1, "b/c": 2}


def test_flat_mapping_sep_needs_str_parts():
    with pytest.raises(TypeError, match=r"needs string path parts.*\('layers', 0\)"):
        flat_mapping({"layers": {0: 1}}, sep="/")


def test_flat_mapping_sep_collision_is_an_error():
    with pytest.raises(ValueError, match="join to the same key 'a/b'"):
        flat_mapping({"a/b": 1, "a": {"b": 2}}, sep="/")


@pytest.mark.parametrize("bad", [[("a", 1)], 3, "ab", None])
def test_flat_mapping_rejects_non_mapping(bad):
    with pytest.raises(TypeError, match="flat_mapping expects a Mapping"):
        flat_mapping(bad)


def test_nest_mapping_basic():
    nested = nest_mapping({("foo",): 1, ("bar", "a"): 2, ("bar", "b", 0): 3})
    assert type(nested) is NestedDict
    assert nested.to_dict() == {"foo": 1, "bar": {"a": 2, "b": {0: 3}}}
    assert type(nested["bar"]) is dict


def test_nest_mapping_sep_and_list_paths():
    assert nest_mapping({"a": 1, "b/c": 2}, sep="/").to_dict() == {"a": 1, "b": {"c": 2}}
    with pytest.raises(TypeError, match="needs string keys"):
        nest_mapping({("a",): 1}, sep="/")


def test_nest_mapping_rejects_empty_path():
    with pytest.raises(ValueError, match=r"empty path \(\)"):
        nest_mapping({(): 1})


@pytest.mark.parametrize(
    "flat",
    [
        {("a",): 1, ("a", "b"): 2},
        {("a", "b"): 2, ("a",): 1},
        {("a", "b", "c"): 1, ("a", "b"): 2},
        {("a",): 1, ("a",) + ("b",): empty_node},
    ],
)
def test_nest_mapping_rejects_leaf_branch_conflicts(flat):
    with pytest.raises(ValueError, match="both a leaf and"):
        nest_mapping(flat)


def test_nest_mapping_never_descends_into_user_leaves():
    leaf = {"x": 1}
    with pytest.raises(ValueError, match="already a leaf"):
        nest_mapping({("a",): leaf, ("a", "b"): 2})
    assert leaf == {"x": 1}


def test_nest_mapping_rejects_non_path_keys():
    with pytest.raises(TypeError, match="expects tuple paths"):
        nest_mapping({"abc": 1})
    with pytest.raises(TypeError, match="nest_mapping expects a Mapping"):
        nest_mapping([(("a",), 1)])


def test_to_flat_from_flat_to_nest_from_nest():
    d = sample_nested()
    flat = d.to_flat()
    assert flat == {("a",): 1, ("b", "c"): 2, ("b", "d", "e"): "x", ("f",): 3.5}
    assert NestedDict.from_flat(flat) == d
    assert NestedDict.from_flat(list(flat.items())) == d
    assert flat.to_nest() == d and type(flat.to_nest()) is NestedDict
    assert FlattedDict.from_nest(d) == flat and type(FlattedDict.from_nest(d)) is FlattedDict
    assert NestedDict({"a": {}, "b": 1}).to_flat() == {("b",): 1}


# --- pytree registration ------------------------------------------------------------------------


def test_pytree_children_sorted_keys_as_aux():
    d = NestedDict({"b": 2, "a": 1, "c": {"z": 3, "y": 4}})
    leaves, treedef = jax.tree.flatten(d)
    assert leaves == [1, 2, 4, 3]
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert type(rebuilt) is NestedDict and rebuilt == d
    assert jtu.tree_flatten(d, is_leaf=lambda x: x is not d)[0] == [1, 2, {"z": 3, "y": 4}]


def test_pytree_key_paths_are_dict_keys():
    f = FlattedDict({("b", 0): 2, ("a",): 1})
    paths = [p for p, _ in jtu.tree_leaves_with_path(f)]
    assert paths == [(jtu.DictKey(("a",)),), (jtu.DictKey(("b", 0)),)]
    n = NestedDict({"w": {"x": 1}})
    assert jtu.tree_leaves_with_path(n)[0][0] == (jtu.DictKey("w"), jtu.DictKey("x"))


def test_pytree_treedef_independent_of_insertion_order():
    a = NestedDict({"x": 1, "y": 2})
    b = NestedDict({"y": 2, "x": 1})
    assert jax.tree.structure(a) == jax.tree.structure(b)
    assert jax.tree.structure(a) != jax.tree.structure(FlattedDict({"x": 1, "y": 2}))


def test_pytree_unsortable_flat_keys_still_flatten_deterministically():
    f1 = FlattedDict({("a", "b"): 1, ("a", 0): 2})
    f2 = FlattedDict({("a", 0): 2, ("a", "b"): 1})
    l1, t1 = jax.tree.flatten(f1)
    l2, t2 = jax.tree.flatten(f2)
    assert l1 == l2 and t1 == t2
    assert jax.tree.unflatten(t1, l1) == f1


def test_tree_map_and_jit_keep_types():
    d = NestedDict({"a": jnp.ones(2), "b": {"c": jnp.zeros(())}})
    out = jax.jit(lambda m: jax.tree.map(lambda x: x + 1, m))(d)
    assert type(out) is NestedDict and type(out["b"]) is dict
    np.testing.assert_array_equal(out["a"], 2 * jnp.ones(2))
    f = jax.tree.map(lambda x: x * 2, FlattedDict({("a",): 1, ("b", "c"): 2}))
    assert type(f) is FlattedDict and f == {("a",): 2, ("b", "c"): 4}
    assert jax.tree.leaves(NestedDict()) == []


def test_pytree_of_treefy_states_has_only_array_leaves():
    refs = states_mapping().treefy_state()
    leaves = jax.tree.leaves(refs)
    assert len(leaves) == 4 and all(isinstance(x, (jax.Array, int)) for x in leaves)


def test_empty_node_is_an_empty_pytree():
    f = FlattedDict({("a",): 1, ("b",): empty_node})
    assert jax.tree.leaves(f) == [1]
    assert jax.tree.map(lambda x: x + 1, f)[("b",)] is empty_node
    assert pickle.loads(pickle.dumps(empty_node)) is empty_node


# --- split / filter -----------------------------------------------------------------------------


def test_split_requires_exhaustive_filters():
    d = sample_nested()
    with pytest.raises(ValueError, match=NON_EXHAUSTIVE) as info:
        d.split(int)
    msg = str(info.value)
    assert USE_ELLIPSIS in msg and "('b', 'd', 'e')" in msg and "('f',)" in msg


def test_split_single_and_many():
    d = sample_nested()
    everything = d.split(...)
    assert type(everything) is NestedDict and everything == d and everything is not d
    ints, floats, rest = d.split(int, float, ...)
    assert ints.to_dict() == {"a": 1, "b": {"c": 2}}
    assert floats.to_dict() == {"f": 3.5}
    assert rest.to_dict() == {"b": {"d": {"e": "x"}}}
    assert d.split(True) == d


def test_split_first_match_wins_and_empty_parts():
    d = sample_nested()
    first, second, rest = d.split(int, (int, float), ...)
    assert first.to_flat() == {("a",): 1, ("b", "c"): 2}
    assert second.to_flat() == {("f",): 3.5}
    nothing, rest = d.split(bytes, ...)
    assert nothing == {} and type(nothing) is NestedDict and rest == d


def test_split_path_filters():
    d = sample_nested()
    b_part, rest = d.split(PathContains("b"), ...)
    assert b_part.to_dict() == {"b": {"c": 2, "d": {"e": "x"}}}


@pytest.mark.parametrize("method", ["split", "filter"])
@pytest.mark.parametrize("bad", [(..., int), (True, int), (..., int, ...)])
def test_ellipsis_only_last(method, bad):
    d = sample_nested()
    with pytest.raises(ValueError, match=ELLIPSIS_LAST):
        getattr(d, method)(*bad)
    with pytest.raises(ValueError, match=ELLIPSIS_LAST):
        getattr(d.to_flat(), method)(*bad)


def test_trailing_run_of_ellipses_is_allowed():
    d = sample_nested()
    a, b, c = d.split(int, ..., True)
    assert a.to_flat() == {("a",): 1, ("b", "c"): 2} and c == {}


def test_filter_is_not_exhaustive():
    d = sample_nested()
    ints = d.filter(int)
    assert type(ints) is NestedDict and ints.to_dict() == {"a": 1, "b": {"c": 2}}
    ints, strs = d.filter(int, str)
    assert strs.to_dict() == {"b": {"d": {"e": "x"}}}
    assert d.filter(lambda path, v: isinstance(v, float)).to_dict() == {"f": 3.5}
    assert d.subset(int) == d.filter(int)
    assert d.subset(int, str) == d.filter(int, str)


def test_split_and_filter_need_a_filter():
    with pytest.raises(TypeError):
        sample_nested().split()
    with pytest.raises(TypeError):
        sample_nested().to_flat().filter()


def test_split_states_and_refs_by_type_and_tag():
    live = states_mapping()
    live["sub"]["b"].add_tag("fast")
    for m in (live, live.treefy_state()):
        params, rest = m.split(brainstate.ParamState, ...)
        assert set(params.to_flat()) == {("w",), ("sub", "b")}
        assert set(rest.to_flat()) == {("h",), ("sub", "n")}
        fast = m.filter("fast")
        assert set(fast.to_flat()) == {("sub", "b")}
        with pytest.raises(ValueError, match=NON_EXHAUSTIVE):
            m.split(brainstate.ParamState)


def test_flatted_split_and_filter():
    f = sample_nested().to_flat()
    ints, rest = f.split(int, ...)
    assert type(ints) is FlattedDict and ints == {("a",): 1, ("b", "c"): 2}
    assert rest == {("b", "d", "e"): "x", ("f",): 3.5}
    with pytest.raises(ValueError, match=NON_EXHAUSTIVE):
        f.split(int, float)
    assert f.filter(str) == {("b", "d", "e"): "x"}
    assert f.filter(OfType(int), WithTag("nothing"))[1] == {}
    assert f.subset(float) == {("f",): 3.5}


# --- merge and operators ------------------------------------------------------------------------


def test_nested_merge_later_wins_and_accepts_flat():
    a = NestedDict({"a": 1, "b": {"c": 2}})
    b = FlattedDict({("b", "c"): 20, ("b", "d"): 3})
    merged = NestedDict.merge(a, b, NestedDict({"e": 5}))
    assert type(merged) is NestedDict
    assert merged.to_dict() == {"a": 1, "b": {"c": 20, "d": 3}, "e": 5}
    assert a.to_dict() == {"a": 1, "b": {"c": 2}}


def test_merge_returns_a_new_mapping():
    a = NestedDict({"a": 1})
    m = NestedDict.merge(a)
    assert m == a and m is not a
    single_flat = NestedDict.merge(FlattedDict({("x", "y"): 1}))
    assert type(single_flat) is NestedDict and single_flat.to_dict() == {"x": {"y": 1}}


@pytest.mark.parametrize("merge", [NestedDict.merge, FlattedDict.merge])
@pytest.mark.parametrize("bad", [{"a": 1}, [("a", 1)], None])
def test_merge_rejects_other_types(merge, bad):
    with pytest.raises(TypeError, match="Expected Nested or Flatted Mapping"):
        merge(NestedDict({"a": 1}), bad)


def test_merge_leaf_branch_conflict_is_value_error():
    with pytest.raises(ValueError, match="both a leaf and"):
        NestedDict.merge(NestedDict({"a": 1}), NestedDict({"a": {"b": 2}}))


def test_flatted_merge():
    merged = FlattedDict.merge(
        FlattedDict({("a",): 1}), NestedDict({"a": 10, "b": {"c": 2}}), FlattedDict({("d",): 4})
    )
    assert type(merged) is FlattedDict
    assert merged == {("a",): 10, ("b", "c"): 2, ("d",): 4}


def test_nested_or_sub_ior():
    a = NestedDict({"a": 1, "b": {"c": 2, "d": 3}})
    b = NestedDict({"b": {"d": 30}, "e": 4})
    assert (a | b).to_dict() == {"a": 1, "b": {"c": 2, "d": 30}, "e": 4}
    assert (a - NestedDict({"b": {"c": 0}})).to_dict() == {"a": 1, "b": {"d": 3}}
    assert (a - NestedDict()) == a and (a - NestedDict()) is not a
    inner_a = a
    a |= b
    assert a is inner_a and a.to_dict() == {"a": 1, "b": {"c": 2, "d": 30}, "e": 4}


@pytest.mark.parametrize("bad", [{"a": 1}, FlattedDict({("a",): 1}), 3])
def test_nested_operators_reject_non_nested(bad):
    d = NestedDict({"a": 1})
    with pytest.raises(TypeError, match="expects a NestedDict"):
        d | bad
    with pytest.raises(TypeError, match="expects a NestedDict"):
        d - bad
    with pytest.raises(TypeError, match="expects a NestedDict"):
        d |= bad


def test_flatted_or_sub():
    a = FlattedDict({("a",): 1, ("b",): 2})
    b = FlattedDict({("b",): 20, ("c",): 3})
    assert a | b == {("a",): 1, ("b",): 20, ("c",): 3} and type(a | b) is FlattedDict
    assert a - b == {("a",): 1} and type(a - b) is FlattedDict
    for bad in ({("a",): 1}, NestedDict({"a": 1})):
        with pytest.raises(TypeError, match="expects a FlattedDict"):
            a | bad
        with pytest.raises(TypeError, match="expects a FlattedDict"):
            a - bad


# --- pure dicts ---------------------------------------------------------------------------------


def test_to_pure_dict_keeps_leaves_drops_empty():
    refs = states_mapping().treefy_state()
    refs["empty"] = {}
    pure = refs.to_pure_dict()
    assert type(pure) is dict and type(pure["sub"]) is dict
    assert "empty" not in pure
    assert isinstance(pure["w"], brainstate.TreefyState)
    assert pure["sub"]["n"] == 4


def test_replace_by_pure_dict_default_uses_replace():
    refs = states_mapping().treefy_state()
    inner = refs["sub"]
    refs.replace_by_pure_dict({"w": jnp.full(2, 5.0), "sub": {"n": 7}})
    assert isinstance(refs["w"], brainstate.TreefyState) and refs["w"].type is brainstate.ParamState
    np.testing.assert_array_equal(refs["w"].value, jnp.full(2, 5.0))
    assert refs["sub"] is inner and refs["sub"]["n"] == 7


def test_replace_by_pure_dict_str_leaf_is_replaced_not_str_replace():
    d = NestedDict({"name": "old"})
    d.replace_by_pure_dict({"name": "new"})
    assert d["name"] == "new"


def test_replace_by_pure_dict_custom_fn():
    d = NestedDict({"a": 1, "b": {"c": 2}})
    d.replace_by_pure_dict({"b": {"c": 10}}, replace_fn=lambda old, new: old + new)
    assert d.to_dict() == {"a": 1, "b": {"c": 12}}


@pytest.mark.parametrize("pure", [{"zz": 1}, {"b": 1}, {"a": {"x": 1}}, {"a": 5, "b": {"q": 1}}])
def test_replace_by_pure_dict_unknown_path_leaves_mapping_unchanged(pure):
    d = NestedDict({"a": 1, "b": {"c": 2}})
    before = copy.deepcopy(d)
    with pytest.raises(ValueError, match="key in pure_dict not available in state"):
        d.replace_by_pure_dict(pure)
    assert d == before


def test_replace_by_pure_dict_rejects_non_mapping():
    with pytest.raises(TypeError, match="expects a nested Mapping"):
        NestedDict({"a": 1}).replace_by_pure_dict([("a", 1)])


# --- states -------------------------------------------------------------------------------------


def test_treefy_state_replaces_states_only():
    live = states_mapping()
    live["lst"] = [brainstate.State(jnp.zeros(1)), 2]
    refs = live.treefy_state()
    assert type(refs) is NestedDict and type(refs["sub"]) is dict
    assert isinstance(refs["w"], brainstate.TreefyState) and refs["w"].type is brainstate.ParamState
    assert isinstance(refs["sub"]["b"], brainstate.TreefyState)
    assert refs["sub"]["n"] == 4
    assert isinstance(refs["lst"][0], brainstate.TreefyState) and refs["lst"][1] == 2
    assert isinstance(live["w"], brainstate.ParamState)
    flat_refs = live.to_flat().treefy_state()
    assert type(flat_refs) is FlattedDict
    assert isinstance(flat_refs[("sub", "b")], brainstate.TreefyState)
    again = refs.treefy_state()
    assert again["w"] is refs["w"]


def test_to_dict_values():
    w = brainstate.ParamState(jnp.arange(3.0))
    f = FlattedDict({("w",): w, ("n",): 42})
    values = f.to_dict_values()
    assert type(values) is dict
    np.testing.assert_array_equal(values[("w",)], jnp.arange(3.0))
    assert values[("n",)] == 42


def test_assign_dict_values_writes_states_and_replaces_others():
    w = brainstate.ParamState(jnp.zeros(3))
    f = FlattedDict({("w",): w, ("n",): 42})
    f.assign_dict_values({("w",): jnp.ones(3), ("n",): 100, ("extra",): 0})
    assert f[("w",)] is w
    np.testing.assert_array_equal(w.value, jnp.ones(3))
    assert f[("n",)] == 100 and ("extra",) not in f


def test_assign_dict_values_missing_key_writes_nothing():
    w = brainstate.ParamState(jnp.zeros(3))
    f = FlattedDict({("w",): w, ("n",): 42})
    with pytest.raises(KeyError, match=r"Invalid key: \('n',\)"):
        f.assign_dict_values({("w",): jnp.ones(3)})
    np.testing.assert_array_equal(w.value, jnp.zeros(3))
    with pytest.raises(TypeError, match="expects a Mapping"):
        f.assign_dict_values([(("w",), 1)])


def test_assign_dict_values_goes_through_the_signature_check():
    f = FlattedDict({("w",): brainstate.ParamState(jnp.zeros(3))})
    with pytest.raises(brainstate.StateSignatureError):
        f.assign_dict_values({("w",): jnp.zeros(4)})


def test_round_trip_values():
    f = FlattedDict({("a",): brainstate.State(jnp.zeros(2)), ("b", "c"): brainstate.State(1.0)})
    saved = jax.tree.map(lambda x: x + 1, f.to_dict_values())
    f.assign_dict_values(saved)
    np.testing.assert_array_equal(f[("a",)].value, jnp.ones(2))
    assert float(f[("b", "c")].value) == 2.0


# --- repr ---------------------------------------------------------------------------------------


def test_repr_format():
    d = NestedDict({"a": 1, "b": {"c": "x"}, "e": {}})
    assert repr(d) == "NestedDict({\n  'a': 1,\n  'b': {\n    'c': 'x'\n  },\n  'e': {}\n})"
    assert repr(NestedDict()) == "NestedDict({})"
    assert repr(FlattedDict({("a", 0): 1})) == "FlattedDict({\n  ('a', 0): 1\n})"


def test_repr_indents_multiline_values_and_survives_cycles():
    class Multi:
        def __repr__(self):
            return "Multi(\n  x=1\n)"

    d = NestedDict({"b": {"m": Multi()}})
    assert "    'm': Multi(\n      x=1\n    )" in repr(d)
    loop = {}
    loop["self"] = loop
    assert "{...}" in repr(NestedDict({"loop": loop}))


def test_repr_of_states_mapping():
    text = repr(states_mapping().treefy_state())
    assert text.startswith("NestedDict({\n  'w': TreefyState(type=ParamState")


# --- properties ---------------------------------------------------------------------------------

_str_keys = st.text(alphabet="abcxyz", min_size=1, max_size=3)


def _nested(keys):
    return st.recursive(
        st.integers(-5, 5),
        lambda children: st.dictionaries(keys, children, min_size=1, max_size=3),
        max_leaves=12,
    ).filter(lambda x: isinstance(x, dict))


@settings(max_examples=150, deadline=None)
@given(_nested(_str_keys))
def test_flat_nest_round_trip(tree):
    flat = flat_mapping(tree)
    assert nest_mapping(flat).to_dict() == tree
    assert flat_mapping(nest_mapping(flat)) == flat
    assert NestedDict(tree).to_flat().to_nest() == tree
    joined = flat_mapping(tree, sep="\x00")
    assert nest_mapping(joined, sep="\x00").to_dict() == tree


@settings(max_examples=150, deadline=None)
@given(_nested(_str_keys), st.lists(st.sampled_from([0, 1, 2, 3, 4, 5]), max_size=3))
def test_split_then_merge_gives_back_the_mapping(tree, thresholds):
    d = NestedDict(tree)
    filters = [lambda path, v, t=t: v < t for t in thresholds] + [...]
    parts = d.split(*filters)
    parts = parts if isinstance(parts, tuple) else (parts,)
    assert len(parts) == len(filters)
    assert NestedDict.merge(*parts) == d
    assert sum(len(p.to_flat()) for p in parts) == len(d.to_flat())
    flat_parts = d.to_flat().split(*filters)
    flat_parts = flat_parts if isinstance(flat_parts, tuple) else (flat_parts,)
    assert FlattedDict.merge(*flat_parts) == d.to_flat()


@settings(max_examples=100, deadline=None)
@given(_nested(_str_keys))
def test_pytree_round_trip(tree):
    d = NestedDict(tree)
    leaves, treedef = jax.tree.flatten(d)
    assert jax.tree.unflatten(treedef, leaves) == d
    f = d.to_flat()
    leaves, treedef = jax.tree.flatten(f)
    assert jax.tree.unflatten(treedef, leaves) == f
    assert sorted(leaves) == sorted(f.values())


@settings(max_examples=100, deadline=None)
@given(_nested(_str_keys), _nested(_str_keys))
def test_sub_drops_exactly_the_shared_paths(a_tree, b_tree):
    a, b = NestedDict(a_tree), NestedDict(b_tree)
    diff = a - b
    assert not set(diff.to_flat()) & set(b.to_flat())
    assert set(diff.to_flat()) | (set(a.to_flat()) & set(b.to_flat())) == set(a.to_flat())
