"""Tests of the ``brainstate.util`` containers and helpers.

DotDict, PrettyDict/PrettyList/PrettyObject, the pretty-repr machinery, struct (dataclass,
FrozenDict), BoundedCache, StateJaxTracer and the free helpers (split_total, get_unique_name,
merge/flatten/unflatten_dict, instance predicates, clear_buffer_memory).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import pickle
import subprocess
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import brainstate
import brainstate.util as U
from brainstate.util import (
    BoundedCache,
    DotDict,
    FrozenDict,
    PrettyAttr,
    PrettyDict,
    PrettyList,
    PrettyMapping,
    PrettyObject,
    PrettyRepr,
    PrettyType,
    PyTreeNode,
    StateJaxTracer,
    field,
)


def test_public_names():
    for name in U.__all__:
        assert hasattr(U, name), name
    for obj in (DotDict, PrettyDict, PrettyList, PrettyObject, PrettyRepr, PrettyType,
                PrettyAttr, PrettyMapping, BoundedCache, StateJaxTracer, FrozenDict, PyTreeNode,
                U.split_total, U.get_unique_name, U.merge_dicts, U.dataclass):
        assert obj.__module__ == "brainstate.util", obj
    assert U.WithTag is U.filter.WithTag and U.to_predicate is U.filter.to_predicate


# --- DotDict -------------------------------------------------------------------------------------


def test_dotdict_attribute_access_and_nesting():
    d = DotDict({"model": {"layers": 3, "blocks": [{"w": 1}, 2]}}, lr=0.1)
    assert d.lr == 0.1 and d["lr"] == 0.1
    assert type(d.model) is DotDict and d.model.layers == 3
    assert type(d.model.blocks[0]) is DotDict and d.model.blocks[0].w == 1
    d.model.units = 64
    assert d["model"]["units"] == 64
    d.extra = {"a": {"b": 1}}  # dicts assigned later are converted too
    assert d.extra.a.b == 1
    d["other"] = ({"c": 2},)
    assert d.other[0].c == 2
    del d.lr
    assert "lr" not in d


def test_dotdict_constructor_forms():
    assert DotDict([("a", 1), ("b", 2)]) == {"a": 1, "b": 2}
    assert DotDict(("a", 1)) == {"a": 1}
    assert DotDict({"a": 1}, {"b": 2}, c=3) == {"a": 1, "b": 2, "c": 3}
    assert DotDict() == {} and DotDict({}) == {}
    with pytest.raises(TypeError, match=r"mappings or iterables of \(key, value\) pairs, got int"):
        DotDict(3)
    with pytest.raises(TypeError, match=r"expected \(key, value\) pairs, got element 'abc'"):
        DotDict(["abc"])


def test_dotdict_missing_attribute_names_the_key():
    d = DotDict(a=1)
    with pytest.raises(AttributeError, match=r"no attribute or key 'missing'.*\['a'\]"):
        d.missing
    with pytest.raises(AttributeError, match="'gone'"):
        del d.gone
    assert not hasattr(d, "missing")
    assert getattr(d, "missing", 5) == 5
    with pytest.raises(KeyError):
        d["missing"]


def test_dotdict_refuses_shadowing_methods():
    d = DotDict()
    with pytest.raises(AttributeError, match=r"Cannot set attribute 'keys'.*d\['keys'\] = value"):
        d.keys = 1
    d["keys"] = 1  # item syntax still works
    assert d["keys"] == 1 and callable(d.keys)


def test_dotdict_namedtuple_kept():
    P = collections.namedtuple("P", "x y")
    d = DotDict(p=P({"a": 1}, 2))
    assert type(d.p) is P and d.p.x.a == 1
    assert type(d.to_dict()["p"]) is P and type(d.to_dict()["p"].x) is dict


def test_dotdict_to_dict_copy_deepcopy():
    d = DotDict({"a": {"b": [1, {"c": 2}]}})
    plain = d.to_dict()
    assert plain == {"a": {"b": [1, {"c": 2}]}}
    assert type(plain["a"]) is dict and type(plain["a"]["b"][1]) is dict
    shallow = d.copy()
    assert type(shallow) is DotDict and shallow == d and shallow.a is d.a
    assert copy.copy(d).a is d.a
    deep = d.deepcopy()
    assert deep == d and deep.a is not d.a and type(deep.a) is DotDict
    assert copy.deepcopy(d).a.b[1] is not d.a.b[1]
    assert DotDict.from_dict({"x": {"y": 1}}).x.y == 1


def test_dotdict_update_merges_nested():
    d = DotDict({"opt": {"lr": 0.1, "mom": 0.9}, "n": 1})
    d.update({"opt": {"lr": 0.01}}, n=2)
    assert d.opt == {"lr": 0.01, "mom": 0.9} and d.n == 2
    d.update(opt=5)
    assert d.opt == 5
    with pytest.raises(TypeError, match="at most 1 positional argument, got 2"):
        d.update({}, {})
    assert d.setdefault("new", {"k": 1}).k == 1
    assert d.setdefault("n", 100) == 2


def test_dotdict_or_keeps_type():
    d = DotDict(a=1) | {"b": {"c": 2}}
    assert type(d) is DotDict and d.b.c == 2
    e = DotDict(a=1)
    e |= {"z": 0}
    assert type(e) is DotDict and e.z == 0


def test_dotdict_pickle():
    d = DotDict({"a": {"b": 2}, "c": [1, 2]})
    back = pickle.loads(pickle.dumps(d))
    assert back == d and type(back) is DotDict and type(back.a) is DotDict


def test_dotdict_is_a_pytree():
    d = DotDict({"a": 1.0, "b": {"c": 2.0}})
    leaves, treedef = jax.tree.flatten(d)
    assert leaves == [1.0, 2.0]
    out = jax.tree.map(lambda x: x * 2, d)
    assert type(out) is DotDict and type(out.b) is DotDict and out.b.c == 4.0
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(d)[0]]
    assert paths[1] == (jax.tree_util.DictKey("b"), jax.tree_util.DictKey("c"))
    res = jax.jit(lambda q: q.a + q.b.c)(DotDict(a=jnp.float32(1), b={"c": jnp.float32(2)}))
    assert float(res) == pytest.approx(3.0)
    g = jax.grad(lambda q: q.a * q.b.c)(DotDict(a=2.0, b={"c": 3.0}))
    assert type(g) is DotDict and g.a == pytest.approx(3.0) and g.b.c == pytest.approx(2.0)


def test_dotdict_subclass_is_registered():
    class Config(DotDict):
        pass

    c = Config(a=1, b={"x": 2})
    assert type(c.b) is Config
    assert jax.tree.leaves(c) == [1, 2]
    assert type(jax.tree.map(lambda x: x, c)) is Config


def test_dotdict_dir_and_repr():
    d = DotDict(alpha=1)
    assert "alpha" in dir(d) and "keys" in dir(d)
    assert repr(d) == "DotDict({'alpha': 1})"


# --- pretty reprs --------------------------------------------------------------------------------


class _Model(PrettyObject):
    def __init__(self):
        self.alpha = 2.0
        self.sizes = [3, 4]
        self.cfg = {"k": 1}
        self._hidden = "secret"

    def __pretty_repr_item__(self, key, value):
        if key.startswith("_"):
            return None
        return key, value


def test_pretty_object_repr_layout():
    text = repr(_Model())
    assert text == (
        "_Model(\n"
        "  alpha=2.0,\n"
        "  sizes=[\n"
        "    3,\n"
        "    4\n"
        "  ],\n"
        "  cfg={\n"
        "    'k': 1\n"
        "  }\n"
        ")"
    )


def test_pretty_object_without_attributes_and_subclassable():
    class Empty(PrettyObject):
        pass

    assert repr(Empty()) == "Empty()"

    class Renamed(PrettyObject):
        def __init__(self):
            self.a = 1

        def __pretty_repr_item__(self, key, value):
            return f"renamed_{key}", value * 10

    assert repr(Renamed()) == "Renamed(\n  renamed_a=10\n)"


def test_pretty_repr_cycle_is_cut():
    class Node(PrettyObject):
        def __init__(self):
            self.name = "n"
            self.next = self

    assert repr(Node()) == "Node(\n  name='n',\n  next=Node(...)\n)"
    # The seen-set is reset after each repr: a second repr is identical.
    n = Node()
    assert repr(n) == repr(n)


def test_pretty_repr_is_thread_local():
    results = []

    def work():
        results.append(repr(_Model()))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and results[0].startswith("_Model(")


def test_pretty_repr_protocol_errors():
    class NoHeader(PrettyRepr):
        def __pretty_repr__(self):
            yield PrettyAttr("a", 1)

    class BadItem(PrettyRepr):
        def __pretty_repr__(self):
            yield PrettyType("X")
            yield ("a", 1)

    with pytest.raises(TypeError, match="must first yield a PrettyType, got PrettyAttr"):
        repr(NoHeader())
    with pytest.raises(TypeError, match="must yield PrettyAttr items.*got tuple"):
        repr(BadItem())
    with pytest.raises(TypeError, match="abstract"):
        PrettyRepr()


def test_pretty_mapping_and_mixin():
    assert repr(PrettyMapping({"a": 1}, type_name="P")) == "P{\n  'a': 1\n}"
    assert repr(PrettyMapping({})) == "{}"

    class Table(dict, U.MappingReprMixin, PrettyRepr):
        __repr__ = PrettyRepr.__repr__

    assert repr(Table(a=1, b="x")) == "{\n  'a': 1,\n  'b': 'x'\n}"


def test_pretty_type_custom_header():
    class Box(PrettyRepr):
        def __pretty_repr__(self):
            yield PrettyType("Box", start="<", end=">", value_sep=": ", elem_indent="    ")
            yield PrettyAttr("v", "line1\nline2", start="*", end="!")

    assert repr(Box()) == "Box<\n    *v: line1\n    line2!\n>"


def test_yield_unique_default_fields_skip_private_and_read_slots():
    class Slotted(PrettyRepr):
        __slots__ = ("x", "_y")

        def __init__(self):
            self.x, self._y = 1, 2

        def __pretty_repr__(self):
            yield from U.yield_unique_pretty_repr_items(self)

    assert repr(Slotted()) == "Slotted(\n  x=1\n)"


def test_pretty_dict():
    d = PrettyDict({"w": 1, "b": {"x": [2]}})
    assert d.w == 1
    assert repr(d) == "PrettyDict({\n  'w': 1,\n  'b': {\n    'x': [\n      2\n    ]\n  }\n})"
    assert repr(PrettyDict()) == "PrettyDict({})"
    with pytest.raises(AttributeError, match="no attribute or key 'nope'"):
        d.nope
    assert d.to_dict() == {"w": 1, "b": {"x": [2]}} and type(d.to_dict()) is dict
    for name in ("split", "filter", "merge", "subset"):
        with pytest.raises(NotImplementedError, match=f"does not implement"):
            getattr(d, name)(...)
    out = jax.tree.map(lambda x: x + 1, PrettyDict(a=1, b=2))
    assert type(out) is PrettyDict and out == {"a": 2, "b": 3}


def test_pretty_dict_treefy_state():
    st = brainstate.ParamState(jnp.zeros(2))
    d = PrettyDict(w=st, n=3)
    ref = d.treefy_state()
    assert ref["n"] == 3
    assert not isinstance(ref["w"], brainstate.State)
    assert np.array_equal(np.asarray(ref["w"].value), np.zeros(2))


def test_pretty_list():
    lst = PrettyList([1, {"a": 2}])
    assert repr(lst) == "[\n  1,\n  {\n    'a': 2\n  }\n]"
    assert repr(PrettyList()) == "[]"
    out = jax.tree.map(lambda x: x * 10, PrettyList([1, 2]))
    assert type(out) is PrettyList and out == [10, 20]


# --- struct --------------------------------------------------------------------------------------


@U.dataclass
class _Linear:
    w: jax.Array
    b: jax.Array
    name: str = field(pytree_node=False, default="fc")


def test_dataclass_pytree_and_replace():
    layer = _Linear(jnp.ones(2), jnp.zeros(2))
    assert U.is_dataclass(layer) and U.is_dataclass(_Linear) and not U.is_dataclass(object)
    assert len(jax.tree.leaves(layer)) == 2
    assert jax.tree.structure(layer) == jax.tree.structure(layer.replace(name="fc"))
    assert jax.tree.structure(layer) != jax.tree.structure(layer.replace(name="other"))
    g = jax.grad(lambda m: jnp.sum(m.w * 3.0 + m.b))(layer)
    assert type(g) is _Linear and g.name == "fc"
    assert np.allclose(np.asarray(g.w), 3.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.w = jnp.zeros(2)
    assert U.dataclass(_Linear) is _Linear


def test_dataclass_with_arguments():
    @U.dataclass(frozen=False)
    class Mutable:
        x: float

    m = Mutable(1.0)
    m.x = 2.0
    assert m.x == 2.0 and jax.tree.leaves(m) == [2.0]


def test_pytree_node_subclass():
    class Layer(PyTreeNode):
        w: jax.Array
        act: str = field(pytree_node=False, default="relu")

    layer = Layer(jnp.zeros(3))
    assert U.is_dataclass(Layer)
    assert jax.tree.leaves(layer)[0].shape == (3,)
    assert layer.replace(act="tanh").act == "tanh"

    class Deeper(Layer):
        extra: int = 0

    assert len(jax.tree.leaves(Deeper(jnp.zeros(1), extra=5))) == 2


def test_frozen_dict():
    fd = FrozenDict({"a": 1, "b": {"c": 2}})
    assert isinstance(fd["b"], FrozenDict) and fd["b"]["c"] == 2
    assert fd == {"a": 1, "b": {"c": 2}} and len(fd) == 2 and "a" in fd
    assert list(fd.keys()) == ["a", "b"] and list(fd.items())[0] == ("a", 1)
    with pytest.raises(TypeError, match=r"item assignment; use fd.copy"):
        fd["a"] = 2
    with pytest.raises(TypeError, match="item deletion"):
        del fd["a"]
    with pytest.raises(AttributeError, match="immutable"):
        fd.x = 1
    fd2 = fd.copy({"a": 5})
    assert fd2["a"] == 5 and fd["a"] == 1
    rest, value = fd.pop("a")
    assert value == 1 and "a" not in rest and "a" in fd
    with pytest.raises(KeyError):
        fd.pop("zz")
    assert hash(fd) == hash(FrozenDict({"b": {"c": 2}, "a": 1}))
    with pytest.raises(TypeError, match="hashable only when its values are"):
        hash(FrozenDict(a=[1]))
    assert pickle.loads(pickle.dumps(fd)) == fd
    assert U.unfreeze(fd) == {"a": 1, "b": {"c": 2}} and type(U.unfreeze(fd)["b"]) is dict
    assert U.freeze(fd) is fd and isinstance(U.freeze({"x": 1}), FrozenDict)
    assert repr(FrozenDict()) == "FrozenDict({})"
    assert repr(FrozenDict(a=1)) == "FrozenDict({\n  'a': 1\n})"


def test_frozen_dict_pytree_sorted_keys():
    fd = FrozenDict({"b": 2.0, "a": 1.0})
    assert jax.tree.leaves(fd) == [1.0, 2.0]
    out = jax.tree.map(lambda x: x + 1, fd)
    assert isinstance(out, FrozenDict) and out == {"a": 2.0, "b": 3.0}


def test_struct_free_functions():
    assert U.copy({"a": 1}, {"b": 2}) == {"a": 1, "b": 2}
    assert isinstance(U.copy(FrozenDict(a=1), {"b": 2}), FrozenDict)
    assert U.pop({"a": 1, "b": 2}, "a") == ({"b": 2}, 1)
    with pytest.raises(TypeError, match="expects a FrozenDict or dict, got list"):
        U.copy([1])
    with pytest.raises(TypeError, match="expects a FrozenDict or dict, got int"):
        U.pop(3, "a")
    assert U.pretty_repr({"a": {"b": 1}}) == "{\n  'a': {\n    'b': 1\n  }\n}"
    assert U.pretty_repr([1]) == "[1]"


# --- BoundedCache --------------------------------------------------------------------------------


def test_bounded_cache_lru_and_stats():
    c = BoundedCache(maxsize=2)
    c.set("a", 1)
    c.set("b", 2)
    assert c.get("a") == 1  # 'a' becomes most recent
    c.set("c", 3)  # evicts 'b'
    assert c.keys() == ["a", "c"] and "b" not in c and len(c) == 2
    assert c.get("b", default="none") == "none"
    stats = c.get_stats()
    assert stats["hits"] == 1 and stats["misses"] == 1 and stats["hit_rate"] == pytest.approx(50.0)
    c.replace("a", 10)
    assert c.keys() == ["c", "a"] and c.get("a") == 10
    assert c.pop("c") == 3 and c.pop("c", "gone") == "gone"
    c.clear()
    assert len(c) == 0 and c.get_stats()["hits"] == 0 and c.maxsize == 2


def test_bounded_cache_errors():
    c = BoundedCache(3)
    c.set("k", 1)
    with pytest.raises(ValueError, match="already cached; use replace"):
        c.set("k", 2)
    with pytest.raises(KeyError, match="not cached; use set"):
        c.replace("z", 1)
    with pytest.raises(ValueError, match=r"No compiled function is cached for key 'z'(.|\n)*'k'"):
        c.get("z", raise_on_miss=True, error_context="compiled function")
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="maxsize must be a positive integer"):
            BoundedCache(bad)


# --- StateJaxTracer ------------------------------------------------------------------------------


def test_state_jax_tracer():
    outer = StateJaxTracer()
    assert outer.is_valid() and outer == StateJaxTracer()
    seen = []

    @jax.jit
    def f(x):
        inner = StateJaxTracer()
        seen.append((outer.is_valid(), inner.is_valid(), inner == outer))
        return x

    f(1.0)
    assert seen == [(False, True, False)]
    assert repr(outer).startswith("StateJaxTracer(\n  jax_trace=")


# --- free helpers --------------------------------------------------------------------------------


def test_split_total():
    assert U.split_total(100, 0.25) == 25
    assert U.split_total(10, 0.99) == 9  # rounds down
    assert U.split_total(100, 30) == 30
    assert U.split_total(100, 0) == 0 and U.split_total(100, 1.0) == 100
    assert U.split_total(np.int64(10), np.float32(0.5)) == 5


@pytest.mark.parametrize(
    "total, fraction, exc, pattern",
    [
        (100, 1.5, ValueError, r"share and must lie in \[0, 1\], got 1.5"),
        (100, -0.1, ValueError, r"share and must lie in \[0, 1\]"),
        (100, float("nan"), ValueError, r"share and must lie in \[0, 1\]"),
        (100, 101, ValueError, r"count and must lie in \[0, 100\]"),
        (100, -1, ValueError, r"count and must lie in \[0, 100\]"),
        (100, "half", TypeError, "must be an int .* or a float .*got 'half'"),
        (100, True, TypeError, "must be an int .* or a float"),
        (0, 0.5, ValueError, "'total' must be a positive integer, got 0"),
        (10.0, 0.5, TypeError, "'total' must be an integer"),
    ],
)
def test_split_total_bad_input(total, fraction, exc, pattern):
    with pytest.raises(exc, match=pattern):
        U.split_total(total, fraction)


def test_get_unique_name():
    a = U.get_unique_name("TestUniqueName")
    b = U.get_unique_name("TestUniqueName")
    c = U.get_unique_name("TestUniqueName", prefix="pre_")
    assert a.startswith("TestUniqueName") and b.startswith("TestUniqueName")
    assert int(b[len("TestUniqueName"):]) == int(a[len("TestUniqueName"):]) + 1
    assert c.startswith("pre_TestUniqueName")
    assert len({a, b, c}) == 3
    with pytest.raises(TypeError, match="takes strings"):
        U.get_unique_name(3)


def test_get_unique_name_counters_are_per_thread():
    names = []
    t = threading.Thread(target=lambda: names.append(U.get_unique_name("PerThreadName")))
    t.start()
    t.join()
    assert names == ["PerThreadName0"]


def test_merge_dicts():
    a = {"a": 1, "b": {"c": 2}}
    b = {"b": {"d": 3}, "e": 4}
    assert U.merge_dicts(a, b) == {"a": 1, "b": {"c": 2, "d": 3}, "e": 4}
    assert a == {"a": 1, "b": {"c": 2}}  # inputs untouched
    assert U.merge_dicts(a, b, recursive=False)["b"] == {"d": 3}
    assert U.merge_dicts() == {}
    with pytest.raises(TypeError, match="argument 1 must be a mapping, got"):
        U.merge_dicts({}, [1])


def test_flatten_unflatten_round_trip():
    nested = {"a": 1, "b": {"c": 2, "d": {"e": 3}}, "empty": {}}
    flat = U.flatten_dict(nested)
    assert flat == {"a": 1, "b.c": 2, "b.d.e": 3, "empty": {}}
    assert U.unflatten_dict(flat) == nested
    assert U.flatten_dict({"a": {"b": 1}}, sep="/", parent_key="root") == {"root/a/b": 1}
    assert U.unflatten_dict({"a/b": 1}, sep="/") == {"a": {"b": 1}}


def test_flatten_unflatten_errors():
    with pytest.raises(ValueError, match=r"same key 'a.b'"):
        U.flatten_dict({"a.b": 1, "a": {"b": 2}})
    with pytest.raises(TypeError, match="expects a mapping, got list"):
        U.flatten_dict([1])
    with pytest.raises(ValueError, match=r"key 'a.b' conflicts with 'a'"):
        U.unflatten_dict({"a": 1, "a.b": 2})
    with pytest.raises(ValueError, match=r"key 'a' conflicts"):
        U.unflatten_dict({"a.b": 2, "a": 1})
    with pytest.raises(TypeError, match="needs string keys, got 3"):
        U.unflatten_dict({3: 1})


def test_instance_predicates():
    is_num = U.is_instance_eval(int, float)
    not_str = U.not_instance_eval(str)
    assert is_num(1) and is_num(1.5) and not is_num("a")
    assert not_str(1) and not not_str("a")
    with pytest.raises(TypeError, match="takes classes, got 1"):
        U.is_instance_eval(1)
    with pytest.raises(TypeError, match="needs at least one class"):
        U.not_instance_eval()


def test_clear_buffer_memory_deletes_live_arrays(tmp_path):
    # In a child process: deleting every live array here would break arrays other tests hold.
    code = (
        "import jax.numpy as jnp, brainstate.util as U\n"
        "x = jnp.arange(3.0) + 1.0\n"
        "assert not x.is_deleted()\n"
        "U.clear_buffer_memory(compilation=True)\n"
        "assert x.is_deleted()\n"
        "y = jnp.ones(2)\n"
        "U.clear_buffer_memory(array=False)\n"
        "assert not y.is_deleted()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# --- properties ----------------------------------------------------------------------------------

_keys = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
_nested = st.recursive(
    st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False, width=32),
    lambda children: st.dictionaries(_keys, children, min_size=1, max_size=3),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_keys, _nested, max_size=4))
def test_flatten_unflatten_property(nested):
    flat = U.flatten_dict(nested, sep="/")
    assert all(not isinstance(v, dict) or v == {} for v in flat.values())
    assert U.unflatten_dict(flat, sep="/") == nested


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_keys, _nested, max_size=4))
def test_dotdict_round_trips_property(nested):
    d = DotDict(nested)
    assert d == nested and d.to_dict() == nested
    leaves = jax.tree.leaves(nested)
    assert sorted(map(float, jax.tree.leaves(d))) == sorted(map(float, leaves))
    back = jax.tree.map(lambda x: x, d)
    assert back == d and jax.tree.structure(back) == jax.tree.structure(d)
    assert pickle.loads(pickle.dumps(d)) == d


def test_bounded_cache_concurrent_writers():
    cache = BoundedCache(maxsize=50)
    errors = []

    def writer(base):
        try:
            for i in range(200):
                cache.set((base, i), i)
                cache.get((base, i))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(b,)) for b in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cache) == 50 and cache.get_stats()["hits"] == 800
