"""Tests of ``brainstate.util.filter``."""

from __future__ import annotations

import copy
import pickle

import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import brainstate
from brainstate.util import filter as F
from brainstate.util.filter import (
    All,
    Any,
    Everything,
    Not,
    Nothing,
    OfType,
    PathContains,
    WithTag,
    to_predicate,
)


class Tagged:
    def __init__(self, tag):
        self.tag = tag


class Typed:
    def __init__(self, type_):
        self.type = type_


class Base:
    pass


class Derived(Base):
    pass


class UnhashablePredicate:
    """A callable with value equality and no hash (like a dataclass with eq=True)."""

    __hash__ = None

    def __init__(self, answer):
        self.answer = answer

    def __call__(self, path, x):
        return self.answer

    def __eq__(self, other):
        return isinstance(other, UnhashablePredicate) and other.answer == self.answer


# --- module surface -----------------------------------------------------------------------------


def test_filter_reachable_as_util_attribute():
    assert brainstate.util.filter is F
    assert set(F.__all__) == {
        "to_predicate", "WithTag", "PathContains", "OfType", "Any", "All", "Not",
        "Everything", "Nothing",
    }


# --- to_predicate -------------------------------------------------------------------------------


def test_to_predicate_str_becomes_with_tag():
    pred = to_predicate("trainable")
    assert isinstance(pred, WithTag) and pred.tag == "trainable"
    assert pred((), Tagged("trainable")) and not pred((), Tagged("frozen"))


def test_to_predicate_type_becomes_of_type():
    pred = to_predicate(np.ndarray)
    assert isinstance(pred, OfType) and pred.type is np.ndarray
    assert pred((), np.zeros(2)) and not pred((), [1, 2])


def test_to_predicate_type_checked_before_callable():
    # classes are callable, yet must become OfType, including bool itself
    assert to_predicate(bool) == OfType(bool)
    assert to_predicate(brainstate.ParamState) == OfType(brainstate.ParamState)


@pytest.mark.parametrize("f", [True, ...])
def test_to_predicate_everything(f):
    pred = to_predicate(f)
    assert isinstance(pred, Everything)
    assert pred((), None) and pred(("a",), 3)


@pytest.mark.parametrize("f", [False, None])
def test_to_predicate_nothing(f):
    pred = to_predicate(f)
    assert isinstance(pred, Nothing)
    assert not pred((), None) and not pred(("a",), 3)


def test_to_predicate_callable_passes_through():
    def custom(path, x):
        return x == "special"

    assert to_predicate(custom) is custom
    existing = WithTag("a")
    assert to_predicate(existing) is existing


@pytest.mark.parametrize("container", [list, tuple])
def test_to_predicate_list_or_tuple_becomes_any(container):
    pred = to_predicate(container(["a", int]))
    assert isinstance(pred, Any)
    assert pred == Any(WithTag("a"), OfType(int))
    assert pred((), Tagged("a")) and pred((), 3) and not pred((), "s")


@pytest.mark.parametrize("bad", [42, 1.5, {"key": "value"}, object(), b"tag", {1, 2}])
def test_to_predicate_rejects_other_values(bad):
    with pytest.raises(TypeError, match="Invalid collection filter") as info:
        to_predicate(bad)
    assert type(bad).__name__ in str(info.value)


def test_to_predicate_int_one_is_not_true():
    # bools are filters, but ints equal to them are not
    with pytest.raises(TypeError, match="Invalid collection filter"):
        to_predicate(1)


def test_to_predicate_nested_list_bad_member_raises():
    with pytest.raises(TypeError, match="Invalid collection filter"):
        to_predicate(["a", 3])


# --- WithTag ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag, expected",
    [
        ("x", True),
        ("y", False),
        ({"x", "z"}, True),
        (frozenset({"x"}), True),
        (["z", "x"], True),
        (("z",), False),
        (set(), False),
        (None, False),
        (3, False),
    ],
)
def test_with_tag_matching(tag, expected):
    assert WithTag("x")((), Tagged(tag)) is expected


