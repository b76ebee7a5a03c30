"""Checked writes of tree-valued states: verdicts and messages over random trees, both cores.

The compiled core confirms a matching tree write by walking the value along its signature
instead of flattening it with JAX; anything it is unsure of goes through the flatten. These
tests hold both cores to one oracle: a write is accepted exactly when JAX's tree structure and
every leaf's spec equal those of the state's first value, and a refused write raises the same
error text on both cores.
"""

from __future__ import annotations

import collections
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import brainstate
from brainstate._error import StateSignatureError
from brainstate._signature import leaf_spec

DTYPES = ["float32", "int32", "bool", "float16"]
KEYS = "abcd"


# --- value descriptors ----------------------------------------------------------------------
# A descriptor is a hashable recipe; ``build`` turns it into a value with fresh leaves.

shapes = st.lists(st.integers(0, 3), max_size=2).map(tuple)


@st.composite
def leaves(draw):
    shape = draw(shapes)
    dtype = draw(st.sampled_from(DTYPES))
    scalar_ok = shape == () and dtype in ("float32", "int32", "bool")
    kinds = ["jax", "jax", "numpy"] + (["python"] if scalar_ok else [])
    return ("leaf", shape, dtype, draw(st.sampled_from(kinds)))


trees = st.recursive(
    st.one_of(leaves(), st.just(("none",))),
    lambda sub: st.one_of(
        st.dictionaries(st.sampled_from(KEYS), sub, max_size=3).map(
            lambda d: ("dict", tuple(sorted(d.items())))),
        st.lists(sub, max_size=3).map(lambda items: ("list", tuple(items))),
        st.lists(sub, max_size=3).map(lambda items: ("tuple", tuple(items))),
    ),
    max_leaves=6,
)

containers = trees.filter(lambda d: d[0] in ("dict", "list", "tuple"))


def build(desc, fill=1):
    tag = desc[0]
    if tag == "none":
        return None
    if tag == "dict":
        return {k: build(v, fill) for k, v in desc[1]}
    if tag == "list":
        return [build(v, fill) for v in desc[1]]
    if tag == "tuple":
        return tuple(build(v, fill) for v in desc[1])
    _, shape, dtype, kind = desc
    if kind == "python":
        return {"float32": float(fill), "int32": int(fill), "bool": bool(fill % 2)}[dtype]
    if kind == "numpy":
        np_dtype = {"float32": np.float64, "int32": np.int64, "bool": np.bool_,
                    "float16": np.float16}[dtype]
        return np.full(shape, fill, dtype=np_dtype)
    return jnp.full(shape, fill, dtype=getattr(jnp, dtype))


# --- mutations of a built value -------------------------------------------------------------


class SubDict(dict):
    """A dict subclass JAX does not know: a leaf, not a dict node."""


def _node_paths(value, path=()):
    """Every position in ``value`` (containers and leaves), as index/key paths."""
    out = [path]
    if type(value) is dict:
        for k, v in value.items():
            out += _node_paths(v, path + (k,))
    elif type(value) in (list, tuple):
        for i, v in enumerate(value):
            out += _node_paths(v, path + (i,))
    return out


