"""``nn.Module``, its graph methods and its parameter helpers."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from brainstate import ParamState, ShortTermState
from brainstate import graph
from brainstate.nn import Module
from brainstate.nn import _module


class Linear(Module):
    def __init__(self, n_in, n_out, name=None):
        super().__init__(name)
        self.in_size, self.out_size = n_in, n_out
        self.weight = ParamState(jnp.ones((n_in, n_out)))

    def update(self, x):
        return x @ self.weight.value


class MLP(Module):
    def __init__(self):
        super().__init__()
        self.fc1 = Linear(3, 4)
        self.fc2 = Linear(4, 2)
        self.h = ShortTermState(jnp.zeros(2))
        self.w = ParamState(jnp.zeros(1))  # held by the MLP itself

    def update(self, x):
        return self.fc2(self.fc1(x))


class TestModuleBasics:
    def test_public_name(self):
        assert Module.__module__ == "brainstate.nn"
        assert issubclass(Module, graph.Node)

    def test_name_is_a_read_only_string(self):
        assert Module().name is None and Module("m").name == "m"
        with pytest.raises(AssertionError, match="must be a string"):
            Module(3)
        m = Module("m")
        with pytest.raises(AttributeError, match="read-only"):
            m.name = "other"

    def test_unset_name_and_sizes_add_nothing_to_the_graph(self):
        m = Module()
        assert vars(m) == {} and m.in_size is None and m.out_size is None
        assert graph.graphdef(m) == graph.graphdef(Module())

    def test_sizes_are_normalised_to_tuples(self):
        m = Module()
        m.in_size = 3
        m.out_size = [2, 5]
        assert m.in_size == (3,) and m.out_size == (2, 5)
        with pytest.raises(TypeError, match="in_size"):
            m.in_size = "3"

    def test_call_and_rshift(self):
        layer = Linear(2, 3)
        x = jnp.ones(2)
        np.testing.assert_allclose(layer(x), jnp.full(3, 2.0))
        np.testing.assert_allclose(x >> layer, jnp.full(3, 2.0))
        with pytest.raises(NotImplementedError, match="Module must implement update"):
            Module()(x)

    def test_repr_strips_underscores_and_hides_none(self):
        text = repr(Linear(2, 3, name="lin"))
        assert "name='lin'" in text and "in_size=(2,)" in text and "_name" not in text
        assert repr(Module()) == "Module()"

    def test_clone_keeps_name_and_sizes(self):
        layer = Linear(2, 3, name="lin")
        out = graph.clone(layer)
        assert out.name == "lin" and out.in_size == (2,) and out.weight is not layer.weight


class TestQueries:
    def test_states_state_trees_nodes(self):
        m = MLP()
        assert list(m.states(ParamState)) == [("fc1", "weight"), ("fc2", "weight"), ("w",)]
        assert list(m.states(allowed_hierarchy=(0, 0))) == [("h",), ("w",)]
        assert list(m.state_trees(ShortTermState).to_flat()) == [("h",)]
        assert list(m.nodes()) == [("fc1",), ("fc2",), ()]

    def test_children(self):
        m = MLP()
        m.layers = [Linear(1, 1), Linear(1, 1)]
        m.alias = m.fc1
        names = [n for n, _ in m.named_children()]
        assert names == ["alias", "fc2", "layers.0", "layers.1"]
        assert list(m.children())[0] is m.fc1

    def test_modules(self):
        m = MLP()
        assert [n for n, _ in m.named_modules()] == ["", "fc1", "fc2"]
        assert [n for n, _ in m.named_modules(prefix="model", include_self=False)] == \
               ["model.fc1", "model.fc2"]
        assert len(list(m.modules())) == 3 and len(list(m.modules(include_self=False))) == 2

    def test_parameters(self):
        m = MLP()
        assert [n for n, _ in m.named_parameters()] == ["fc1.weight", "fc2.weight", "w"]
        assert [n for n, _ in m.named_parameters(prefix="net")][0] == "net.fc1.weight"
        # recurse=False: states of direct children (depth 1), not of the module itself
        assert [n for n, _ in m.named_parameters(recurse=False)] == ["fc1.weight", "fc2.weight"]
        assert all(isinstance(p, ParamState) for p in m.parameters())

    def test_shared_parameters_once(self):
        m = MLP()
        m.fc2.weight = m.fc1.weight
        assert len(list(m.parameters())) == 2


class TestInitAllStates:
    def test_children_first_and_states_caught(self):
        order = []

        class Leaf(Module):
            def init_state(self, batch=None):
                order.append(("leaf", batch))
                self.v = ShortTermState(jnp.zeros(2))

        class Root(Module):
            def __init__(self):
                super().__init__()
                self.a = Leaf()

            def init_state(self, batch=None):
                order.append(("root", batch))

        root = Root()
        catcher = root.init_all_states(batch=4, state_tag="new")
        assert order == [("leaf", 4), ("root", 4)]
        assert len(catcher) == 1 and catcher[0] is root.a.v and root.a.v.tag == {"new"}

    def test_base_hooks_are_no_ops(self):
        m = Module()
        assert m.init_state() is None and m.reset_state() is None
        assert len(m.init_all_states()) == 0


class FakeParam(Module):
    """Stands in for nn.Param (another module's class) to test the Module-side helpers."""

    def __init__(self, value, loss=0.0):
        super().__init__()
        self.val = ParamState(jnp.asarray(value))
        self.loss = loss
        self.cached = False

    def cache(self):
        self.cached = True

    def clear_cache(self):
        self.cached = False

    def reg_loss(self):
        return self.loss


@pytest.fixture
def fake_param(monkeypatch):
    monkeypatch.setattr(_module, "_param_type", lambda: FakeParam)


class TestParamHelpers:
    def _model(self):
        inner = Module()
        inner.p = FakeParam(jnp.ones(2), loss=1.5)
        outer = Module()
        outer.direct = FakeParam(jnp.ones(3), loss=2.0)
        outer.inner = inner
        outer.alias = inner.p
        return outer

    def test_named_param_modules_once_each(self, fake_param):
        m = self._model()
        assert [n for n, _ in m.named_param_modules()] == ["alias", "direct"]
        assert [n for n, _ in m.named_param_modules(allowed_hierarchy=(2, 2))] == []
        assert len(list(m.param_modules())) == 2

    def test_reg_loss(self, fake_param):
        assert self._model().reg_loss() == 3.5
        assert Module().reg_loss() == 0.0

    def test_param_precompute_hierarchy_and_cleanup(self, fake_param):
        m = self._model()
        with m.param_precompute(allowed_hierarchy=(0, 0)):
            assert not m.direct.cached
        with m.param_precompute(allowed_hierarchy=(1, 1)):
            assert m.direct.cached and m.inner.p.cached  # inner.p is also m.alias (depth 1)
        assert not m.direct.cached
        with pytest.raises(RuntimeError):
            with m.param_precompute():
                assert m.direct.cached
                raise RuntimeError("inside")
        assert not m.direct.cached and not m.inner.p.cached

    def test_without_nn_param_the_import_error_is_plain(self):
        try:
            import brainstate.nn._param  # noqa: F401
        except ImportError:
            with pytest.raises(ImportError):
                list(Module().param_modules())
        else:
            assert list(Module().param_modules()) == []
