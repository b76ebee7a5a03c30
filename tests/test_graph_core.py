"""The core's graph loops and ``TreefyState`` storage (csrc/_core_refs.pxi to _core_decoder.pxi,
and their pure twins in brainstate/_core_py/).

``TreefyState`` must behave as a plain object whose ``__dict__`` holds ``type``, ``value`` and
the metadata in insertion order, whatever layout the compiled core keeps internally; the graph
loops must give the same GraphDefs and mappings under both cores; the signature a split ref
carries must be dropped as soon as its value can change.
"""

from __future__ import annotations

import copy
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import brainstate
from brainstate import ParamState, ShortTermState, State, StateSignatureError, TreefyState
from brainstate import graph
from brainstate._impl import core as active_core
from brainstate.graph import Node

STD = ("type", "value", "_source_info", "_hooks_manager", "_name", "_been_writen", "tag")


class Plain:
    """The reference: a plain object, attributes in its __dict__."""


class Holder(Node):
    def __init__(self, **attrs):
        vars(self).update(attrs)


def _std_ref(value=None, **extra):
    st_ = ParamState(jnp.ones(2) if value is None else value, name="w", tag="t", **extra)
    return st_, st_.to_state_ref()


def _fast_ref():
    st_ = ParamState(jnp.ones(2), name="w", tag="t")
    return st_, active_core.make_ref(st_)


def _attrs(obj):
    return list(vars(obj).items())


# --- TreefyState storage --------------------------------------------------------------------

_NAMES = st.sampled_from(STD + ("unit", "other", "name_"))
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), _NAMES, st.integers(0, 3)),
        st.tuples(st.just("del"), _NAMES, st.none()),
        st.tuples(st.just("vars_set"), _NAMES, st.integers(4, 6)),
        st.tuples(st.just("vars"), st.none(), st.none()),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.sampled_from(["fast", "to_state_ref", "bare", "custom"]), ops=_OPS)
def test_treefy_state_attributes_behave_like_a_plain_object(start, ops):
    if start == "fast":
        _, ref = _fast_ref()
    elif start == "to_state_ref":
        _, ref = _std_ref(unit="mV")
    elif start == "bare":
        ref = TreefyState(ParamState, 1)
    else:
        ref = TreefyState(ParamState, 1, tag="x", _name="n")  # not the standard order
    plain = Plain()
    vars(plain).update(vars(ref))
    for op, name, val in ops:
        if op == "set":
            setattr(ref, name, val)
            setattr(plain, name, val)
        elif op == "vars_set":
            vars(ref)[name] = val
            vars(plain)[name] = val
        elif op == "del":
            try:
                delattr(plain, name)
            except AttributeError:
                with pytest.raises(AttributeError, match=f"has no attribute '{name}'"):
                    delattr(ref, name)
            else:
                delattr(ref, name)
        else:
            assert _attrs(ref) == _attrs(plain)
        for n in STD + ("unit", "other", "name_"):
            assert hasattr(ref, n) == hasattr(plain, n), n
            if hasattr(plain, n):
                assert getattr(ref, n) is getattr(plain, n)
    assert _attrs(ref) == _attrs(plain)
    assert list(vars(pickle.loads(pickle.dumps(ref)))) == list(vars(ref))


def test_fast_ref_matches_to_state_ref_and_keeps_it_after_vars():
    st_, ref = _fast_ref()
    slow = st_.to_state_ref()
    assert _attrs(ref) == _attrs(slow)
    assert jax.tree.structure(ref) == jax.tree.structure(slow)
    vars(ref)  # the compiled core moves the attributes into a real dict here
    assert _attrs(ref) == _attrs(slow)
    assert jax.tree.structure(ref) == jax.tree.structure(slow)


def test_name_property_and_metadata():
    _, ref = _fast_ref()
    assert ref.name == "w"
    ref.name = "v"
    assert ref._name == "v" and ref.get_metadata()["_name"] == "v"
    assert list(ref.get_metadata()) == list(STD[2:])


