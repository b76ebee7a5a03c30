"""``nn.HiData``: construction, access, pytree behaviour, derived objects and errors."""

from __future__ import annotations

import copy
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate

HiData = brainstate.nn.HiData


def make():
    soma = HiData(name="soma", v=jnp.zeros(3), w=jnp.ones(3))
    return HiData({"soma": soma}, name="cell", spike=None, gain=2.0)


def test_construction_and_access():
    d = make()
    assert d.name == "cell"
    assert list(d) == ["soma", "spike", "gain"] == list(d.keys())
    assert len(d) == 3 and "soma" in d and "x" not in d
    assert d.soma is d["soma"]
    np.testing.assert_allclose(d.soma.w, jnp.ones(3))
    assert d.gain == 2.0 and d.spike is None
    assert dict(d.items())["gain"] == 2.0
    assert list(d.values())[2] == 2.0
    assert HiData().children == {} and len(HiData()) == 0


def test_derived_properties():
    d = make()
    assert d.state_size == 3  # v, w and gain; spike is None
    assert d.dtype == jnp.float32
    with pytest.raises(ValueError, match="has no child with a dtype"):
        HiData(name="x", a=None, b=HiData(c=None)).dtype


def test_is_a_pytree_keeping_order_and_name():
    d = make()
    leaves_with_path = jax.tree_util.tree_flatten_with_path(d)[0]
    names = [jax.tree_util.keystr(p) for p, _ in leaves_with_path]
    assert names == ["['soma']['v']", "['soma']['w']", "['gain']"]
    doubled = jax.tree.map(lambda x: 2 * x, d)
    assert isinstance(doubled, HiData) and doubled.name == "cell"
    np.testing.assert_allclose(doubled.soma.w, 2 * jnp.ones(3))
    out = brainstate.transform.jit(lambda t: t.replace(gain=t.gain + 1.0))(d)
    np.testing.assert_allclose(out.gain, 3.0)
    assert out.soma.name == "soma"


def test_new_objects():
    d = make()
    r = d.replace(gain=5.0, extra=1)
    assert r.gain == 5.0 and r.extra == 1 and d.gain == 2.0 and "extra" not in d
    a = d.add({"x": 1}, HiData(y=2), z=3)
    assert [k for k in a] == ["soma", "spike", "gain", "x", "y", "z"]
    p = d.pop("spike", "gain")
    assert list(p) == ["soma"] and len(d) == 3
    c = d.clone()
    assert c is not d and c.soma is not d.soma
    np.testing.assert_array_equal(c.soma.w, d.soma.w)
    assert c.name == "cell"


def test_dict_round_trip():
    d = make()
    plain = d.to_dict()
    assert isinstance(plain["soma"], dict) and plain["gain"] == 2.0
    back = HiData.from_dict(plain, name="again")
    assert back.name == "again" and isinstance(back.soma, HiData)
    np.testing.assert_allclose(back.soma.v, d.soma.v)


def test_repr_copy_and_pickle():
    text = repr(make())
    assert "name='cell'" in text and "v=Array(shape=(3,), dtype=float32)" in text
    assert "spike=None" in text and "gain=2.0" in text
    assert repr(HiData(name="e")) == "HiData(name='e')"
    long = repr(HiData(s="x" * 100))
    assert "..." in long
    d = HiData(name="p", a=np.arange(3))
    for twin in (copy.deepcopy(d), pickle.loads(pickle.dumps(d))):
        assert twin.name == "p"
        np.testing.assert_array_equal(twin.a, np.arange(3))


def test_bad_fields():
    with pytest.raises(TypeError, match="HiData children must be a mapping"):
        HiData([("a", 1)])
    with pytest.raises(TypeError, match="HiData child names must be str, got 1"):
        HiData({1: "x"})
    with pytest.raises(TypeError, match="HiData name must be a str or None"):
        HiData(name=3)
    with pytest.raises(ValueError, match=r"children \['a'\] are given both"):
        HiData({"a": 1}, a=2)
    d = make()
    with pytest.raises(AttributeError, match=r"HiData 'cell' has no child 'nope'; its children "
                                             r"are \['soma', 'spike', 'gain'\]"):
        d.nope
    with pytest.raises(KeyError, match="has no child 'nope'"):
        d["nope"]
    with pytest.raises(KeyError, match="has no child 'nope'"):
        d.pop("nope")
    with pytest.raises(AttributeError, match=r"HiData is immutable: cannot set 'gain'. Use "
                                             r"data.replace\(gain=...\)"):
        d.gain = 3.0
    with pytest.raises(AttributeError, match="HiData is immutable: cannot delete"):
        del d.gain
    with pytest.raises(TypeError, match="HiData.add takes HiData or dict arguments, got list"):
        d.add([1, 2])
    with pytest.raises(TypeError, match="child names must be str"):
        d.add({2: 1})
    with pytest.raises(TypeError, match="HiData.from_dict needs a mapping, got int"):
        HiData.from_dict(3)
