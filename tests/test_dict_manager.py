"""Tests of ``DictManager`` and ``StateDictManager``."""

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
from brainstate.util import DictManager
from brainstate.util._dict_manager import StateDictManager


def mixed():
    return DictManager(a=1, b=2.0, c="x", d=3)


def states():
    return StateDictManager(
        w=brainstate.ParamState(jnp.zeros(2)),
        h=brainstate.ShortTermState(jnp.ones(3)),
        b=brainstate.ParamState(jnp.zeros(1)),
    )


# --- DictManager --------------------------------------------------------------------------------


def test_public_names():
    assert DictManager.__module__ == "brainstate.util"
    assert StateDictManager.__module__ == "brainstate"
    assert brainstate.StateDictManager is StateDictManager
    assert brainstate.util.DictManager is DictManager
    assert issubclass(StateDictManager, DictManager) and issubclass(DictManager, dict)


def test_subset_by_type_tuple_and_callable():
    dm = mixed()
    assert dm.subset(int) == {"a": 1, "d": 3} and type(dm.subset(int)) is DictManager
    assert dm.subset((int, float)) == {"a": 1, "b": 2.0, "d": 3}
    assert dm.subset(lambda v: v == 3) == {"d": 3}
    assert dm.not_subset(int) == {"b": 2.0, "c": "x"}
    assert dm.not_subset((int, str)) == {"b": 2.0}


@pytest.mark.parametrize("method", ["subset", "not_subset", "split"])
def test_type_selections_reject_non_types(method):
    with pytest.raises(TypeError, match="expects a class or a tuple of classes"):
        getattr(mixed(), method)("int")


def test_unique_and_unique_in_place():
    shared = [1]
    dm = DictManager(a=shared, b=[1], c=shared, d=shared)
    u = dm.unique()
    assert list(u) == ["a", "b"] and u["a"] is shared and len(dm) == 4
    assert dm.unique_() is dm and list(dm) == ["a", "b"]


def test_assign():
    dm = DictManager(a=1)
    dm.assign({"b": 2}, {"a": 10}, c=3)
    assert dm == {"a": 10, "b": 2, "c": 3}
    with pytest.raises(TypeError, match="Must be an instance of dict"):
        dm.assign({"z": 0}, [("x", 1)])
    assert "z" not in dm


def test_split_by_types_first_match_wins():
    ints, numbers, rest = mixed().split(int, (int, float))
    assert ints == {"a": 1, "d": 3} and numbers == {"b": 2.0} and rest == {"c": "x"}
    assert all(type(p) is DictManager for p in (ints, numbers, rest))
    (everything,) = mixed().split()
    assert everything == mixed()


def test_filter_map_keys_values():
    dm = mixed()
    assert dm.filter_by_predicate(lambda k, v: k in "ab") == {"a": 1, "b": 2.0}
    assert dm.map_values(str) == {"a": "1", "b": "2.0", "c": "x", "d": "3"}
    assert dm.map_keys(str.upper) == {"A": 1, "B": 2.0, "C": "x", "D": 3}
    assert type(dm.map_keys(str.upper)) is DictManager
    with pytest.raises(ValueError, match="Key transformation created duplicate: 'k'"):
        dm.map_keys(lambda k: "k")


def test_pop_by_keys_and_values():
    dm = mixed()
    dm.pop_by_keys(["a", "zz"])
    assert list(dm) == ["b", "c", "d"]
    shared = object()
    dm = DictManager(a=shared, b=object(), c=shared)
    dm.pop_by_values([shared])
    assert list(dm) == ["b"]
    dm = DictManager(a=1, b=2, c=1)
    dm.pop_by_values([1], by="value")
    assert dm == {"b": 2}


def test_value_comparisons_with_unhashable_values():
    dm = DictManager(a=[1], b=[2])
    dm.pop_by_values([[1]], by="value")
    assert dm == {"b": [2]}
    assert DictManager(a=[1], b=[2]).intersection_by_values([[2]], by="value") == {"b": [2]}


@pytest.mark.parametrize(
    "call",
    [
        lambda dm: dm.pop_by_values([1], by="eq"),
        lambda dm: dm.difference_by_values([1], by="hash"),
        lambda dm: dm.intersection_by_values([1], by=None),
    ],
)
def test_value_methods_reject_unknown_by(call):
    with pytest.raises(ValueError, match="Unsupported method"):
        call(mixed())