def test_with_tag_without_tag_attribute():
    assert not WithTag("x")((), {"tag": "x"})
    assert not WithTag("x")((), 3)


def test_with_tag_ignores_path():
    obj = Tagged("t")
    assert WithTag("t")((), obj) and WithTag("t")(("a", 0, "b"), obj)


def test_with_tag_on_live_states_and_refs():
    state = brainstate.State(jnp.zeros(2), tag="fast")
    state.add_tag("slow")
    untagged = brainstate.State(jnp.zeros(2))
    for pred in (WithTag("fast"), WithTag("slow")):
        assert pred((), state)
        assert pred((), state.to_state_ref())
    assert not WithTag("fast")((), untagged)
    assert not WithTag("fast")((), untagged.to_state_ref())


@pytest.mark.parametrize("bad", [["a", "b"], {"a"}, 5, None, ("a",)])
def test_with_tag_rejects_non_str(bad):
    with pytest.raises(TypeError, match="WithTag expects a str tag"):
        WithTag(bad)


def test_with_tag_is_frozen():
    f = WithTag("a")
    with pytest.raises(AttributeError):
        f.tag = "b"
    with pytest.raises(AttributeError):
        del f.tag
    with pytest.raises(AttributeError):
        f.other = 1
    assert f.tag == "a"


def test_with_tag_eq_hash_repr():
    assert WithTag("a") == WithTag("a")
    assert WithTag("a") != WithTag("b")
    assert WithTag("a") != "a"
    assert WithTag("a") != PathContains("a")
    assert hash(WithTag("a")) == hash(WithTag("a"))
    assert len({WithTag("a"), WithTag("a")}) == 1
    assert repr(WithTag("test_tag")) == "WithTag('test_tag')"


# --- PathContains -------------------------------------------------------------------------------


def test_path_contains_plain_parts():
    f = PathContains("weight")
    assert f(("model", "layer1", "weight"), None)
    assert f(["weight"], None)
    assert not f(("model", "bias"), None)
    assert not f((), None)


def test_path_contains_int_key():
    f = PathContains(0)
    assert f(("layers", 0, "w"), None)
    assert not f(("layers", 1, "w"), None)


def test_path_contains_jax_key_entries():
    tree = {"layer": {"weight": [1, 2]}, "obj": jtu.Partial(print, 7)}
    paths = [p for p, _ in jtu.tree_leaves_with_path(tree)]
    weight_path = paths[0]
    assert isinstance(weight_path[0], jtu.DictKey)
    assert PathContains("weight")(weight_path, None)
    assert PathContains("layer")(weight_path, None)
    assert PathContains(1)(paths[1], None)  # SequenceKey(idx=1)
    assert not PathContains("bias")(weight_path, None)
    assert PathContains("w")((jtu.GetAttrKey("w"),), None)


def test_path_contains_does_not_unwrap_arbitrary_objects():
    class Named:
        name = "weight"

    # only JAX key entries are unwrapped; other path parts compare as themselves
    assert not PathContains("weight")((Named(),), None)


def test_path_contains_ignores_value():
    f = PathContains("t")
    assert all(f(("t",), v) for v in ("s", 1, None, {"d": 1}))


def test_path_contains_eq_hash_repr_frozen():
    assert PathContains("a") == PathContains("a")
    assert PathContains("a") != PathContains("b")
    assert hash(PathContains(0)) == hash(PathContains(0))
    assert repr(PathContains("layer2")) == "PathContains('layer2')"
    with pytest.raises(AttributeError):
        PathContains("a").key = "b"


# --- OfType -------------------------------------------------------------------------------------


def test_of_type_instances_and_subclasses():
    f = OfType(Base)
    assert f((), Base()) and f((), Derived())
    assert not f((), "not related")
    assert not OfType(Derived)((), Base())


def test_of_type_builtin_types():
    assert OfType(str)((), "x") and not OfType(str)((), 1)
    assert OfType(list)((), [1]) and not OfType(list)((), (1,))