def test_unknown_attribute_error_names_it():
    _, ref = _fast_ref()
    with pytest.raises(AttributeError, match="'TreefyState' object has no attribute 'nope'"):
        ref.nope  # noqa: B018
    assert getattr(ref, "nope", 5) == 5


def test_attribute_names_must_be_strings():
    _, ref = _fast_ref()
    with pytest.raises(TypeError, match="attribute name must be string"):
        setattr(ref, 1, 2)


def test_dict_assignment_replaces_every_attribute():
    _, ref = _fast_ref()
    ref.__dict__ = {"type": State, "value": 3}
    assert _attrs(ref) == [("type", State), ("value", 3)]
    with pytest.raises(TypeError, match="must be set to a dictionary"):
        ref.__dict__ = [1]


def test_subclass_without_slots_keeps_attributes_in_its_dict():
    class MyRef(TreefyState):
        pass

    ref = MyRef(ParamState, 1, _name="x")
    ref.extra = 2
    assert _attrs(ref) == [("type", ParamState), ("value", 1), ("_name", "x"), ("extra", 2)]
    assert ref.__dict__ is vars(ref)


def test_pickle_copy_and_deepcopy_keep_order():
    _, ref = _std_ref(unit="mV")
    for other in (pickle.loads(pickle.dumps(ref)), copy.copy(ref), copy.deepcopy(ref)):
        assert type(other) is TreefyState
        assert [k for k, _ in _attrs(other)] == [k for k, _ in _attrs(ref)]
        assert other.unit == "mV" and np.allclose(other.value, ref.value)


@pytest.mark.parametrize("md", [
    {},
    {"_name": "a", "_been_writen": True, "tag": None},
    {"_name": "a", "_been_writen": True, "tag": None, "unit": "mV"},
    {"tag": None, "_name": "a"},
])
def test_pytree_round_trip(md):
    ref = TreefyState(ParamState, jnp.ones(2), _source_info=None, _hooks_manager=None, **md)
    out = jax.tree.map(lambda x: x + 1, ref)
    assert [k for k, _ in _attrs(out)] == [k for k, _ in _attrs(ref)]
    assert jax.tree.structure(out) == jax.tree.structure(ref)
    assert np.allclose(out.value, 2.0)


def test_weak_references_work():
    import weakref

    _, ref = _fast_ref()
    assert weakref.ref(ref)() is ref


# --- split refs carry their signature: dropped when the value can change ------------------------


def _split_cell():
    c = Holder(w=ParamState(jnp.ones(3)), h=ShortTermState(jnp.zeros(2)))
    return graph.treefy_split(c)


def test_merge_checks_a_value_replaced_on_the_ref():
    gd, mapping = _split_cell()
    mapping["w"].value = jnp.ones(4)
    with pytest.raises(StateSignatureError, match="at path w"):
        graph.treefy_merge(gd, mapping)


def test_merge_checks_a_value_replaced_through_vars():
    gd, mapping = _split_cell()
    vars(mapping["w"])["value"] = jnp.ones(5)
    with pytest.raises(StateSignatureError, match="at path w"):
        graph.treefy_merge(gd, mapping)


def test_merge_checks_a_value_replaced_through_dict_assignment():
    gd, mapping = _split_cell()
    d = dict(vars(mapping["w"]))
    d["value"] = jnp.ones(6)
    mapping["w"].__dict__ = d
    with pytest.raises(StateSignatureError, match="at path w"):
        graph.treefy_merge(gd, mapping)


def test_merged_states_have_the_recorded_signature():
    gd, mapping = _split_cell()
    out = graph.treefy_merge(gd, mapping)
    assert out.w._signature == brainstate._impl.core.make_signature(jnp.ones(3))
    out.w.value = jnp.full(3, 2.0)
    with pytest.raises(StateSignatureError):
        out.w.value = jnp.ones(4)


def test_poisoned_state_round_trips_poisoned():
    c = Holder(w=ParamState(jnp.ones(3)))
    c.w._invalidate_trace_value()  # what a transform does to a state whose tracer died
    gd, mapping = graph.treefy_split(c)
    out = graph.treefy_merge(gd, mapping)
    assert out.w._value is brainstate._impl.core.INVALID
    assert out.w._signature == c.w._signature