def test_difference_and_intersection():
    shared = object()
    dm = DictManager(a=shared, b=1, c=2)
    assert dm.difference_by_keys(["a"]) == {"b": 1, "c": 2}
    assert dm.intersection_by_keys(iter(["a", "q"])) == {"a": shared}
    assert dm.difference_by_values([shared]) == {"b": 1, "c": 2}
    assert dm.intersection_by_values([shared]) == {"a": shared}
    assert dm.difference_by_values([1], by="value") == {"a": shared, "c": 2}
    assert dm.intersection_by_values([2], by="value") == {"c": 2}
    # by='id' does not match an equal but distinct object
    assert DictManager(a=[1]).intersection_by_values([[1]]) == {}


def test_add_or_ior():
    a = DictManager(a=1, b=2)
    for combined in (a + {"b": 20, "c": 3}, a | {"b": 20, "c": 3}):
        assert combined == {"a": 1, "b": 20, "c": 3} and type(combined) is DictManager
    assert a == {"a": 1, "b": 2}
    same = a
    a |= {"c": 3}
    assert a is same and a == {"a": 1, "b": 2, "c": 3}
    for bad in (3, [("x", 1)]):
        with pytest.raises(TypeError):
            a + bad
        with pytest.raises(TypeError):
            a | bad
        with pytest.raises(TypeError):
            a |= bad


def test_to_dict_copy_deepcopy_pickle_repr():
    dm = DictManager(a=[1], b=2)
    assert type(dm.to_dict()) is dict and dm.to_dict() == dm
    c = copy.copy(dm)
    assert type(c) is DictManager and c == dm and c["a"] is dm["a"]
    assert type(dm.copy()) is DictManager
    d = copy.deepcopy(dm)
    assert type(d) is DictManager and d == dm and d["a"] is not dm["a"]
    p = pickle.loads(pickle.dumps(dm))
    assert type(p) is DictManager and p == dm
    assert repr(dm) == "DictManager({'a': [1], 'b': 2})"


def test_pytree_values_children_keys_aux_insertion_order():
    dm = DictManager(b=1, a=jnp.ones(2))
    leaves, treedef = jax.tree.flatten(dm)
    assert leaves[0] == 1 and leaves[1].shape == (2,)
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert type(rebuilt) is DictManager and list(rebuilt) == ["b", "a"]
    assert [p for p, _ in jtu.tree_leaves_with_path(dm)] == [
        (jtu.DictKey("b"),),
        (jtu.DictKey("a"),),
    ]
    out = jax.jit(lambda m: jax.tree.map(lambda x: x * 2, m))(dm)
    assert type(out) is DictManager and int(out["b"]) == 2


def test_subclasses_are_pytrees_too():
    class Mine(DictManager):
        pass

    m = Mine(x=1, y=2)
    assert jax.tree.leaves(m) == [1, 2]
    assert type(jax.tree.map(lambda v: v, m)) is Mine


def test_add_unique_key():
    obj, other = object(), object()
    dm = DictManager()
    dm.add_unique_key("k", obj)
    dm.add_unique_key("k", obj)
    assert dm == {"k": obj}
    with pytest.raises(ValueError, match="Key 'k' already exists with a different value"):
        dm.add_unique_key("k", other)
    assert dm["k"] is obj


def test_add_unique_value():
    obj = object()
    dm = DictManager(pre=obj)
    assert dm.add_unique_value("again", obj) is False
    new = object()
    assert dm.add_unique_value("new", new) is True
    assert dm.add_unique_value("new2", new) is False
    assert list(dm) == ["pre", "new"]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda dm, v: dm.__setitem__("x", v),
        lambda dm, v: dm.update(x=v),
        lambda dm, v: dm.setdefault("x", v),
        lambda dm, v: dm.__ior__({"x": v}),
        lambda dm, v: dm.assign({"x": v}),
    ],
)
def test_add_unique_value_sees_values_stored_other_ways(mutate):
    dm = DictManager()
    dm.add_unique_value("first", object())  # builds the identity index
    v = object()
    mutate(dm, v)
    assert dm.add_unique_value("y", v) is False


