"""Types: ``brainstate.typing`` (aliases, protocols, ``PyTree``, ``Array``, ``Missing``), the
generic state classes at run time, and what mypy infers for a user's file (states, ``jit``)."""

from __future__ import annotations

import copy
import os
import pathlib
import pickle
import re
import subprocess
import sys
import typing
from typing import Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
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


# --- generic states at run time -------------------------------------------------------------------


def test_state_classes_are_subscriptable_for_annotations():
    assert typing.get_origin(brainstate.State[jax.Array]) is brainstate.State
    assert typing.get_args(brainstate.State[jax.Array]) == (jax.Array,)
    for cls in (brainstate.ShortTermState, brainstate.LongTermState, brainstate.ParamState,
                brainstate.BatchState, brainstate.DelayState, brainstate.HiddenState,
                brainstate.HiddenGroupState, brainstate.FakeState, brainstate.StateMetadata,
                brainstate.TreefyState):
        assert typing.get_args(cls[int]) == (int,), cls

    def f(st: brainstate.State[int]) -> brainstate.ParamState[jax.Array]:
        raise AssertionError

    assert typing.get_type_hints(f)["st"] == brainstate.State[int]


def test_hidden_tree_state_is_not_generic():
    # its value is always the stacked array, whatever it was built from
    with pytest.raises(TypeError, match="not a generic class"):
        brainstate.HiddenTreeState[int]


def test_state_built_through_an_alias_is_a_plain_state():
    st = brainstate.ParamState[jax.Array](jnp.ones(2), name="w", unit="mV")
    assert type(st) is brainstate.ParamState
    assert isinstance(st, brainstate.State)
    # the alias is not recorded on the instance: it would become metadata of refs/checkpoints
    assert "__orig_class__" not in vars(st)
    assert not hasattr(st, "__orig_class__")
    assert st.to_state_ref().get_metadata().keys() == brainstate.ParamState(
        jnp.ones(2), name="w", unit="mV").to_state_ref().get_metadata().keys()
    back = pickle.loads(pickle.dumps(st))
    assert type(back) is brainstate.ParamState and back.unit == "mV"
    np.testing.assert_allclose(copy.deepcopy(st).value, np.ones(2))


def test_treefy_state_through_an_alias_has_no_extra_metadata():
    ref = brainstate.TreefyState[jax.Array](brainstate.ParamState, jnp.ones(2), _name="w")
    assert type(ref) is brainstate.TreefyState
    assert ref.get_metadata() == {"_name": "w"}
    plain = brainstate.TreefyState(brainstate.ParamState, jnp.ones(2), _name="w")
    assert jax.tree.structure(ref) == jax.tree.structure(plain)


def test_generic_subclass_with_a_layout_conflict_is_hosted():
    from brainstate._hosted import is_hosted

    T = typing.TypeVar("T")

    class Slotted:
        __slots__ = ("_value",)

    class Var(brainstate.ParamState[T], Slotted):
        pass

    st = Var[jax.Array](jnp.zeros(2))
    assert is_hosted(type(st)) and isinstance(st, brainstate.ParamState)
    assert "__orig_class__" not in vars(st)
    st.value = jnp.ones(2)
    np.testing.assert_allclose(st.value, np.ones(2))
    with pytest.raises(brainstate.StateSignatureError, match="Cannot write"):
        st.value = jnp.ones(3)


# --- static types: a user's file checked with mypy -----------------------------------------------