def _replace(value, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    if type(value) is dict:
        out = dict(value)
        out[head] = _replace(value[head], rest, new)
        return out
    items = list(value)
    items[head] = _replace(value[head], rest, new)
    return type(value)(items)


def _get(value, path):
    for p in path:
        value = value[p]
    return value


def _dict_mutations(x):
    keys = list(x)
    out = {
        "extra key": {**x, "z": jnp.zeros(1)},
        "subclass": SubDict(x),
        "ordered": collections.OrderedDict(x),
        "reversed insertion": dict(reversed(list(x.items()))),
        "as list": list(x.values()),
    }
    if keys:
        out["missing key"] = {k: v for k, v in x.items() if k != keys[0]}
        out["renamed key"] = {("y" if k == keys[0] else k): v for k, v in x.items()}
    return out


def _seq_mutations(x):
    items = list(x)
    other = tuple if type(x) is list else list
    fields = [f"f{i}" for i in range(len(items))]
    out = {
        "longer": type(x)(items + [jnp.zeros(1)]),
        "other sequence": other(items),
        "namedtuple": collections.namedtuple("NT", fields)(*items),
    }
    if items:
        out["shorter"] = type(x)(items[:-1])
    return out


def _leaf_mutations(x):
    out = {"none": None, "empty dict": {}, "string": "relu", "list of it": [x]}
    if x is None:
        return {"array": jnp.zeros(()), "empty tuple": ()}
    shape = tuple(np.shape(x))
    dtype = leaf_spec(x)[1]
    other_dtype = jnp.int32 if dtype != np.dtype("int32") else jnp.float32
    out["other dtype"] = jnp.zeros(shape, other_dtype)
    out["other shape"] = jnp.zeros(shape + (2,), dtype)
    out["same spec, numpy"] = np.zeros(shape, dtype)
    out["same spec, jax"] = jnp.zeros(shape, dtype)
    return out


def mutations(x):
    if type(x) is dict:
        return _dict_mutations(x)
    if type(x) in (list, tuple):
        return _seq_mutations(x)
    return _leaf_mutations(x)


@st.composite
def pairs(draw):
    """(first value, later value, what changed): a state's first value and a write."""
    first_desc = draw(containers)
    first = build(first_desc, 1)
    choice = draw(st.sampled_from(["same", "fresh", "mutated", "mutated", "mutated"]))
    if choice == "same":
        return first, build(first_desc, 2), "same"
    if choice == "fresh":
        return first, build(draw(trees), 2), "fresh"
    second = build(first_desc, 2)
    path = draw(st.sampled_from(_node_paths(second)))
    options = mutations(_get(second, path))
    name = draw(st.sampled_from(sorted(options)))
    return first, _replace(second, path, options[name]), f"{name} at {path}"


# --- oracle and runs ------------------------------------------------------------------------


def oracle(first, second) -> bool:
    """What the flatten-based check decides: same treedef and the same spec at every leaf."""
    a_leaves, a_def = jax.tree_util.tree_flatten(first)
    b_leaves, b_def = jax.tree_util.tree_flatten(second)
    return a_def == b_def and [leaf_spec(x) for x in a_leaves] == [leaf_spec(x) for x in b_leaves]


def attempt(fn):
    try:
        fn()
    except Exception as exc:  # the outcome is the error: type and exact text
        return ("error", type(exc).__name__, str(exc))
    return ("ok",)


def write_outcomes(mod, first, second):
    """Outcomes of writing ``second``, ``second`` again (cached path) and ``first`` back."""

    class S(mod.StateCore):
        pass

    s = S(first, name="w")

    def write(v):
        s.value = v

    out = [attempt(lambda: write(second)), attempt(lambda: write(second)),
           attempt(lambda: write(first))]
    return out, repr(s._signature), s._flags


@pytest.fixture(scope="module", params=[pytest.param("c", marks=pytest.mark.c_extension)])
def cores(request):
    """(reference pure core, compiled core), both configured."""
    py = importlib.import_module("brainstate._core_py")
    c = importlib.import_module("brainstate._core")
    for mod in (py, c):
        brainstate._wiring.configure_core(mod)
    return py, c


@pytest.fixture
def configured(core):
    brainstate._wiring.configure_core(core)
    return core


_SETTINGS = settings(max_examples=300, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])


@_SETTINGS
@given(pairs())
def test_write_verdict_matches_flatten_oracle(configured, pair):
    first, second, _ = pair
    outcomes, _, _ = write_outcomes(configured, first, second)
    expected = oracle(first, second)
    if expected:
        assert outcomes == [("ok",)] * 3
    else:
        assert outcomes[0][:2] == ("error", "StateSignatureError")
        assert "does not match the state's signature" in outcomes[0][2]
        assert outcomes[1] == outcomes[0]
        assert outcomes[2] == ("ok",)


