"""Checkpoints of states sharded over a device mesh (native file and Orbax), and the Orbax backend.

Multi-device runs use 8 simulated CPU devices in a subprocess (``XLA_FLAGS`` must be set before
jax starts, and jax is already imported here). Orbax tests skip when ``orbax-checkpoint`` (the
``brainstate[orbax]`` extra) is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.checkpoint import CheckpointFormatError, CheckpointMismatchError, load, save

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MESH_SCRIPT = textwrap.dedent(r"""
    import os, sys, tempfile
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    import brainstate
    from brainstate.checkpoint import save, load

    backend = sys.argv[1]
    assert len(jax.devices()) == 8, jax.devices()
    mesh = jax.sharding.Mesh(np.array(jax.devices()).reshape(2, 4), ("x", "y"))

    def put(a, spec):
        return jax.device_put(a, NamedSharding(mesh, spec))

    class Net(brainstate.nn.Module):
        def __init__(self, seed, w_spec, b_spec, h_spec, k_spec):
            super().__init__()
            k1, k2 = jax.random.split(jax.random.key(seed))
            self.w = brainstate.ParamState(put(jax.random.normal(k1, (8, 16)), w_spec))
            self.b = brainstate.ParamState(put(jnp.zeros(16), b_spec))
            self.h = brainstate.ShortTermState(put(jnp.full((4, 16), seed, jnp.bfloat16), h_spec))
            self.keys = brainstate.State(put(jax.random.split(k2, 8), k_spec))
            self.step = brainstate.LongTermState(jnp.zeros((), jnp.int32))  # uncommitted

        def update(self, x):
            return jnp.tanh(x @ self.w.value + self.b.value)

    src = Net(0, P("x", "y"), P("y"), P(None, "y"), P("x"))
    params = src.states(brainstate.ParamState)

    @brainstate.transform.jit
    def train(x):
        grads = brainstate.transform.grad(lambda: jnp.mean(src(x) ** 2), grad_states=params)()
        for k, g in grads.items():
            params[k].value = params[k].value - 0.5 * g
        src.h.value = (src.h.value + src(x)[:4].astype(jnp.bfloat16))
        src.keys.value = jax.vmap(lambda k: jax.random.split(k)[0])(src.keys.value)
        src.step.value = src.step.value + 1

    x = put(jnp.linspace(-1, 1, 64).reshape(8, 8), P("x"))
    train(x)
    assert len(src.w.value.sharding.device_set) == 8
    path = os.path.join(tempfile.mkdtemp(), "net.ckpt")
    save(path, src, metadata={"step": 1}, backend=backend)

    # A fresh model whose states are laid out differently: values come back on ITS shardings.
    dst = Net(1, P("y", "x"), P(("x", "y")), P("x", None), P(None))
    want_shardings = {p: s.value.sharding for p, s in dst.states().items()}
    assert load(path, dst).metadata == {"step": 1}
    for p, s in dst.states().items():
        got, want = s.value, src.states()[p].value
        assert got.sharding == want_shardings[p], (p, got.sharding, want_shardings[p])
        if jax.dtypes.issubdtype(got.dtype, jax.dtypes.prng_key):
            got, want = jax.random.key_data(got), jax.random.key_data(want)
        assert got.dtype == want.dtype and np.array_equal(np.asarray(got), np.asarray(want)), p
    assert not dst.step.value.committed
    # The restored values above are bit-exact; the two models' outputs are computed under
    # different shardings, so their reductions run in another order: equal up to rounding.
    np.testing.assert_allclose(np.asarray(dst(x)), np.asarray(src(x)), rtol=1e-5, atol=1e-6)
    # the same layout as the source restores onto the source's shardings
    same = Net(2, P("x", "y"), P("y"), P(None, "y"), P("x"))
    load(path, same)
    assert same.w.value.sharding == src.w.value.sharding
    print("OK", backend, sorted(str(s.value.sharding.spec) for s in dst.states(
        brainstate.ParamState).values()))