def test_of_type_type_attribute_fallback():
    assert OfType(Base)((), Typed(Derived))
    assert not OfType(Derived)((), Typed(Base))
    assert not OfType(list)((), Typed("not-a-type"))
    assert not OfType(list)((), Typed(None))


def test_of_type_isinstance_match_does_not_read_type_attribute():
    class Exploding(Base):
        @property
        def type(self):
            raise AssertionError("the fallback must not run when isinstance matched")

    assert OfType(Base)((), Exploding())


def test_of_type_live_states_and_refs():
    param = brainstate.ParamState(jnp.zeros(2))
    short = brainstate.ShortTermState(jnp.zeros(2))
    f = OfType(brainstate.LongTermState)
    assert f((), param) and f((), param.to_state_ref())
    assert not f((), short) and not f((), short.to_state_ref())
    assert OfType(brainstate.State)((), short.to_state_ref())
    assert OfType(brainstate.TreefyState)((), short.to_state_ref())


def test_of_type_eq_hash_repr_frozen():
    assert OfType(int) == OfType(int) and OfType(int) != OfType(str)
    assert hash(OfType(int)) == hash(OfType(int))
    assert repr(OfType(str)) == f"OfType({str!r})"
    with pytest.raises(AttributeError):
        OfType(int).type = str


# --- Any / All / Not ----------------------------------------------------------------------------


def test_any_or_and_short_circuit():
    calls = []

    def counting(path, x):
        calls.append(x)
        return True

    f = Any(lambda p, x: x == "match", counting)
    assert f((), "match")
    assert calls == []
    assert f((), "other")
    assert calls == ["other"]


def test_all_and_short_circuit():
    calls = []

    def counting(path, x):
        calls.append(x)
        return True

    f = All(lambda p, x: False, counting)
    assert not f((), "anything")
    assert calls == []


def test_empty_any_all_identities():
    assert not Any()((), "x")
    assert All()((), "x")


def test_combinators_convert_members():
    f = Any("t", int)
    assert f.predicates == (WithTag("t"), OfType(int))
    assert All(True).predicates == (Everything(),)
    assert Not(None).predicate == Nothing()
    assert Not("t")((), Tagged("u"))
    with pytest.raises(TypeError, match="Invalid collection filter"):
        All(3)
    with pytest.raises(TypeError, match="Invalid collection filter"):
        Not(3.5)


def test_combinators_eq_is_structural_and_ordered():
    assert Any("a", "b") == Any("a", "b")
    assert Any("a", "b") != Any("b", "a")
    assert All("a", np.ndarray) == All("a", np.ndarray)
    assert All("a", np.ndarray) != All(np.ndarray, "a")
    assert Any("a") != All("a")
    assert Not(WithTag("t")) == Not("t")
    assert Not("t") != Not("u")
    assert Any("a") != "not a filter"


def test_combinators_hash_consistent_with_eq():
    assert len({Any("a", "b"), Any("a", "b")}) == 1
    assert len({All("a", int): 1, All("a", int): 2}) == 1
    assert len({Not("t"), Not("t")}) == 1


def test_combinators_hash_falls_back_for_unhashable_members():
    a, b = Any(UnhashablePredicate(True)), Any(UnhashablePredicate(True))
    assert a == b and hash(a) == hash(b)
    assert All(UnhashablePredicate(False)) == All(UnhashablePredicate(False))
    assert hash(All(UnhashablePredicate(False))) == hash(All(UnhashablePredicate(False)))
    assert hash(Not(UnhashablePredicate(True))) == hash(Not(UnhashablePredicate(True)))
    assert len({Not(UnhashablePredicate(True)), Not(UnhashablePredicate(True))}) == 1
    assert Not(UnhashablePredicate(True)) != Not(UnhashablePredicate(False))


def test_combinators_repr():
    assert repr(Any(WithTag("t1"), "t2")) == "Any(WithTag('t1'), WithTag('t2'))"
    assert repr(All(WithTag("t1"), OfType(list))) == f"All(WithTag('t1'), OfType({list!r}))"
    assert repr(Not(WithTag("test"))) == "Not(WithTag('test'))"
    assert repr(Any()) == "Any()" and repr(All()) == "All()"


