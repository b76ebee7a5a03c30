"""Round-trip properties of the graph model over random graphs.

Random graphs: up to six ``Node``s and six states, attributes holding states, nodes (so sharing,
self references and cycles occur), statics, and lists/tuples/dicts of those. Every property is
checked against an independent reference walk, not against the code under test.
"""

from __future__ import annotations

import copy
import pickle

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brainstate import ParamState, ShortTermState, State
from brainstate import graph
from brainstate.graph import Node
from brainstate.util.filter import All, Any as AnyOf, Not, PathContains

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

STATE_TYPES = (State, ParamState, ShortTermState)
SHAPES = ((), (2,), (2, 3))
DTYPES = (np.float32, np.int32)
NAMES = ("a", "b", "c", "d", "e")
KEYS = ("k0", "k1", "k2")


class PNode(Node):
    """A bare graph node whose attributes the strategy sets."""


class QNode(Node):
    """A second node type, so node types matter for equivalence."""


# --- the strategy -------------------------------------------------------------------------------

_leaf = st.one_of(
    st.tuples(st.just("s"), st.integers(0, 5)),
    st.tuples(st.just("s"), st.integers(0, 5)),
    st.tuples(st.just("n"), st.integers(0, 5)),
    st.tuples(st.just("c"), st.one_of(st.integers(-3, 3), st.sampled_from(["x", "y"]),
                                      st.none(), st.tuples(st.integers(0, 2)))),
)
_item = st.recursive(
    _leaf,
    lambda children: st.one_of(
        st.tuples(st.just("l"), st.lists(children, max_size=3)),
        st.tuples(st.just("t"), st.lists(children, max_size=3)),
        st.tuples(st.just("d"), st.dictionaries(st.sampled_from(KEYS), children, max_size=3)),
    ),
    max_leaves=6,
)
_node_spec = st.tuples(st.booleans(),
                       st.dictionaries(st.sampled_from(NAMES), _item, min_size=1, max_size=4))
_state_spec = st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 1),
                        st.sampled_from([None, "fast", "slow"]))
graph_specs = st.tuples(st.lists(_node_spec, min_size=1, max_size=6),
                        st.lists(_state_spec, min_size=1, max_size=6))


def build(spec):
    node_specs, state_specs = spec
    nodes = [(QNode if q else PNode)() for q, _ in node_specs]
    states = []
    for i, (t, shape, dtype, tag) in enumerate(state_specs):
        value = (np.arange(int(np.prod(SHAPES[shape]))) + i).reshape(SHAPES[shape])
        states.append(STATE_TYPES[t](jnp.asarray(value.astype(DTYPES[dtype])), tag=tag,
                                     name=f"s{i}"))

    def make(item):
        kind, payload = item
        if kind == "s":
            return states[payload % len(states)] if states else None
        if kind == "n":
            return nodes[payload % len(nodes)]
        if kind == "c":
            return payload
        if kind == "l":
            return [make(x) for x in payload]
        if kind == "t":
            return tuple(make(x) for x in payload)
        return {k: make(v) for k, v in payload.items()}

    for node, (_, attrs) in zip(nodes, node_specs):
        for name, item in attrs.items():
            setattr(node, name, make(item))
    return nodes[0]


# --- the reference walk and the equivalence check -------------------------------------------------


def reachable_states(root) -> dict:
    """id -> state, for every state reachable from ``root`` (independent of brainstate.graph)."""
    found, seen, stack = {}, set(), [root]
    while stack:
        x = stack.pop()
        if isinstance(x, State):
            found[id(x)] = x
        elif isinstance(x, Node):
            if id(x) not in seen:
                seen.add(id(x))
                stack.extend(vars(x).values())
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    return found


def assert_equivalent(a, b, same_values=True):
    """``b`` mirrors ``a``: same shape of graph, sharing and cycles, new nodes and states."""
    image: dict = {}
    preimage: dict = {}

    def bind(x, y, path):
        if id(x) in image:
            assert image[id(x)] is y, f"sharing broken at {path}"
            return True
        assert id(y) not in preimage, f"two objects merged into one at {path}"
        image[id(x)] = y
        preimage[id(y)] = x
        return False

    def check(x, y, path):
        assert type(x) is type(y), path
        if isinstance(x, State):
            if bind(x, y, path):
                return
            assert y is not x, f"state reused at {path}"
            assert y._signature == x._signature, path
            assert y.name == x.name and y.tag == x.tag, path
            if x.tag is not None:
                assert y.tag is not x.tag, f"tag set aliased at {path}"
            assert y._trace_is_valid() and not y.has_hooks()
            if same_values:
                np.testing.assert_array_equal(np.asarray(y.value), np.asarray(x.value))
        elif isinstance(x, Node):
            if bind(x, y, path):
                return
            assert y is not x, f"node reused at {path}"
            assert sorted(vars(x)) == sorted(vars(y)), path
            for k in vars(x):
                check(vars(x)[k], vars(y)[k], (*path, k))
        elif isinstance(x, (list, tuple)):
            assert len(x) == len(y), path
            for i, (u, v) in enumerate(zip(x, y)):
                check(u, v, (*path, i))
        elif isinstance(x, dict):
            assert x.keys() == y.keys(), path
            for k in x:
                check(x[k], y[k], (*path, k))
        else:
            assert x == y, path

    check(a, b, ())