# Each ``reveal_type`` line names the type mypy must show; ``{A}`` is ``jax.Array`` (printed by
# its defining module's name, which depends on the JAX version).
_USER_FILE = '''\
import jax
import jax.numpy as jnp
import brainstate
from brainstate.transform import jit

s = brainstate.State(jnp.zeros(3))
reveal_type(s)  # brainstate._state.State[{A}]
reveal_type(s.value)  # {A}
p = brainstate.ParamState(jnp.ones(3))
reveal_type(p)  # brainstate._state.ParamState[{A}]
reveal_type(p.value)  # {A}
reveal_type(p.copy())  # brainstate._state.ParamState[{A}]
n = brainstate.State(3)
reveal_type(n)  # brainstate._state.State[int]
reveal_type(brainstate.HiddenState(jnp.zeros(2)).value)  # {A}
reveal_type(brainstate.State(p))  # brainstate._state.State[{A}]
md = brainstate.StateMetadata(1.5, {"unit": "mV"})
reveal_type(brainstate.State(md))  # brainstate._state.State[float]
annotated: brainstate.State[jax.Array] = s


def g(x: jax.Array, k: int) -> jax.Array:
    return x * k


f = jit(g)
reveal_type(f)  # brainstate.transform._jit.JittedFunction[[x: {A}, k: int], {A}]
reveal_type(f(jnp.ones(3), 2))  # {A}


@jit
def bare(x: jax.Array) -> tuple[jax.Array, int]:
    return x, 1


reveal_type(bare(jnp.ones(3)))  # tuple[{A}, int]


@jit(static_argnums=1)
def h(x: jax.Array, k: int) -> float:
    return 1.0


reveal_type(h(jnp.ones(3), 2))  # float


class Net(brainstate.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = brainstate.ParamState(jnp.ones(3))

    @jit
    def step(self, x: jax.Array) -> jax.Array:
        return self.w.value * x


net = Net()
reveal_type(net.w.value)  # {A}
reveal_type(net.step)  # def (x: {A}) -> {A}
n.value = "x"  # error: [assignment]
f(jnp.ones(3), "2")  # error: [arg-type]
h(jnp.ones(3))  # error: [call-arg]
net.step("x")  # error: [arg-type]
'''

_ARRAY = r"jax(?:\.\w+)*\.Array"
_MYPY_LINE = re.compile(r"^[^:]+:(\d+): (note|error): (.*)$")


def _need_mypy():
    try:
        import mypy.api  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name not in ("mypy", "mypy.api"):
            raise
        reason = 'mypy is not installed: pip install -e ".[typecheck]"'
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _mypy_env() -> dict:
    """The environment for mypy, so that it checks this copy of brainstate.

    setuptools' default editable install is an import hook, which type checkers cannot
    follow: the package's root directory goes on MYPYPATH. An installed wheel (the root is
    site-packages, which mypy refuses on MYPYPATH) is found by mypy itself.
    """
    root = pathlib.Path(brainstate.__file__).resolve().parent.parent
    env = dict(os.environ)
    env.pop("MYPYPATH", None)
    if root.name not in ("site-packages", "dist-packages"):
        env["MYPYPATH"] = str(root)
    return env


def test_mypy_sees_state_and_jit_types(tmp_path):
    _need_mypy()
    user = tmp_path / "user_model.py"
    user.write_text(_USER_FILE)
    config = tmp_path / "mypy.ini"  # ignore any configuration of the machine or the checkout
    config.write_text("[mypy]\nfollow_imports = silent\n")
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--cache-dir",
         str(tmp_path / "cache"), "--show-error-codes", "--no-error-summary",
         "--no-color-output", "--no-pretty", str(user)],
        capture_output=True, text=True, cwd=tmp_path, env=_mypy_env(), timeout=600)
    assert out.returncode in (0, 1), out.stderr + out.stdout
    seen: dict[int, list[tuple[str, str]]] = {}
    for line in out.stdout.splitlines():
        m = _MYPY_LINE.match(line)
        assert m is not None, f"unexpected mypy output: {line!r}\n{out.stdout}"
        seen.setdefault(int(m[1]), []).append((m[2], m[3]))

    expected_lines = set()
    for lineno, text in enumerate(user.read_text().splitlines(), start=1):
        if "reveal_type(" in text:
            expected = re.escape(text.split("  # ", 1)[1]).replace(re.escape("{A}"), _ARRAY)
            got = seen.get(lineno, [])
            assert len(got) == 1 and got[0][0] == "note", (lineno, text, got, out.stdout)
            # (older mypy versions print builtins with their module: ``builtins.int``)
            revealed = got[0][1].removeprefix("Revealed type is ").replace("builtins.", "")
            assert re.fullmatch(f'"{expected}"', revealed), (text, revealed)
            expected_lines.add(lineno)
        elif "# error: " in text:
            code = text.split("# error: ", 1)[1]
            got = seen.get(lineno, [])
            assert any(kind == "error" and msg.endswith(code) for kind, msg in got), \
                (lineno, text, got, out.stdout)
            expected_lines.add(lineno)
    # nothing else: in particular no import error (mypy found the package) and no error on the
    # correct lines
    assert set(seen) == expected_lines, out.stdout
