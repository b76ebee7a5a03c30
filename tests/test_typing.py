"""Tests of ``brainstate.typing``: aliases, protocols, ``PyTree``, ``Array`` and ``Missing``."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import typing
from typing import Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate.typing as bt
from brainstate.typing import (
    Array,
    ArrayLike,
    Axes,
    DType,
    DTypeLike,
    Filter,
    FilterLiteral,
    Key,
    Missing,
    PathParts,
    Predicate,
    PyTree,
    SeedOrKey,
    Shape,
    Size,
    SupportsDType,
)


def test_all_names_exist_and_public_module():
    for name in bt.__all__:
        assert hasattr(bt, name), name
    for cls in (PyTree, Array, Missing, Key, SupportsDType):
        assert cls.__module__ == "brainstate.typing"
    assert repr(PyTree) == "brainstate.typing.PyTree"


# --- ArrayLike and friends -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [jnp.ones(2), np.ones(2), np.float32(1.0), np.int8(3), np.bool_(True), True, 3, 2.5, 1j],
)
def test_array_like_accepts_array_values(value):
    assert isinstance(value, ArrayLike)


@pytest.mark.parametrize("value", [[1, 2], "1.0", None, {"a": 1}, (1, 2)])
def test_array_like_rejects_sequences_strings_none(value):
    assert not isinstance(value, ArrayLike)


def test_array_like_is_a_union_usable_in_annotations():
    assert typing.get_origin(ArrayLike) is Union
    assert jax.Array in typing.get_args(ArrayLike)
    assert type(None) in typing.get_args(Optional[ArrayLike])

    def f(x: ArrayLike, size: Size, shape: Shape, axes: Axes, dtype: DTypeLike,
          key: SeedOrKey) -> ArrayLike:
        return x

    hints = typing.get_type_hints(f)
    assert hints["x"] == ArrayLike and hints["size"] == Size


def test_array_like_includes_quantity_when_brainunit_is_installed():
    u = pytest.importorskip("brainunit")
    assert u.Quantity in typing.get_args(ArrayLike)
    assert isinstance(3.0 * u.ms, ArrayLike)


def test_brainunit_is_optional(tmp_path):
    # A finder that refuses brainunit, installed before brainstate.typing is imported.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'brainunit' or name.startswith('brainunit.'):\n"
        "            raise ImportError('blocked for the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import typing, brainstate.typing as bt\n"
        "args = typing.get_args(bt.ArrayLike)\n"
        "assert not any(getattr(a, '__name__', '') == 'Quantity' for a in args), args\n"
        "assert isinstance(1.0, bt.ArrayLike)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_size_shape_axes_seed_dtype_aliases():
    assert np.integer in typing.get_args(Size)
    assert typing.get_origin(Shape) is not None  # Sequence[int]
    assert int in typing.get_args(Axes)
    assert DType is np.dtype
    assert set(typing.get_args(SeedOrKey)) == {int, jax.Array, np.ndarray}
    assert None not in typing.get_args(DTypeLike) and type(None) not in typing.get_args(DTypeLike)


def test_supports_dtype_is_runtime_checkable():
    assert isinstance(jnp.ones(2), SupportsDType)
    assert isinstance(jax.ShapeDtypeStruct((2,), jnp.float32), SupportsDType)
    assert not isinstance(3, SupportsDType)


def test_key_protocol():
    assert isinstance("layer", Key) and isinstance(3, Key) and isinstance((1, "a"), Key)
    assert not isinstance([1], Key)  # unhashable
    assert not isinstance({}, Key)


def test_filter_and_path_aliases_resolve():
    assert typing.get_origin(PathParts) is tuple
    assert typing.get_origin(Predicate) is not None
    literal_args = typing.get_args(FilterLiteral)
    assert {str, type, bool, type(None)} <= set(literal_args)
    assert typing.get_origin(Filter) is Union


# --- PyTree ---------------------------------------------------------------------------------------


def test_pytree_subscription_is_cached_and_named():
    assert PyTree[float] is PyTree[float]
    assert PyTree[float] is not PyTree[int]
    assert PyTree[float].__name__ == "PyTree[float]"
    assert PyTree[int, "T"].__name__ == 'PyTree[int, "T"]'
    assert PyTree[int, " S T "].structure == "S T"
    assert PyTree[float].leaftype is float and PyTree[float].structure is None
    assert issubclass(PyTree[float], PyTree)


def test_pytree_usable_in_union_and_annotations():
    u = Union[PyTree[float], None]
    assert PyTree[float] in typing.get_args(u)

    def f(x: PyTree[float, "T"]) -> PyTree[float, "T"]:
        return x

    assert typing.get_type_hints(f)["x"] is PyTree[float, "T"]


def test_pytree_isinstance_checks_every_leaf():
    assert isinstance({"a": 1.0, "b": (2.0, [3.0])}, PyTree[float])
    assert not isinstance({"a": 1.0, "b": "x"}, PyTree[float])
    assert isinstance([1, (2, 3)], PyTree[int])
    assert isinstance([jnp.ones(2), np.ones(3)], PyTree[ArrayLike])
    assert isinstance([], PyTree[int])  # no leaves: vacuously true
    assert isinstance(object(), PyTree)  # every object is a PyTree
    assert isinstance([1, "a"], PyTree[typing.Any])
    assert isinstance([1, "a"], PyTree[Union[int, str]])


def test_pytree_isinstance_with_unusable_leaf_type_raises():
    with pytest.raises(TypeError, match=r"usable with isinstance"):
        isinstance([1], PyTree[list[int]])


def test_pytree_cannot_be_instantiated():
    with pytest.raises(TypeError, match="cannot be instantiated"):
        PyTree()
    with pytest.raises(TypeError, match="cannot be instantiated"):
        PyTree[int]()


@pytest.mark.parametrize(
    "item, exc, pattern",
    [
        ((int, "T", "x"), TypeError, "tuple of 3 items"),
        ((int, 3), TypeError, "must be a string"),
        ((int, "  "), ValueError, "cannot be empty"),
        ((int, "T 1x"), ValueError, r"piece '1x'"),
        ((int, "T ... S"), ValueError, r"piece '\.\.\.'"),
    ],
)
def test_pytree_bad_subscripts(item, exc, pattern):
    with pytest.raises(exc, match=pattern):
        PyTree[item]


def test_pytree_ellipsis_structures_allowed():
    assert PyTree[int, "... T"].structure == "... T"
    assert PyTree[int, "T ..."].structure == "T ..."


def test_pytree_double_subscript_refused():
    with pytest.raises(TypeError, match="already subscripted"):
        PyTree[int][float]


# --- Array ---------------------------------------------------------------------------------------


def test_array_annotation():
    assert Array["m, n"] is Array["m, n"]
    assert Array["m, n"].__name__ == "Array[m, n]"
    assert Array[float, "n"].__name__ == "Array[float, n]"
    assert Array[1:3].__name__ == "Array[1: 3]"
    assert Array[()].__name__ == "Array[()]"
    assert isinstance(jnp.ones(2), Array) and isinstance(np.ones(2), Array["n"])
    assert not isinstance([1.0], Array)
    with pytest.raises(TypeError, match="slice step"):
        Array[1:3:2]
    with pytest.raises(TypeError, match="cannot be instantiated"):
        Array()


# --- Missing -------------------------------------------------------------------------------------


def test_missing_sentinel():
    m = Missing()
    assert isinstance(m, Missing)
    assert m == Missing() and hash(m) == hash(Missing())
    assert m != None  # noqa: E711
    assert repr(m) == "Missing()"
    assert pickle.loads(pickle.dumps(m)) == m
    assert copy.deepcopy(m) == m