@pytest.mark.parametrize(
    "remove",
    [
        lambda dm: dm.__delitem__("a"),
        lambda dm: dm.pop("a"),
        lambda dm: dm.popitem(),
        lambda dm: dm.clear(),
        lambda dm: dm.pop_by_keys(["a"]),
        lambda dm: dm.__setitem__("a", object()),
    ],
)
def test_add_unique_value_after_removal_accepts_the_value_again(remove):
    v = object()
    dm = DictManager()
    assert dm.add_unique_value("a", v) is True
    remove(dm)
    assert dm.add_unique_value("b", v) is True and dm["b"] is v


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "set", "del"]), st.sampled_from("abcd"), st.integers(0, 3)),
        max_size=25,
    )
)
def test_add_unique_value_matches_an_identity_scan(ops):
    pool = [object() for _ in range(4)]
    dm = DictManager()
    for op, key, i in ops:
        val = pool[i]
        if op == "add":
            present = any(v is val for v in dm.values())
            assert dm.add_unique_value(key, val) is (not present)
            if not present:
                assert dm[key] is val
        elif op == "set":
            dm[key] = val
        elif key in dm:
            del dm[key]


# --- StateDictManager ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["add_unique_key", "add_unique_value"])
@pytest.mark.parametrize("bad", [1, jnp.zeros(2), brainstate.FakeState(1)])
def test_state_manager_validates_only_in_add_unique(method, bad):
    sm = StateDictManager()
    with pytest.raises(TypeError, match="must be instance of State"):
        getattr(sm, method)("k", bad)
    assert "k" not in sm
    sm["k"] = bad  # plain item assignment stores anything
    assert sm["k"] is bad


def test_state_manager_add_unique_accepts_states():
    sm = StateDictManager()
    s = brainstate.State(jnp.zeros(1))
    sm.add_unique_key("s", s)
    assert sm.add_unique_value("t", s) is False
    assert list(sm) == ["s"]


def test_assign_values_writes_through_value():
    sm = states()
    w = sm["w"]
    sm.assign_values({"w": jnp.ones(2)}, {"h": jnp.zeros(3)})
    assert sm["w"] is w
    np.testing.assert_array_equal(w.value, jnp.ones(2))
    np.testing.assert_array_equal(sm["h"].value, jnp.zeros(3))


def test_assign_values_rejects_non_dict_and_unknown_keys_before_writing():
    sm = states()
    with pytest.raises(TypeError, match="Must be an instance of dict."):
        sm.assign_values({"w": jnp.ones(2)}, [("h", 1)])
    with pytest.raises(KeyError, match="'zz' is not a key"):
        sm.assign_values({"w": jnp.ones(2)}, {"zz": 1})
    np.testing.assert_array_equal(sm["w"].value, jnp.zeros(2))


def test_assign_values_goes_through_the_signature_check():
    with pytest.raises(brainstate.StateSignatureError):
        states().assign_values({"w": jnp.ones(5)})


def test_split_values_collect_values_to_dict_values():
    sm = states()
    params, rest = sm.split_values(brainstate.ParamState)
    assert type(params) is DictManager and type(rest) is DictManager
    assert list(params) == ["w", "b"] and list(rest) == ["h"]
    np.testing.assert_array_equal(rest["h"], jnp.ones(3))
    long_, short, none = sm.split_values(brainstate.LongTermState, brainstate.ShortTermState)
    assert list(long_) == ["w", "b"] and list(short) == ["h"] and none == {}
    collected = sm.collect_values()
    assert type(collected) is DictManager and list(collected) == ["w", "h", "b"]
    assert isinstance(collected["w"], jax.Array)
    plain = sm.to_dict_values()
    assert type(plain) is dict and set(plain) == {"w", "h", "b"}
    np.testing.assert_array_equal(plain["h"], jnp.ones(3))


def test_state_manager_split_by_type():
    params, rest = states().split(brainstate.ParamState)
    assert type(params) is StateDictManager and type(rest) is StateDictManager
    assert list(params) == ["w", "b"] and list(rest) == ["h"]
    a, b, c = states().split(brainstate.ShortTermState, brainstate.State)
    assert list(a) == ["h"] and list(b) == ["w", "b"] and c == {}
    with pytest.raises(TypeError):
        states().split()


def test_state_manager_is_a_pytree_and_keeps_inherited_api():
    sm = states()
    leaves = jax.tree.leaves(sm)
    assert len(leaves) == 3 and all(isinstance(x, brainstate.State) for x in leaves)
    assert type(jax.tree.map(lambda s: s, sm)) is StateDictManager
    assert type(sm.subset(brainstate.ParamState)) is StateDictManager
    assert list(sm.unique()) == ["w", "h", "b"]
    assert type(sm + {"x": brainstate.State(1)}) is StateDictManager