def test_combinators_are_frozen():
    for f in (Any("a"), All("a"), Not("a")):
        with pytest.raises(AttributeError):
            f.predicates = ()
        with pytest.raises(AttributeError):
            f.predicate = None


def test_not_negates():
    f = Not(OfType(np.ndarray))
    assert not f((), np.zeros(2)) and f((), [1]) and f((), "s")


# --- Everything / Nothing -----------------------------------------------------------------------


def test_everything_nothing_constants():
    values = [None, 42, "s", [1], np.zeros(2), {"k": 1}]
    for path in ((), ("a",), ("a", 0)):
        for v in values:
            assert Everything()(path, v) is True
            assert Nothing()(path, v) is False


def test_everything_nothing_eq_hash_repr():
    assert Everything() == Everything() and Nothing() == Nothing()
    assert Everything() != Nothing()
    assert hash(Everything()) == hash(Everything())
    assert len({Nothing(): 1, Nothing(): 2}) == 1
    assert repr(Everything()) == "Everything()" and repr(Nothing()) == "Nothing()"
    assert to_predicate(...) == Everything() and to_predicate(None) == Nothing()


# --- copying ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "f",
    [
        WithTag("a"), PathContains(("x", 1)), OfType(int), Any("a", int), All(), Not("a"),
        Everything(), Nothing(), Any(Not(All("a", PathContains(0)))),
    ],
)
def test_filters_pickle_and_copy(f):
    for clone in (pickle.loads(pickle.dumps(f)), copy.copy(f), copy.deepcopy(f)):
        assert clone == f and hash(clone) == hash(f) and repr(clone) == repr(f)


# --- algebra laws (hypothesis) ------------------------------------------------------------------
# A filter expression is built twice: as filter objects and as a reference Python function,
# and both must agree on every (path, value) of a small universe.

_PATHS = [(), ("x",), ("y", 0), ("x", "y"), (jtu.DictKey("x"),)]
_VALUES = [
    3, "s", None, Tagged("a"), Tagged({"a", "b"}), Tagged(["b"]), Tagged(None), Derived(),
    Typed(Derived), Typed(int),
]
_UNIVERSE = [(p, v) for p in _PATHS for v in _VALUES]


def _ref_tag(tag):
    def f(path, x):
        t = getattr(x, "tag", None)
        return t == tag if isinstance(t, str) else isinstance(t, (set, list, tuple)) and tag in t

    return f


def _ref_type(cls):
    def f(path, x):
        t = getattr(x, "type", None)
        return isinstance(x, cls) or (isinstance(t, type) and issubclass(t, cls))

    return f


def _ref_path(key):
    return lambda path, x: any(
        (p.key if isinstance(p, jtu.DictKey) else p) == key for p in path
    )


_LEAVES = st.sampled_from(
    [
        ("a", _ref_tag("a")),
        ("b", _ref_tag("b")),
        (int, _ref_type(int)),
        (Base, _ref_type(Base)),
        (PathContains("x"), _ref_path("x")),
        (PathContains(0), _ref_path(0)),
        (True, lambda p, x: True),
        (..., lambda p, x: True),
        (False, lambda p, x: False),
        (None, lambda p, x: False),
    ]
)


def _extend(children):
    def any_of(items):
        fs, refs = zip(*items) if items else ((), ())
        return Any(*fs), (lambda p, x: any(r(p, x) for r in refs))

    def all_of(items):
        fs, refs = zip(*items) if items else ((), ())
        return All(*fs), (lambda p, x: all(r(p, x) for r in refs))

    def not_of(item):
        f, r = item
        return Not(f), (lambda p, x: not r(p, x))

    def as_list(items):
        fs, refs = zip(*items)
        return list(fs), (lambda p, x: any(r(p, x) for r in refs))

    return st.one_of(
        st.lists(children, max_size=3).map(any_of),
        st.lists(children, max_size=3).map(all_of),
        children.map(not_of),
        st.lists(children, min_size=1, max_size=3).map(as_list),
    )


