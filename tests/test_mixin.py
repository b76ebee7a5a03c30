"""Tests of ``brainstate.mixin``: describers, joint/one-of types, modes and behaviour mixins."""

from __future__ import annotations

import copy
import pickle
import typing
from typing import Optional, Union

import numpy as np
import pytest

import brainstate.mixin as M
from brainstate.mixin import (
    AlignPost,
    Batching,
    BindCondData,
    JointMode,
    JointTypes,
    Mixin,
    Mode,
    OneOfTypes,
    ParamDesc,
    ParamDescriber,
    Training,
    _JointGenericAlias,
    _OneOfGenericAlias,
)


class A:
    pass


class B:
    pass


class AB(A, B):
    pass


class C:
    pass


class Neuron(ParamDesc):
    def __init__(self, size, tau=10.0, *extra):
        self.size, self.tau, self.extra = size, tau, extra


class FastNeuron(Neuron):
    pass


def test_public_names_and_module():
    for name in M.__all__:
        assert hasattr(M, name), name
    for cls in (Mixin, ParamDesc, ParamDescriber, AlignPost, BindCondData, Mode, JointMode,
                Batching, Training):
        assert cls.__module__ == "brainstate.mixin", cls
    assert repr(JointTypes) == "brainstate.mixin.JointTypes"


# --- ParamDesc / ParamDescriber ------------------------------------------------------------------


def test_desc_stores_class_and_arguments():
    d = Neuron.desc(100, tau=5.0)
    assert isinstance(d, ParamDescriber)
    assert d.cls is Neuron and d.args == (100,) and d.kwargs == {"tau": 5.0}
    n = d()
    assert isinstance(n, Neuron) and (n.size, n.tau) == (100, 5.0)


def test_describer_call_appends_args_and_overrides_kwargs():
    d = ParamDescriber(Neuron, 10)
    n = d(3.0, 7, 8)
    assert (n.size, n.tau, n.extra) == (10, 3.0, (7, 8))
    d2 = Neuron.desc(10, tau=1.0)
    assert d2(tau=2.0).tau == 2.0
    assert d2.kwargs == {"tau": 1.0}  # the stored kwargs are not modified
    assert d2.init().tau == 1.0
    assert d2() is not d2()  # a fresh instance per call


def test_describer_identifier_is_hashable_with_unhashable_kwargs():
    d = Neuron.desc(10, tau=np.ones(3), extra=[1, 2])
    hash(d.identifier)
    cls, args, kwargs = d.identifier
    assert cls is Neuron and args == (10,) and kwargs["extra"] == "[1, 2]"
    same = Neuron.desc(10, extra=[1, 2], tau=np.ones(3))
    assert hash(same.identifier) == hash(d.identifier)
    with pytest.raises(AttributeError, match="read-only"):
        d.identifier = ()


def test_describer_isinstance_by_described_class():
    assert isinstance(FastNeuron.desc(1), ParamDescriber[Neuron])
    assert isinstance(Neuron.desc(1), ParamDescriber[Neuron])
    assert not isinstance(Neuron.desc(1), ParamDescriber[FastNeuron])
    assert not isinstance(Neuron(1), ParamDescriber[Neuron])
    assert not isinstance(ParamDescriber(A), ParamDescriber[Neuron])


def test_describer_usable_in_annotations():
    u = Union[ParamDescriber[Neuron], Neuron]
    assert len(typing.get_args(u)) == 2
    assert Optional[ParamDescriber[Neuron]] is not None


def test_describer_of_a_type_variable_is_a_generic_annotation():
    T = typing.TypeVar("T")
    alias = ParamDescriber[T]
    assert typing.get_origin(alias) is ParamDescriber and typing.get_args(alias) == (T,)
    assert typing.get_args(Union[ParamDescriber[T], T]) == (alias, T)


def test_describer_repr():
    assert repr(Neuron.desc(10, tau=5.0)) == "ParamDescriber(Neuron(10, tau=5.0))"


def test_describer_rejects_non_callable():
    with pytest.raises(TypeError, match=r"needs a class or callable.*got 3"):
        ParamDescriber(3)


def test_describer_cannot_be_subclassed():
    with pytest.raises(TypeError, match="not an acceptable base type"):
        class Sub(ParamDescriber):  # noqa: F811
            pass


def test_hashable_dict_order_free():
    h1 = M.HashableDict({"a": 1, "b": [1]})
    h2 = M.HashableDict({"b": [1], "a": 1})
    assert hash(h1) == hash(h2) and h1 == h2
    assert M.hashable((1, 2)) and not M.hashable({})


def test_not_implemented_marker():
    class Base:
        @M.not_implemented
        def step(self):
            """Step once."""

    assert M.is_not_implemented(Base.step)
    assert not M.is_not_implemented(Neuron.desc)
    assert Base.step.__doc__ == "Step once."
    with pytest.raises(NotImplementedError, match=r"step is not implemented"):
        Base().step()


# --- AlignPost / BindCondData --------------------------------------------------------------------


def test_align_post_requires_override():
    class Syn(AlignPost):
        pass

    with pytest.raises(NotImplementedError, match="Syn.*align_post_input_add"):
        Syn().align_post_input_add(1.0)

    class Good(AlignPost):
        def align_post_input_add(self, x):
            return x + 1

    assert Good().align_post_input_add(1) == 2
    assert isinstance(Good(), Mixin)


