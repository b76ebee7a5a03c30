"""``StateFinder``: the states a function touches, filtered and keyed."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

import brainstate
from brainstate.transform import StateFinder, jit
from brainstate.util.filter import PathContains


def _setup():
    buf = brainstate.State(jnp.array(1.0), name="buffer")
    w = brainstate.ParamState(jnp.array(3.0), name="w")
    tagged = brainstate.State(jnp.array(0.0), name="t", tag="fast")

    def fn(x):
        _ = buf.value + tagged.value
        w.value = w.value * x
        return w.value

    return fn, buf, w, tagged


class Net(brainstate.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = brainstate.nn.Linear(2, 3)
        self.count = brainstate.ShortTermState(jnp.zeros(()))

    def __call__(self, x):
        self.count.value = self.count.value + 1
        return self.l1(x)


class TestFind:
    def test_all_in_first_access_order(self):
        fn, buf, w, tagged = _setup()
        assert StateFinder(fn)(2.0) == {0: buf, 1: tagged, 2: w}

    def test_nothing_runs(self):
        fn, buf, w, _ = _setup()
        StateFinder(fn)(2.0)
        assert float(w.value) == 3.0

    @pytest.mark.parametrize("usage, expected", [("read", ["buffer", "t"]), ("write", ["w"]),
                                                 ("all", ["buffer", "t", "w"])])
    def test_usage(self, usage, expected):
        fn = _setup()[0]
        found = StateFinder(fn, usage=usage, return_type="list")(2.0)
        assert [st.name for st in found] == expected

    def test_both_tuple(self):
        fn, buf, w, tagged = _setup()
        found = StateFinder(fn, usage="both", return_type="tuple")(2.0)
        assert found == {"read": (buf, tagged), "write": (w,)}

    @pytest.mark.parametrize("filt, expected", [
        (brainstate.ParamState, ["w"]),
        ("fast", ["t"]),
        (lambda path, st: st.name != "buffer", ["t", "w"]),
        ([brainstate.ParamState, "fast"], ["t", "w"]),
    ])
    def test_filters(self, filt, expected):
        fn = _setup()[0]
        found = StateFinder(fn, filt, return_type="list")(2.0)
        assert [st.name for st in found] == expected

    def test_keys(self):
        fn, buf, w, tagged = _setup()
        assert StateFinder(fn, key_fn="name")(2.0) == {"buffer": buf, "t": tagged, "w": w}
        assert StateFinder(fn, key_fn=lambda i, st: f"s{i}")(2.0) == \
            {"s0": buf, "s1": tagged, "s2": w}

    def test_key_fallbacks(self):
        a = brainstate.State(jnp.zeros(()), name="dup")
        b = brainstate.State(jnp.zeros(()), name="dup")
        c = brainstate.State(jnp.zeros(()))

        def fn():
            return a.value + b.value + c.value

        assert StateFinder(fn, key_fn="name")() == {"dup": a, "dup_1": b, "state_2": c}
        assert StateFinder(fn, key_fn=lambda i, st: None)() == \
            {"dup": a, "dup_1": b, "state_2": c}
        assert list(StateFinder(fn, key_fn=lambda i, st: [i])()) == ["[0]", "[1]", "[2]"]

    def test_module_paths(self):
        net = Net()
        x = jnp.ones((1, 2))
        found = StateFinder(net, key_fn="path")(x)
        assert found == {"count": net.count, "l1.weight": net.l1.weight}
        params = StateFinder(net, PathContains("l1"), return_type="list")(x)
        assert params == [net.l1.weight]
        bound = StateFinder(net.__call__, usage="write", key_fn="path")(x)
        assert bound == {"count": net.count}

    def test_plain_function_has_no_path(self):
        fn, buf, w, tagged = _setup()
        # no module to resolve paths in: fall back to the name
        assert StateFinder(fn, key_fn="path")(2.0) == {"buffer": buf, "t": tagged, "w": w}

    def test_jitted_function(self):
        fn, buf, w, tagged = _setup()
        assert StateFinder(jit(fn), usage="write", return_type="list")(2.0) == [w]


class TestErrors:
    def test_bad_usage(self):
        with pytest.raises(ValueError, match="invalid usage 'x'"):
            StateFinder(lambda: None, usage="x")

    def test_bad_return_type(self):
        with pytest.raises(ValueError, match="invalid return_type 'set'"):
            StateFinder(lambda: None, return_type="set")

    def test_bad_key_fn(self):
        with pytest.raises(ValueError, match="invalid key_fn 'id'"):
            StateFinder(lambda: None, key_fn="id")
        with pytest.raises(TypeError, match="key_fn must be a callable"):
            StateFinder(lambda: None, key_fn=3)

    def test_not_callable(self):
        with pytest.raises(TypeError, match="StateFinder needs a callable, got int"):
            StateFinder(3)