# --- properties --------------------------------------------------------------------------------


@SETTINGS
@given(graph_specs)
def test_split_merge_round_trip(spec):
    model = build(spec)
    graphdef, mapping = graph.treefy_split(model)
    # Each distinct state is recorded once, however many paths reach it.
    assert len(mapping.to_flat()) == len(reachable_states(model))
    assert_equivalent(model, graph.treefy_merge(graphdef, mapping))


@SETTINGS
@given(graph_specs, st.permutations([ParamState, ShortTermState, "fast"]))
def test_filtered_split_merge_round_trip(spec, filters):
    model = build(spec)
    graphdef, *parts = graph.treefy_split(model, *filters, ...)
    flat = [p.to_flat() for p in parts]
    assert sum(len(f) for f in flat) == len(reachable_states(model))
    assert_equivalent(model, graph.treefy_merge(graphdef, *reversed(parts)))


@SETTINGS
@given(graph_specs)
def test_merge_after_a_jax_tree_map(spec):
    model = build(spec)
    graphdef, mapping = graph.treefy_split(model)
    doubled = jax.tree.map(lambda x: x * 2, mapping)
    rebuilt = graph.treefy_merge(graphdef, doubled)
    assert_equivalent(model, rebuilt, same_values=False)
    for path, st_ in graph.states(rebuilt).items():
        np.testing.assert_array_equal(np.asarray(st_.value),
                                      2 * np.asarray(graph.states(model)[path].value))


@SETTINGS
@given(graph_specs)
def test_graphdef_is_stable_hashable_and_picklable(spec):
    model = build(spec)
    gd = graph.graphdef(model)
    clone = graph.clone(model)
    assert graph.graphdef(clone) == gd and hash(graph.graphdef(clone)) == hash(gd)
    restored = pickle.loads(pickle.dumps(gd))
    assert restored == gd
    assert GraphDef_roundtrip(gd) == gd
    assert_equivalent(model, graph.unflatten(restored, graph.treefy_states(model)))


def GraphDef_roundtrip(gd):
    return graph.GraphDef(gd.root, gd.node_specs)


@SETTINGS
@given(graph_specs)
def test_states_agree_with_the_mapping_and_iter_leaf(spec):
    model = build(spec)
    live = graph.states(model)
    refs = graph.treefy_states(model).to_flat()
    assert list(live) == list(refs)
    assert {id(s) for s in live.values()} == set(reachable_states(model))
    assert list(live) == [p for p, v in graph.iter_leaf(model) if isinstance(v, State)]
    for path, ref in refs.items():
        assert ref.type is type(live[path])
        np.testing.assert_array_equal(np.asarray(ref.value), np.asarray(live[path].value))


@SETTINGS
@given(graph_specs)
def test_nodes_are_each_reported_once(spec):
    model = build(spec)
    found = graph.nodes(model)
    ids = [id(n) for n in found.values()]
    assert len(ids) == len(set(ids)) and found[()] is model
    assert list(found)[-1] == ()


@SETTINGS
@given(graph_specs)
def test_deepcopy_is_independent(spec):
    model = build(spec)
    out = copy.deepcopy(model)
    assert_equivalent(model, out)
    for a, b in zip(graph.states(model).values(), graph.states(out).values()):
        assert a.value is not b.value or a.value.size == 0


_FILTERS = st.sampled_from([ParamState, ShortTermState, State, "fast", "slow",
                            PathContains("a"), PathContains("k0")])


@SETTINGS
@given(graph_specs, _FILTERS, _FILTERS)
def test_filter_algebra(spec, f, g):
    model = build(spec)
    every = set(graph.states(model))
    sf, sg = set(graph.states(model, f)), set(graph.states(model, g))
    assert set(graph.states(model, AnyOf(f, g))) == sf | sg
    assert set(graph.states(model, All(f, g))) == sf & sg
    assert set(graph.states(model, Not(f))) == every - sf
    first, second = graph.states(model, f, g)
    assert set(first) == sf and set(second) == sg - sf
    _, a, b, rest = graph.treefy_split(model, f, g, ...)
    parts = [set(m.to_flat()) for m in (a, b, rest)]
    assert parts[0] | parts[1] | parts[2] == every
    assert not (parts[0] & parts[1]) and not (parts[1] & parts[2]) and not (parts[0] & parts[2])
    assert parts[0] == sf and parts[1] == sg - sf


@SETTINGS
@given(graph_specs)
def test_pop_then_update_restores(spec):
    model = build(spec)
    params = set(graph.states(model, ParamState))
    try:
        popped = graph.pop_states(model, ParamState)
    except ValueError as exc:
        assert "Cannot pop key" in str(exc)
        assert set(graph.states(model, ParamState)) == params  # nothing removed
        return
    assert not graph.states(model, ParamState)
    assert set(popped.to_flat()) == params