_EXPRS = st.recursive(_LEAVES, _extend, max_leaves=8)


def _same(f, g):
    return all(bool(f(p, v)) == bool(g(p, v)) for p, v in _UNIVERSE)


@settings(max_examples=150, deadline=None)
@given(_EXPRS)
def test_filters_agree_with_reference_semantics(expr):
    f, ref = expr
    pred = to_predicate(f)
    assert _same(pred, ref)


@settings(max_examples=100, deadline=None)
@given(_EXPRS, _EXPRS)
def test_algebra_laws(e1, e2):
    f, g = to_predicate(e1[0]), to_predicate(e2[0])
    assert _same(Not(Not(f)), f)
    assert _same(Any(f), f) and _same(All(f), f)
    assert _same(Any(f, Nothing()), f) and _same(All(f, Everything()), f)
    assert _same(Any(f, Everything()), Everything())
    assert _same(All(f, Nothing()), Nothing())
    assert _same(Any(f, g), Any(g, f)) and _same(All(f, g), All(g, f))
    assert _same(Not(Any(f, g)), All(Not(f), Not(g)))
    assert _same(Not(All(f, g)), Any(Not(f), Not(g)))
    assert _same(to_predicate([f, g]), Any(f, g))


@settings(max_examples=100, deadline=None)
@given(_EXPRS)
def test_equal_construction_gives_equal_hashable_filters(expr):
    f = expr[0]
    a, b = Any(f, Not(f)), Any(f, Not(f))
    assert a == b and hash(a) == hash(b)
    assert Not(a) == Not(b) and All(a) == All(b)


# --- state queries refuse classes that can never match a state --------------------------------


class _Net(brainstate.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = brainstate.ParamState(jnp.ones(2))
        self.h = brainstate.HiddenState(jnp.zeros(2))


@pytest.mark.parametrize("bad", [int, jnp.ndarray, brainstate.nn.Module, brainstate.TreefyState])
@pytest.mark.parametrize("query", ["states", "treefy_states", "treefy_split", "pop_states",
                                   "module.states"])
def test_state_queries_refuse_never_matching_classes(query, bad):
    net = _Net()
    call = {
        "states": lambda *f: brainstate.graph.states(net, *f),
        "treefy_states": lambda *f: brainstate.graph.treefy_states(net, *f),
        "treefy_split": lambda *f: brainstate.graph.treefy_split(net, *f),
        "pop_states": lambda *f: brainstate.graph.pop_states(net, *f),
        "module.states": lambda *f: net.states(*f),
    }[query]
    with pytest.raises(TypeError, match=f"{bad.__qualname__} is not a State class, so it can "
                                        "never match a state"):
        call(bad, ...)
    with pytest.raises(TypeError, match="not a State class"):
        call([brainstate.ParamState, bad], ...)  # inside a list
    with pytest.raises(TypeError, match="not a State class"):
        call(OfType(bad), ...)
    assert ("w",) in net.states()  # nothing was popped or changed by a refused query


def test_state_queries_accept_state_classes_and_their_bases():
    net = _Net()
    assert list(net.states(brainstate.ParamState)) == [("w",)]
    assert len(net.states(object)) == 2  # a base of State matches every state
    assert len(net.states(brainstate.State)) == 2
    assert len(brainstate.graph.states(net, Not(OfType(int)))) == 2  # negation can match
    assert list(brainstate.graph.states(net, All(brainstate.ParamState, "x"))) == []


def test_split_context_refuses_never_matching_classes():
    net = _Net()
    with brainstate.graph.split_context() as (ctx, _):
        with pytest.raises(TypeError, match="treefy_split: the filter builtins.int"):
            ctx.treefy_split(net, int, ...)


def test_node_queries_still_take_module_classes():
    net = _Net()
    assert list(brainstate.graph.nodes(net, brainstate.nn.Module)) == [()]