@_SETTINGS
@given(pairs())
def test_compiled_and_pure_cores_agree(cores, pair):
    first, second, _ = pair
    py, c = cores
    assert write_outcomes(c, first, second) == write_outcomes(py, first, second)


# --- specific shapes ------------------------------------------------------------------------


def _arrays(n=3):
    return {f"w{i}": jnp.full((2,), i, jnp.float32) for i in range(n)}


CASES = {
    "insertion order differs": (_arrays(), lambda v: dict(reversed(list(v.items()))), True),
    "key renamed": (_arrays(), lambda v: {("x" if k == "w0" else k): a for k, a in v.items()},
                    False),
    "dict subclass": (_arrays(), SubDict, False),
    "None leaf kept": ({"a": None, "b": jnp.zeros(2)}, lambda v: dict(v), True),
    "None replaced by array": ({"a": None, "b": jnp.zeros(2)},
                               lambda v: {**v, "a": jnp.zeros(())}, False),
    "array replaced by None": ({"a": jnp.zeros(()), "b": jnp.zeros(2)},
                               lambda v: {**v, "a": None}, False),
    "empty containers": ({"a": {}, "b": [], "c": ()}, lambda v: {"a": {}, "b": [], "c": ()}, True),
    "tuple for list": ([jnp.zeros(2), jnp.ones(2)], tuple, False),
    "list for tuple": ((jnp.zeros(2), jnp.ones(2)), list, False),
    "namedtuple for tuple": ((jnp.zeros(2), jnp.ones(2)),
                             lambda v: collections.namedtuple("P", "x y")(*v), False),
    "namedtuple kept": (collections.namedtuple("P", "x y")(jnp.zeros(2), jnp.ones(2)),
                        lambda v: type(v)(jnp.ones(2), jnp.zeros(2)), True),
    "OrderedDict kept": (collections.OrderedDict(_arrays()), collections.OrderedDict, True),
    "plain dict for OrderedDict": (collections.OrderedDict(_arrays()), dict, False),
    "numpy leaf of the same spec": (_arrays(), lambda v: {**v, "w1": np.zeros(2, np.float32)},
                                    True),
    "another dtype": (_arrays(), lambda v: {**v, "w2": jnp.zeros(2, jnp.int32)}, False),
    "python scalar leaf": ({"n": 3, "x": 1.5}, lambda v: {"n": 4, "x": 2.5}, True),
    "python scalar of another type": ({"n": 3}, lambda v: {"n": 4.0}, False),
    "opaque leaf": ({"f": "relu", "x": jnp.zeros(2)}, lambda v: {"f": "tanh", "x": v["x"]}, True),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_named_tree_writes(configured, name):
    first, change, accepted = CASES[name]
    second = change(first)
    assert oracle(first, second) is accepted
    outcomes, _, _ = write_outcomes(configured, first, second)
    if accepted:
        assert outcomes == [("ok",)] * 3
    else:
        assert outcomes[0][:2] == ("error", "StateSignatureError")


def test_refused_write_names_the_difference(configured):
    class S(configured.StateCore):
        pass

    s = S({"a": jnp.zeros(2), "b": [jnp.zeros(3)]}, name="w")
    with pytest.raises(StateSignatureError, match=r"leaf \['b'\]\[0\] differs: expected "
                                                  r"shape=\(3,\) dtype=float32"):
        s.value = {"a": jnp.zeros(2), "b": [jnp.zeros(4)]}
    with pytest.raises(StateSignatureError, match="tree structure differs"):
        s.value = {"a": jnp.zeros(2), "b": (jnp.zeros(3),)}


def test_unsortable_keys_raise_as_jax_does(cores):
    py, c = cores
    first = {"a": jnp.zeros(1), "b": jnp.zeros(1)}
    second = {"a": jnp.zeros(1), 1: jnp.zeros(1)}
    got_c, got_py = write_outcomes(c, first, second), write_outcomes(py, first, second)
    assert got_c == got_py
    assert got_c[0][0][0] == "error"


def test_state_inside_a_tree_is_refused(configured):
    class S(configured.StateCore):
        pass

    s = S({"a": jnp.zeros(2)}, name="w")
    inner = S(jnp.zeros(2))
    with pytest.raises(StateSignatureError, match="does not match the state's signature"):
        s.value = {"a": inner}


def test_public_state_inside_a_tree_is_refused():
    s = brainstate.State({"a": jnp.zeros(2)})
    with pytest.raises(Exception, match="State"):
        s.value = {"a": brainstate.State(jnp.zeros(2))}
    assert s.value["a"].shape == (2,)


# --- tracers ---------------------------------------------------------------------------------


def test_tracer_leaf_from_another_trace_is_refused(cores):
    py, c = cores
    results = []
    for mod in (py, c):
        class S(mod.StateCore):
            pass

        s = S({"a": jnp.zeros(2), "b": [jnp.zeros(())]}, name="w")

        @jax.jit
        def f(x):
            results.append((mod.__name__, attempt(
                lambda: setattr(s, "value", {"a": x, "b": [jnp.zeros(())]}))))
            return x

        f(jnp.ones(2))
        assert isinstance(s.value["a"], jax.Array) and not isinstance(s.value["a"], jax.core.Tracer)
    (_, r_py), (_, r_c) = results
    assert r_py == r_c
    assert r_c[0] == "error" and "tracer" in r_c[2].lower()


def test_tracer_leaf_of_the_same_trace_is_accepted_and_flagged(cores):
    py, c = cores
    flags = {}
    for mod in (py, c):
        class S(mod.StateCore):
            pass

        @jax.jit
        def f(x):
            s = S({"a": np.zeros(2, np.float32), "b": None}, name="w")
            s.value = {"b": None, "a": x}
            flags[mod.__name__] = (s._flags, isinstance(s._value["a"], jax.core.Tracer))
            s.value = {"a": np.ones(2, np.float32), "b": None}
            flags[mod.__name__ + " after"] = s._flags
            return x

        f(jnp.ones(2))
    assert flags["brainstate._core"] == flags["brainstate._core_py"]
    assert flags["brainstate._core"][1] is True
    assert flags["brainstate._core"][0] != 0
    assert flags["brainstate._core after"] == flags["brainstate._core_py after"] == 0


# --- the compiled walk: which writes skip JAX's flatten --------------------------------------


@pytest.fixture
def counted_flatten(monkeypatch):
    """The compiled core, configured with a ``tree_flatten`` that counts its calls."""
    from brainstate import _wiring

    c = importlib.import_module("brainstate._core")
    calls: list = []
    real = jax.tree_util.tree_flatten

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    def reconfigure():
        _wiring.configure_core(c, refresh=True)

    monkeypatch.setattr(jax.tree_util, "tree_flatten", counting)
    reconfigure()
    yield c, calls
    monkeypatch.undo()
    reconfigure()


WALKED = {
    "dict of arrays": _arrays(10),
    "nested containers": {"a": [jnp.zeros(2), (jnp.zeros(()), None)], "b": {}, "c": None},
    "python and numpy leaves": {"n": 3, "x": 1.5, "flag": True, "m": np.zeros(2, np.float32)},
    "tuple root": (jnp.zeros(2), [jnp.ones(3)]),
}

def _nested(depth):
    value = jnp.zeros(2)
    for _ in range(depth):
        value = [value]
    return value


FLATTENED = {
    "namedtuple node": {"p": collections.namedtuple("P", "x y")(jnp.zeros(2), jnp.ones(2))},
    # deeper than the walk's bound (its C recursion must stay bounded): flattened
    "nested 300 deep": _nested(300),
    "OrderedDict node": collections.OrderedDict(a=jnp.zeros(2)),
    "int keys": {1: jnp.zeros(2), 2: jnp.ones(2)},
}


@pytest.mark.c_extension
@pytest.mark.parametrize("name", sorted(WALKED))
def test_plain_container_writes_skip_the_flatten(counted_flatten, name):
    c, calls = counted_flatten

    class S(c.StateCore):
        pass

    s = S(WALKED[name])
    calls.clear()
    for _ in range(3):
        s.value = jax.tree.map(lambda x: x, WALKED[name])
    assert calls == []


@pytest.mark.c_extension
@pytest.mark.parametrize("name", sorted(FLATTENED))
def test_other_nodes_fall_back_to_the_flatten(counted_flatten, name):
    c, calls = counted_flatten

    class S(c.StateCore):
        pass

    s = S(FLATTENED[name])
    calls.clear()
    s.value = jax.tree.map(lambda x: x, FLATTENED[name])
    assert len(calls) == 1


@pytest.mark.c_extension
def test_surprises_in_a_walkable_tree_fall_back(counted_flatten):
    c, calls = counted_flatten

    class S(c.StateCore):
        pass

    s = S(_arrays(3))
    calls.clear()
    s.value = dict(reversed(list(_arrays(3).items())))
    assert calls == []
    with pytest.raises(StateSignatureError):
        s.value = SubDict(_arrays(3))
    assert len(calls) >= 1


# --- leaves that are pytree nodes in disguise ------------------------------------------------


@jax.tree_util.register_pytree_node_class
class Scaled:
    """A registered node that looks like an array (``shape``/``dtype``), as a Quantity does."""

    def __init__(self, x, scale="mV"):
        self.x, self.scale = x, scale

    @property
    def shape(self):
        return self.x.shape

    @property
    def dtype(self):
        return self.x.dtype

    def tree_flatten(self):
        return (self.x,), self.scale

    @classmethod
    def tree_unflatten(cls, scale, children):
        return cls(children[0], scale)


def test_array_like_node_at_a_leaf_position_is_refused(cores):
    py, c = cores
    first = {"a": jnp.zeros(2), "b": [jnp.zeros(3)]}
    second = {"a": Scaled(jnp.ones(2)), "b": [jnp.ones(3)]}
    assert not oracle(first, second)
    got_c, got_py = write_outcomes(c, first, second), write_outcomes(py, first, second)
    assert got_c == got_py
    assert got_c[0][0][:2] == ("error", "StateSignatureError")
    assert "tree structure differs" in got_c[0][0][2]


def test_array_like_node_in_the_signature_round_trips(configured):
    class S(configured.StateCore):
        pass

    s = S({"a": Scaled(jnp.zeros(2)), "b": jnp.zeros(())})
    s.value = {"a": Scaled(jnp.ones(2)), "b": jnp.ones(())}
    with pytest.raises(StateSignatureError, match="tree structure differs"):
        s.value = {"a": Scaled(jnp.ones(2), "V"), "b": jnp.ones(())}
    with pytest.raises(StateSignatureError, match="tree structure differs"):
        s.value = {"a": jnp.ones(2), "b": jnp.ones(())}


def test_quantity_at_an_array_leaf_is_refused(cores):
    u = pytest.importorskip("brainunit")
    py, c = cores
    first = {"v": jnp.zeros(2), "w": jnp.zeros(2)}
    second = {"v": jnp.ones(2) * u.mV, "w": jnp.zeros(2)}
    got_c, got_py = write_outcomes(c, first, second), write_outcomes(py, first, second)
    assert got_c == got_py
    assert got_c[0][0][:2] == ("error", "StateSignatureError")


def test_a_deep_signature_is_checked_like_any_other(configured):
    class S(configured.StateCore):
        pass

    s = S(_nested(300))
    s.value = _nested(300)
    with pytest.raises(StateSignatureError):
        s.value = _nested(299)