# --- walks ------------------------------------------------------------------------------------


# Past any interpreter's limits: sys.getrecursionlimit() and, from 3.12, the C recursion limit
# (tens of thousands of levels). Graph nodes nest without bound (the walks keep their own stack
# of frames); pytrees nested in pytrees still stop at the recursion limit.
_DEEP = 100_000


class _Bag:
    """A graph node type registered with its own functions (walked through ``flatten``)."""

    def __init__(self):
        self.items = {}


def _register_bag():
    graph.register_graph_node_type(
        _Bag,
        flatten=lambda b: (sorted(b.items.items()), None),
        set_key=lambda b, k, v: b.items.__setitem__(k, v),
        pop_key=lambda b, k: b.items.pop(k),
        create_empty=lambda metadata: _Bag(),
        clear=lambda b: b.items.clear(),
    )


def _deep_chain(depth, kind):
    """``depth`` nodes below the root, each the ``child`` of the one above (``mixed``: through a
    list, a dict or a tuple in turn); the last holds a ParamState under ``w``. Returns the root
    and the state's path."""
    w = ParamState(jnp.arange(3.0))
    if kind == "bag":
        root = cur = _Bag()
        for _ in range(depth):
            cur.items["child"] = cur = _Bag()
        cur.items["w"] = w
        return root, ("child",) * depth + ("w",)
    root = cur = Holder()
    path = []
    for i in range(depth):
        nxt = Holder()
        if kind == "mixed":
            r = i % 3
            cur.child = [nxt] if r == 0 else {"a": nxt} if r == 1 else (1, nxt)
            path += ["child", 0 if r == 0 else "a" if r == 1 else 1]
        else:
            cur.child = nxt
            path.append("child")
        cur = nxt
    cur.w = w
    return root, (*path, "w")


def _bottom(node, kind):
    """The deepest node of a chain and its depth (followed without recursion)."""
    n = 0
    while True:
        nxt = node.items.get("child") if type(node) is _Bag else getattr(node, "child", None)
        if nxt is None:
            return node, n
        if kind == "mixed":
            nxt = nxt[0] if n % 3 == 0 else nxt["a"] if n % 3 == 1 else nxt[1]
        node = nxt
        n += 1


def _check_deep_chain(root, path, depth, kind):
    w = graph.states(root)[path]
    assert list(graph.states(root)) == [path]
    for split, merge in ((graph.treefy_split, graph.treefy_merge),
                         (graph.flatten, graph.unflatten)):
        gd, mapping = split(root)
        out = merge(gd, mapping)
        bottom, n = _bottom(out, kind)
        assert n == depth
        got = bottom.items["w"] if kind == "bag" else bottom.w
        assert got is not w and np.array_equal(got.value, w.value)
        assert list(graph.states(out)) == [path]
    bottom, n = _bottom(graph.clone(root), kind)
    assert n == depth


@pytest.mark.parametrize("kind,depth", [
    ("node", 10_000), ("mixed", 10_000), ("bag", 2_000),
    # (10,000 levels already rule out any recursion per level; the larger ones are stress)
    pytest.param("bag", 10_000, marks=[pytest.mark.slow, pytest.mark.stress]),
    pytest.param("node", _DEEP, marks=[pytest.mark.slow, pytest.mark.stress]),
    pytest.param("mixed", _DEEP, marks=[pytest.mark.slow, pytest.mark.stress]),
])
def test_deep_node_chains_split_merge_and_walk(kind, depth):
    # a registered node type is walked through its flatten function, which takes the node's
    # path: a deep chain of them builds paths of every length (quadratic), hence at most 10,000
    if kind == "bag":
        _register_bag()
    root, path = _deep_chain(depth, kind)
    _check_deep_chain(root, path, depth, kind)


def test_deep_node_chains_walk_in_a_thread():
    # a thread's default stack is smaller than the main thread's: the walks use the heap
    import threading

    _register_bag()
    errors = []

    def work():
        try:
            for kind, depth in (("node", 10_000), ("mixed", 10_000), ("bag", 2_000)):
                root, path = _deep_chain(depth, kind)
                _check_deep_chain(root, path, depth, kind)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the main thread)
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if errors:
        raise errors[0]