""")


def _run_mesh(backend):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", MESH_SCRIPT, backend], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"OK {backend}" in proc.stdout


def test_native_file_restores_onto_the_target_shardings_of_a_2x4_mesh():
    _run_mesh("native")


def test_orbax_restores_onto_the_target_shardings_of_a_2x4_mesh():
    pytest.importorskip("orbax.checkpoint", reason="needs the brainstate[orbax] extra")
    _run_mesh("orbax")


# --- the Orbax backend on one device ----------------------------------------------------------


@pytest.fixture
def ocp():
    return pytest.importorskip("orbax.checkpoint", reason="needs the brainstate[orbax] extra")


class Model(brainstate.nn.Module):
    def __init__(self, seed, n=3):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.w = brainstate.ParamState(jnp.asarray(rng.standard_normal((n, 4)), jnp.float32))
        self.tied = self.w
        self.h = brainstate.ShortTermState({"a": jnp.asarray(rng.standard_normal(4),
                                                              jnp.bfloat16),
                                            "n": np.arange(3, dtype=np.int64) + seed})
        self.key = brainstate.State(jax.random.key(seed, impl="rbg"))
        self.c = brainstate.State(jnp.asarray([1 + 2j * seed], jnp.complex64))
        self.x = brainstate.State(float(seed))


def _values(m):
    out = {}
    for p, s in m.states().items():
        for i, leaf in enumerate(jax.tree_util.tree_leaves(s.value)):
            if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
                leaf = jax.random.key_data(leaf)
            out[p, i] = (type(leaf), np.asarray(leaf).dtype, np.asarray(leaf).tobytes())
    return out


def test_orbax_round_trip_of_every_kind_of_leaf(ocp, tmp_path):
    src, dst = Model(1), Model(2)
    save(tmp_path / "ck", src, metadata={"epoch": 3}, backend="orbax")
    assert (tmp_path / "ck").is_dir() and (tmp_path / "ck" / "brainstate.json").is_file()
    result = load(tmp_path / "ck", dst)
    assert result.complete and result.metadata == {"epoch": 3}
    assert _values(dst) == _values(src)
    assert dst.tied is dst.w
    assert jax.random.key_impl(dst.key.value) == jax.random.key_impl(src.key.value)


def test_orbax_strict_and_non_strict(ocp, tmp_path):
    save(tmp_path / "ck", Model(1), backend="orbax")
    other = Model(2, n=5)
    before = _values(other)
    # w is shared with tied, which sorts first: the state is known by its first path
    with pytest.raises(CheckpointMismatchError, match=r"tied: shape=\(3, 4\)") as info:
        load(tmp_path / "ck", other)
    assert list(info.value.mismatched) == [("tied",)]
    assert _values(other) == before
    result = load(tmp_path / "ck", other, strict=False)
    assert result.mismatched.keys() == {("tied",)} and len(result.restored) == 4
    assert _values(other)[("tied",), 0] == before[("tied",), 0]


def test_orbax_save_replaces_atomically_and_failures_keep_the_old_one(ocp, tmp_path,
                                                                       monkeypatch):
    p = tmp_path / "ck"
    save(p, Model(1), metadata={"v": 1}, backend="orbax")
    save(p, Model(2), metadata={"v": 2}, backend="orbax")  # replaces the directory
    assert sorted(os.listdir(tmp_path)) == ["ck"]
    real = ocp.Checkpointer.save

    def failing(self, *args, **kwargs):
        real(self, *args, **kwargs)  # the arrays are on disk, then the save dies
        raise KeyboardInterrupt

    monkeypatch.setattr(ocp.Checkpointer, "save", failing)
    with pytest.raises(KeyboardInterrupt):
        save(p, Model(3), metadata={"v": 3}, backend="orbax")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["ck"]
    m = Model(4)
    assert load(p, m).metadata == {"v": 2}
    assert _values(m) == _values(Model(2))
    # a native file at the path is replaced by a directory as well
    save(tmp_path / "f", Model(1))
    save(tmp_path / "f", Model(5), backend="orbax")
    assert (tmp_path / "f").is_dir()


def test_orbax_bad_directories(ocp, tmp_path):
    p = tmp_path / "ck"
    save(p, Model(1), backend="orbax")
    doc = (p / "brainstate.json").read_text()
    assert "[3,4]" in doc
    (p / "brainstate.json").write_text(doc.replace("[3,4]", "[3,5]"))
    target = Model(2)
    before = _values(target)
    with pytest.raises(CheckpointFormatError, match="corrupted.*CRC-32") as info:
        load(p, target)
    assert str(p) in str(info.value)
    (p / "brainstate.json").write_text("{not json")
    with pytest.raises(CheckpointFormatError, match="not the expected JSON"):
        load(p, target)
    assert _values(target) == before
    with pytest.raises(FileNotFoundError, match="create the folder"):
        save(tmp_path / "no" / "ck", Model(1), backend="orbax")


def test_orbax_empty_model(ocp, tmp_path):
    save(tmp_path / "e", brainstate.nn.Module(), backend="orbax")
    assert load(tmp_path / "e", brainstate.nn.Module()).complete


def test_orbax_missing_gives_an_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "orbax.checkpoint", None)
    monkeypatch.setitem(sys.modules, "orbax", None)
    with pytest.raises(ImportError, match=r"brainstate\[orbax\]"):
        save(tmp_path / "ck", Model(1), backend="orbax")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "brainstate.json").write_text("{}")
    with pytest.raises(ImportError, match=r"brainstate\[orbax\]"):
        load(tmp_path / "d", Model(1))