def test_bind_cond_data():
    class Out(BindCondData):
        pass

    o = Out()
    assert o._conductance is None
    o.bind_cond(0.3)
    assert o._conductance == 0.3
    o.unbind_cond()
    assert o._conductance is None


# --- JointTypes / OneOfTypes ---------------------------------------------------------------------


def test_joint_types_isinstance_and_issubclass():
    J = JointTypes[A, B]
    assert isinstance(AB(), J)
    assert not isinstance(A(), J) and not isinstance(B(), J)
    assert issubclass(AB, J) and not issubclass(A, J)
    assert isinstance(J, _JointGenericAlias)
    assert J.__args__ == (A, B)


def test_joint_types_normalisation():
    assert JointTypes[A] is A
    assert JointTypes[A, B] is JointTypes[B, A]
    assert JointTypes[A, B, A] is JointTypes[A, B]
    assert JointTypes[JointTypes[A, B], C] is JointTypes[A, B, C]
    assert JointTypes(A, B) is JointTypes[A, B]
    assert JointTypes[A, None].__args__ == (A, type(None))
    assert JointTypes[A, B] != JointTypes[A, C]


def test_joint_types_repr_and_annotations():
    J = JointTypes[int, str]
    assert repr(J) == "JointTypes[int, str]"
    assert J in typing.get_args(Optional[J])


def test_joint_types_pickle_and_copy():
    J = JointTypes[int, float]
    assert pickle.loads(pickle.dumps(J)) is J
    assert copy.deepcopy(J) is J
    O = OneOfTypes[int, str]
    assert pickle.loads(pickle.dumps(O)) is O
    assert pickle.loads(pickle.dumps(JointTypes)) is JointTypes


def test_joint_types_cannot_be_instantiated():
    with pytest.raises(TypeError, match="not a class to instantiate"):
        JointTypes[A, B]()


@pytest.mark.parametrize("form", [JointTypes, OneOfTypes])
def test_type_forms_reject_bad_members(form):
    with pytest.raises(TypeError, match="at least one class"):
        form()
    with pytest.raises(TypeError, match=r"takes classes, got 1 of type int"):
        form[int, 1]


def test_one_of_types():
    O = OneOfTypes[int, str]
    assert isinstance(1, O) and isinstance("a", O) and not isinstance(1.0, O)
    assert issubclass(bool, O) and not issubclass(float, O)
    assert isinstance(O, _OneOfGenericAlias)
    assert OneOfTypes[str, int] is O
    assert OneOfTypes[int] is int
    assert OneOfTypes[OneOfTypes[int, str], float] is OneOfTypes[int, str, float]
    # Different forms do not flatten into each other.
    J = JointTypes[A, B]
    assert OneOfTypes[J, C].__args__ == (J, C)
    assert isinstance(AB(), OneOfTypes[J, C]) and not isinstance(A(), OneOfTypes[J, C])


# --- modes ---------------------------------------------------------------------------------------


def test_mode_equality_and_hash():
    assert Training() == Training()
    assert Training() != Batching()
    assert Training() != "Training"
    assert hash(Training()) == hash(Training())
    assert len({Training(), Training(), Batching(2)}) == 2
    assert repr(Training()) == "Training"


def test_mode_is_a_and_has():
    class Fine(Training):
        pass

    m = Fine()
    assert m.is_a(Fine) and not m.is_a(Training)
    assert m.has(Training) and m.has(Mode) and not m.has(Batching)
    with pytest.raises(TypeError, match=r"is_a\(\) takes a mode class.*got Training"):
        m.is_a(Training())
    with pytest.raises(TypeError, match=r"has\(\) takes a mode class"):
        m.has("Training")


def test_batching():
    b = Batching(32, batch_axis=1)
    assert (b.batch_size, b.batch_axis) == (32, 1)
    assert repr(b) == "Batching(batch_size=32, batch_axis=1)"
    assert (Batching().batch_size, Batching().batch_axis) == (1, 0)


def test_joint_mode():
    m = JointMode(Training(), Batching(batch_size=8))
    assert m.modes[1].batch_size == 8
    assert m.types == {Training, Batching}
    assert m.has(Training) and m.has(Batching) and m.has(Mode)
    assert m.batch_size == 8 and m.batch_axis == 0
    assert m.is_a(JointTypes[Training, Batching])
    assert not m.is_a(Training)
    assert repr(m) == "JointMode(Training, Batching(batch_size=8, batch_axis=0))"
    assert m == JointMode(Batching(), Training())
    assert m != JointMode(Training())
    assert hash(m) == hash(JointMode(Batching(), Training()))


def test_joint_mode_errors():
    with pytest.raises(TypeError, match=r"JointMode takes Mode instances.*got <class"):
        JointMode(Training)
    m = JointMode(Training())
    with pytest.raises(AttributeError, match=r"no attribute 'batch_size'.*none of its modes"):
        m.batch_size
    assert not hasattr(m, "batch_size")
    with pytest.raises(TypeError, match="has\\(\\) takes a mode class"):
        m.has(Training())


def test_joint_mode_copy_and_pickle():
    m = JointMode(Training(), Batching(4))
    m2 = pickle.loads(pickle.dumps(m))
    assert m2 == m and m2.batch_size == 4
    assert copy.deepcopy(m).batch_size == 4