@pytest.mark.parametrize("container", ["list", "dict", "tuple"])
def test_deep_pytree_nesting_still_raises_recursion_error(container):
    x = ParamState(jnp.ones(1))
    for _ in range(_DEEP):
        x = [x] if container == "list" else {"k": x} if container == "dict" else (x,)
    for root in (x, Holder(x=x)):
        for op in (graph.treefy_split, graph.flatten, graph.states, graph.treefy_states):
            with pytest.raises(RecursionError):
                op(root)


def test_split_merge_of_a_large_graph_shares_and_rebuilds_everything():
    layers = []
    for i in range(600):  # past the 256 small ints and a few table resizes
        w = layers[-1].w if i % 7 == 6 else ParamState(jnp.full((2,), float(i)))
        layers.append(Holder(w=w, h=ShortTermState(jnp.zeros(1))))
    model = Holder(layers=layers)
    gd, mapping = graph.treefy_split(model)
    out = graph.treefy_merge(gd, mapping)
    for i in range(600):
        assert np.allclose(out.layers[i].w.value, model.layers[i].w.value)
        assert out.layers[i].w is not model.layers[i].w
        if i % 7 == 6:
            assert out.layers[i].w is out.layers[i - 1].w
    assert graph.treefy_split(out)[0] == gd
    assert list(graph.states(out)) == list(graph.states(model))


# --- the two cores agree ------------------------------------------------------------------------


def _random_graph(seed):
    rng = np.random.default_rng(seed)
    states = [ParamState(jnp.ones(int(rng.integers(1, 3)))) for _ in range(5)]
    nodes = [Holder() for _ in range(5)]

    def item(depth):
        r = rng.integers(0, 7 if depth < 2 else 4)
        if r == 0:
            return states[rng.integers(0, 5)]
        if r == 1:
            return nodes[rng.integers(0, 5)]
        if r == 2:
            return int(rng.integers(0, 3))
        if r == 3:
            return None
        if r == 4:
            return [item(depth + 1) for _ in range(rng.integers(0, 3))]
        if r == 5:
            return tuple(item(depth + 1) for _ in range(rng.integers(0, 3)))
        return {f"k{j}": item(depth + 1) for j in range(rng.integers(0, 3))}

    for n in nodes:
        for j in range(rng.integers(0, 4)):
            setattr(n, f"a{j}", item(0))
    return nodes[0]


@pytest.mark.c_extension
@pytest.mark.parametrize("seed", range(40))
def test_cores_walk_alike(seed):
    import importlib

    py = importlib.import_module("brainstate._core_py")
    c = importlib.import_module("brainstate._core")
    if active_core is not c:
        pytest.skip("the comparison runs where the compiled core is active")
    brainstate._wiring.configure_core(py)
    root = _random_graph(seed)
    kind = graph._registry.classify(root)
    a = c.encode(root, kind, None, False)
    b = py.encode(root, kind, None, False)
    assert a == b
    for lo, hi in ((0, 10), (1, 1), (0, 0), (2, 5)):
        assert list(c.collect_states(root, lo, hi).items()) == \
            list(py.collect_states(root, lo, hi).items())
    gd = graph.graphdef(root)
    assert c.index_bound(gd._root, gd._records) == py.index_bound(gd._root, gd._records)


def test_jax_array_shape_and_dtype_are_those_of_its_aval():
    # The compiled core reads a jax array's signature from its aval (one attribute instead of
    # two Python properties). Fails loudly if a JAX release changes what .shape/.dtype return.
    array_type = type(jnp.zeros(()))
    for x in (jnp.ones(3), jnp.zeros((2, 0), jnp.int32), jnp.asarray(1.0),
              jnp.ones(2, jnp.bfloat16), jax.device_put(np.arange(3))):
        assert type(x) is array_type
        assert x.shape is x.aval.shape and x.dtype is x.aval.dtype
    for x in (jnp.ones(3), jax.random.key(0), np.ones(2)):
        assert ParamState(x)._signature == brainstate._impl.core.make_signature(x)
