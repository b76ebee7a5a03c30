"""Tests of ``checkpoint.save``/``load``: round trips, transactional restore, bad input."""

from __future__ import annotations

import os
import pickle

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import brainstate
from brainstate.checkpoint import (
    CheckpointFormatError,
    CheckpointMismatchError,
    LoadResult,
    load,
    read_checkpoint,
    save,
    write_checkpoint,
)
from brainstate.checkpoint import _api
from brainstate.checkpoint import _format as fmt


def same_bits(a, b):
    if jax.dtypes.issubdtype(getattr(a, "dtype", None), jax.dtypes.prng_key):
        return (a.dtype == b.dtype and jax.random.key_impl(a) == jax.random.key_impl(b)
                and same_bits(jax.random.key_data(a), jax.random.key_data(b)))
    a, b = np.asarray(a), np.asarray(b)
    return (a.dtype == b.dtype and a.shape == b.shape
            and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes())


def tree_same_bits(a, b):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    return ta == tb and all(type(x) is type(y) and same_bits(x, y) for x, y in zip(la, lb))


def values(model):
    return {p: s.value for p, s in brainstate.graph.states(model).items()}


# --- a small model trained with jit + grad -----------------------------------------------------


class Linear(brainstate.nn.Module):
    def __init__(self, key, n_in, n_out):
        super().__init__()
        self.w = brainstate.ParamState(jax.random.normal(key, (n_in, n_out)) * 0.5)
        self.b = brainstate.ParamState(jnp.zeros(n_out))

    def update(self, x):
        return x @ self.w.value + self.b.value


class MLP(brainstate.nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
        self.layers = [Linear(k1, 3, 8), Linear(k2, 8, 2)]
        self.tied = self.layers[1].b  # a shared state: saved once, restored once
        self.step = brainstate.LongTermState(jnp.zeros((), jnp.int32))
        self.rng = brainstate.State(k3)  # a typed PRNG key
        self.stats = brainstate.ShortTermState({"mean": jnp.zeros(2, jnp.bfloat16),
                                                "count": np.zeros((), np.int64)})
        self.scale = 2.0  # static: not a state, comes from the code

    def update(self, x):
        noise = jax.random.normal(self.rng.value, x.shape) * 0.01
        return self.layers[1](jnp.tanh(self.layers[0](x + noise))) * self.scale


def train(model, steps):
    params = model.states(brainstate.ParamState)

    @brainstate.transform.jit
    def step(x, y):
        def loss():
            return jnp.mean((model(x) - y) ** 2)

        grads = brainstate.transform.grad(loss, grad_states=params)()
        for k, g in grads.items():
            params[k].value = params[k].value - 0.1 * g
        model.step.value = model.step.value + 1
        model.rng.value = jax.random.split(model.rng.value)[0]
        model.stats.value = {"mean": jnp.mean(model(x), axis=0).astype(jnp.bfloat16),
                             "count": model.stats.value["count"]}

    x = jnp.linspace(-1, 1, 15).reshape(5, 3)
    y = jnp.ones((5, 2))
    for _ in range(steps):
        step(x, y)
    model.stats.value = {"mean": model.stats.value["mean"],
                         "count": np.asarray(steps, np.int64)}
    return x


def test_trained_model_round_trip_gives_identical_outputs(tmp_path):
    m1 = MLP(seed=0)
    x = train(m1, 4)
    p = tmp_path / "mlp.ckpt"
    save(p, m1, metadata={"step": 4, "lr": 0.1})

    m2 = MLP(seed=1)  # same code, different initial values
    assert not jnp.array_equal(m1(x), m2(x))
    result = load(p, m2)
    assert isinstance(result, LoadResult) and result.complete
    assert result.metadata == {"step": 4, "lr": 0.1}
    assert set(result.restored) == set(m2.states())
    assert np.array_equal(np.asarray(m1(x)), np.asarray(m2(x)))
    for path, v in values(m1).items():
        assert tree_same_bits(v, values(m2)[path]), path
    assert m2.tied is m2.layers[1].b
    # the restored model trains on exactly like the original
    train(m1, 2)
    train(m2, 2)
    assert np.array_equal(np.asarray(m1(x)), np.asarray(m2(x)))


def test_file_records_path_class_and_signature_once_per_shared_state(tmp_path):
    m = MLP()
    save(tmp_path / "c", m)
    meta, recs = read_checkpoint(tmp_path / "c")
    assert meta == {}
    infos = {r.key: r.info for r in recs}
    assert infos["layers/1/b"] == {"path": ["layers", 1, "b"], "class": "brainstate.ParamState"}
    assert not any(k.startswith("tied") for k in infos)  # shared: stored under its first path
    assert infos["stats/mean"] == {"path": ["stats"], "class": "brainstate.ShortTermState",
                                   "leaf": "['mean']"}
    by_key = {r.key: r.value for r in recs}
    assert by_key["stats/mean"].dtype == ml_dtypes.bfloat16
    assert by_key["rng"].dtype == m.rng.value.dtype
    assert by_key["layers/0/w"].shape == (3, 8)
    assert len(recs) == 8


# --- every dtype, every kind of leaf ----------------------------------------------------------


def _random_bits(dtype, shape, seed):
    dt = np.dtype(dtype)
    raw = np.random.default_rng(seed).integers(0, 256, int(np.prod(shape)) * dt.itemsize,
                                               dtype=np.uint8)
    if dt == np.bool_:
        raw %= 2
    return raw.view(dt).reshape(shape)


_DEVICE_DTYPES = [n for n in sorted(fmt._CODECS) if n not in (
    "int64", "uint64", "float64", "complex128")]


def _jax_ok(name):
    try:
        jax.device_put(np.zeros(2, fmt._CODECS[name].dtype)).block_until_ready()
        return True
    except Exception:  # e.g. float6 has no XLA buffer type on CPU
        return False


_SUB_BYTE = {"int1", "int2", "int4", "uint1", "uint2", "uint4", "float4_e2m1fn"}


class Holder(brainstate.nn.Module):
    def __init__(self, leaves):
        super().__init__()
        self.s = {name: brainstate.State(v) for name, v in leaves.items()}


def _leaves(seed):
    out = {}
    for name in fmt._CODECS:
        a = _random_bits(fmt._CODECS[name].dtype, (2, 3), seed)
        if name in _SUB_BYTE:  # jax keeps only the low bits of each byte: canonical values
            a = a.astype(np.float32).astype(a.dtype)
        out[f"np_{name}"] = a  # numpy leaves of every dtype, 64-bit ones included
        if name in _DEVICE_DTYPES and _jax_ok(name):
            out[f"jax_{name}"] = jax.device_put(a)
    for impl in ("threefry2x32", "rbg"):
        out[f"key_{impl}"] = jax.random.split(jax.random.key(seed, impl=impl), 4).reshape(2, 2)
    out["py_float"] = 0.1 + seed
    out["py_int"] = 3 + seed
    out["py_bool"] = bool(seed % 2)
    out["py_complex"] = complex(seed, -1.5)
    out["np_scalar"] = np.float32(seed + 0.25)
    out["empty"] = jnp.zeros((0, 3), jnp.float32)
    return out


def test_every_dtype_and_leaf_kind_round_trips_bit_exactly(tmp_path):
    src, dst = Holder(_leaves(1)), Holder(_leaves(2))
    save(tmp_path / "d", src)
    load(tmp_path / "d", dst)
    for name, s in src.s.items():
        got = dst.s[name].value
        want = s.value
        assert type(got) is type(want) or (isinstance(got, jax.Array)
                                            and isinstance(want, jax.Array)), name
        assert same_bits(got, want) if not isinstance(want, (float, int, complex, bool)) \
            else (got == want and type(got) is type(want)), name


def test_numpy_leaves_come_back_writable_and_independent_of_the_file(tmp_path):
    a = brainstate.State(np.arange(6.0).reshape(2, 3))
    b = brainstate.State(jnp.arange(4.0))
    p = tmp_path / "c"
    save(p, {"a": a, "b": b})
    a2 = brainstate.State(np.zeros((2, 3)))
    b2 = brainstate.State(jnp.zeros(4))
    load(p, {"a": a2, "b": b2})
    assert a2.value.flags.writeable and a2.value.flags.owndata
    a2.value[0, 0] = 9.0  # would fail on a read-only view of the file
    # Overwrite the file in place (not atomically): restored values must not change.
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.write(b"\0" * size)
    assert np.array_equal(np.asarray(b2.value), np.arange(4.0, dtype=np.float32))
    assert a2.value[1, 2] == 5.0


# --- sharing, hooks, signatures ----------------------------------------------------------------


def test_restore_hooks_fire_once_hooks_and_signature_are_kept(tmp_path):
    m1 = MLP(seed=3)
    train(m1, 1)
    save(tmp_path / "c", m1)
    m2 = MLP(seed=4)
    events = []
    managers = {}
    for path, s in m2.states().items():
        s.register_hook("restore", lambda ctx, p=path: events.append(("restore", p)))
        s.register_hook("write_after", lambda ctx, p=path: events.append(("write", p)))
        managers[path] = s.hooks
    sigs = {p: s._signature for p, s in m2.states().items()}
    ids = {p: id(s) for p, s in m2.states().items()}
    load(tmp_path / "c", m2)
    assert sorted(events) == sorted(("restore", p) for p in m2.states())  # tied once
    assert all(m2.states()[p].hooks is mgr for p, mgr in managers.items())
    assert {p: s._signature for p, s in m2.states().items()} == sigs
    assert {p: id(s) for p, s in m2.states().items()} == ids
    events.clear()
    m2.step.value = m2.step.value + 1  # hooks still live after the restore
    assert events == [("write", ("step",))]


def test_restore_hook_sees_new_and_old_values(tmp_path):
    src = brainstate.ParamState(jnp.ones(3))
    save(tmp_path / "c", src)
    dst = brainstate.ParamState(jnp.zeros(3))
    seen = []
    dst.register_hook("restore", lambda ctx: seen.append((np.asarray(ctx.value),
                                                          np.asarray(ctx.old_value))))
    load(tmp_path / "c", dst)
    assert len(seen) == 1
    assert seen[0][0].tolist() == [1, 1, 1] and seen[0][1].tolist() == [0, 0, 0]


def test_failing_restore_hook_rolls_back_the_states_already_restored(tmp_path):
    m1 = MLP(seed=5)
    save(tmp_path / "c", m1)
    m2 = MLP(seed=6)
    before = values(m2)
    paths = list(m2.states())
    victim = m2.states()[paths[3]]

    def boom(ctx):
        raise RuntimeError("hook failed")

    # a manager that propagates hook errors (the default policy warns and goes on)
    victim._hooks_manager = brainstate.HookManager(brainstate.HookConfig(on_error="raise"))
    victim.register_hook("restore", boom)
    with pytest.raises(brainstate.HookExecutionError, match="hook failed"):
        load(tmp_path / "c", m2)
    for p, v in values(m2).items():
        assert tree_same_bits(v, before[p]), p


# --- targets ------------------------------------------------------------------------------------


def test_state_collections_as_targets(tmp_path):
    m1, m2 = MLP(seed=7), MLP(seed=8)
    p = tmp_path / "params"
    save(p, m1.states(brainstate.ParamState), metadata={"what": "params"})
    _, recs = read_checkpoint(p)
    assert {r.info["class"] for r in recs} == {"brainstate.ParamState"}
    res = load(p, m2.states(brainstate.ParamState))
    assert res.complete and len(res.restored) == 4
    for path in m1.states(brainstate.ParamState):
        assert same_bits(m1.states()[path].value, m2.states()[path].value)
    assert not same_bits(m1.rng.value, m2.rng.value)  # not part of that checkpoint
    # loading a params-only file into the whole model: the rest is missing
    with pytest.raises(CheckpointMismatchError) as info:
        load(p, MLP(seed=9))
    assert set(info.value.missing) == {("step",), ("rng",), ("stats",)}
    # nested dicts of live states (FlattedDict.to_nest) and a single State
    m3 = MLP(seed=10)
    load(p, m3.states(brainstate.ParamState).to_nest())
    assert same_bits(m3.layers[0].w.value, m1.layers[0].w.value)
    save(tmp_path / "one", m1.step)
    s = brainstate.LongTermState(jnp.full((), 7, jnp.int32))
    assert load(tmp_path / "one", s).restored == ((),)
    assert int(s.value) == int(m1.step.value)


def test_refs_are_not_a_target(tmp_path):
    m = MLP()
    with pytest.raises(TypeError, match="state_trees"):
        save(tmp_path / "c", m.state_trees())
    save(tmp_path / "c", m)
    with pytest.raises(TypeError, match="live states"):
        load(tmp_path / "c", m.state_trees())


def test_abstract_model_from_eval_shape_is_a_target(tmp_path):
    m1 = MLP(seed=11)
    train(m1, 1)
    save(tmp_path / "c", m1)
    abstract = brainstate.transform.eval_shape(lambda: MLP(seed=0))
    assert isinstance(abstract.layers[0].w.value, jax.ShapeDtypeStruct)
    load(tmp_path / "c", abstract)
    for path, v in values(m1).items():
        assert tree_same_bits(values(abstract)[path], v), path
    x = jnp.ones((2, 3))
    assert np.array_equal(np.asarray(abstract(x)), np.asarray(m1(x)))


def test_empty_values_and_models_without_states(tmp_path):
    class E(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            self.nothing = brainstate.State({})
            self.w = brainstate.ParamState(jnp.ones(2))

    save(tmp_path / "e", E())
    assert load(tmp_path / "e", E()).restored == (("w",),)
    save(tmp_path / "none", brainstate.nn.Module())
    assert load(tmp_path / "none", brainstate.nn.Module()).complete


# --- mismatches: strict and not -------------------------------------------------------------


class Other(brainstate.nn.Module):
    """MLP's layout with one state missing, one extra, and four that differ."""

    def __init__(self):
        super().__init__()
        k1, k2 = jax.random.split(jax.random.key(0))
        self.layers = [Linear(k1, 3, 8), Linear(k2, 8, 3)]  # layers.1.{w,b} change shape
        self.step = brainstate.LongTermState(jnp.zeros((), jnp.float32))  # dtype
        self.rng = brainstate.ShortTermState(k2)  # class
        self.stats = brainstate.ShortTermState({"mean": jnp.zeros(2, jnp.bfloat16)})  # leaves
        self.extra = brainstate.ParamState(jnp.zeros(1))


def test_strict_load_reports_every_problem_at_once_and_changes_nothing(tmp_path):
    p = tmp_path / "mlp.ckpt"
    save(p, MLP())
    target = Other()
    before = values(target)
    fired = []
    for s in target.states().values():
        s.register_hook("restore", lambda ctx: fired.append(1))
    with pytest.raises(CheckpointMismatchError) as info:
        load(p, target)
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, brainstate.BrainStateError)
    assert err.path == str(p)
    assert err.missing == (("extra",),)
    assert err.unexpected == ()
    assert set(err.mismatched) == {("layers", 1, "w"), ("layers", 1, "b"), ("step",),
                                   ("rng",), ("stats",)}
    msg = str(err)
    assert str(p) in msg and "nothing was restored" in msg and "strict=False" in msg
    for needle in ("extra", "layers.1.w: shape=(8, 2) dtype=float32 in the file, "
                   "shape=(8, 3) dtype=float32 in the target",
                   "step: shape=() dtype=int32 in the file, shape=() dtype=float32",
                   "rng: state class brainstate.State in the file, brainstate.ShortTermState",
                   "stats: value leaves [['count'], ['mean']] in the file, [['mean']]"):
        assert needle in msg, needle
    assert not fired
    for path, v in values(target).items():
        assert tree_same_bits(v, before[path]), path
    assert pickle.loads(pickle.dumps(err)).mismatched == err.mismatched


def test_unexpected_paths_and_long_lists(tmp_path):
    class Wide(brainstate.nn.Module):
        def __init__(self, n, prefix):
            super().__init__()
            for i in range(n):
                setattr(self, f"{prefix}{i:02d}", brainstate.State(jnp.zeros(1)))

    save(tmp_path / "w", Wide(30, "a"))
    with pytest.raises(CheckpointMismatchError) as info:
        load(tmp_path / "w", Wide(25, "b"))
    err = info.value
    assert len(err.unexpected) == 30 and len(err.missing) == 25
    msg = str(err)
    assert "30 unexpected" in msg and "25 missing" in msg
    assert "... and 10 more (all in the error's attribute unexpected)" in msg
    assert "... and 5 more (all in the error's attribute missing)" in msg


def test_non_strict_load_restores_the_matching_subset(tmp_path):
    src = MLP(seed=12)
    train(src, 2)
    p = tmp_path / "mlp.ckpt"
    save(p, src)
    target = Other()
    before = values(target)
    result = load(p, target, strict=False)
    assert not result.complete
    assert result.missing == (("extra",),)
    assert result.unexpected == ()
    assert set(result.mismatched) == {("layers", 1, "w"), ("layers", 1, "b"), ("step",),
                                      ("rng",), ("stats",)}
    assert set(result.restored) == {("layers", 0, "w"), ("layers", 0, "b")}
    assert same_bits(target.layers[0].w.value, src.layers[0].w.value)
    for path in result.mismatched:
        assert tree_same_bits(values(target)[path], before[path])
    assert "missing=[('extra',)]" in repr(result)
    # a model with fewer states: the rest of the file is unexpected
    class Small(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            self.step = brainstate.LongTermState(jnp.zeros((), jnp.int32))

    small = Small()
    r = load(p, small, strict=False)
    assert r.restored == (("step",),) and len(r.unexpected) == 6
    assert int(small.step.value) == 2


def test_signature_rebind_is_explicit(tmp_path):
    save(tmp_path / "c", brainstate.ParamState(jnp.ones(4)))
    s = brainstate.ParamState(jnp.zeros(2))
    with pytest.raises(CheckpointMismatchError, match="shape=.4,. dtype=float32 in the file"):
        load(tmp_path / "c", s)
    with brainstate.check_state_value_tree(False):
        load(tmp_path / "c", s)
    assert s.value.shape == (4,)
    s.value = jnp.full(4, 2.0)  # the signature was re-bound to the restored value


# --- bad input ----------------------------------------------------------------------------------


@pytest.fixture
def good(tmp_path):
    m = MLP(seed=13)
    train(m, 1)
    p = tmp_path / "good.ckpt"
    save(p, m)
    return p


def _check_unchanged(p, exc_type, match, **load_kw):
    target = MLP(seed=14)
    before = values(target)
    with pytest.raises(exc_type, match=match) as info:
        load(p, target, **load_kw)
    assert str(p) in str(info.value)
    for path, v in values(target).items():
        assert tree_same_bits(v, before[path]), path
    return info.value


@pytest.mark.parametrize("keep", [0, 5, 100, -1000, -1])
def test_truncated_file(good, keep):
    data = good.read_bytes()
    good.write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])
    _check_unchanged(good, CheckpointFormatError, "truncated|not a brainstate checkpoint")


@pytest.mark.parametrize("verify", [False, True])
@pytest.mark.parametrize("pos", [56, 100, 2000])
def test_corrupted_header_is_always_detected(good, pos, verify):
    data = bytearray(good.read_bytes())
    assert pos < 8 + int.from_bytes(data[:8], "little")
    data[pos] ^= 0x10
    good.write_bytes(bytes(data))
    _check_unchanged(good, CheckpointFormatError, "corrupted.*CRC-32", verify=verify)


@pytest.mark.parametrize("back", [1, 17, 100])
def test_corrupted_data_is_detected_by_default(good, back):
    data = bytearray(good.read_bytes())
    assert len(data) - back >= 8 + int.from_bytes(data[:8], "little")  # in the data section
    data[-back] ^= 0x10
    good.write_bytes(bytes(data))
    # verify is the default
    err = _check_unchanged(good, CheckpointFormatError, "corrupted.*data of .* CRC-32")
    assert "restore it from a backup" in str(err)
    # verify=False checks only the header, layout and size (the documented opt-out)
    load(good, MLP(seed=14), verify=False)


def test_corrupted_data_wins_over_a_mismatch(good):
    data = bytearray(good.read_bytes())
    data[-1] ^= 1
    good.write_bytes(bytes(data))
    with pytest.raises(CheckpointFormatError, match="CRC-32"):
        load(good, Other(), verify=True)


@pytest.mark.parametrize("content", [b"", b"hello world, not a checkpoint" * 3,
                                     b"\x93NUMPY" + b"\0" * 100])
def test_files_that_are_not_checkpoints(tmp_path, content):
    p = tmp_path / "x.bin"
    p.write_bytes(content)
    _check_unchanged(p, CheckpointFormatError, "not a brainstate checkpoint")


def test_npz_file_is_not_a_checkpoint(tmp_path):
    p = tmp_path / "x.npz"
    np.savez(p, a=np.ones(3))
    err = _check_unchanged(p, CheckpointFormatError, "not a brainstate checkpoint")
    assert "numpy.load" in str(err)


def test_array_file_without_state_paths(tmp_path):
    p = tmp_path / "arrays.ckpt"
    write_checkpoint(p, [("w", np.ones(3, np.float32), {"class": "ParamState"})])
    _check_unchanged(p, CheckpointFormatError, "not one of states.*write_checkpoint")


def test_missing_file_and_unwritable_paths(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.ckpt", MLP())
    m = MLP()
    for bad, exc, hint in [(tmp_path / "no" / "dir" / "c", FileNotFoundError, "create the folder"),
                           (tmp_path, IsADirectoryError, "give a file name")]:
        with pytest.raises(exc, match=hint) as info:
            save(bad, m)
        assert str(bad) in str(info.value)
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        save(tmp_path / "file" / "c", m)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_a_directory_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "d").mkdir()
    _check_unchanged(tmp_path / "d", CheckpointFormatError, "no brainstate.json")


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt, OSError])
def test_save_failing_halfway_keeps_the_old_checkpoint(exc_type, tmp_path, monkeypatch):
    old_model = MLP(seed=15)
    p = tmp_path / "c.ckpt"
    save(p, old_model, metadata={"v": 1})
    old_bytes = p.read_bytes()
    new_model = MLP(seed=16)
    train(new_model, 1)
    calls = []
    real = fmt._write_blob

    def failing(f, blob):
        calls.append(f.tell())
        if len(calls) == 3:
            raise exc_type(28, "No space left on device") if exc_type is OSError else exc_type()
        real(f, blob)

    monkeypatch.setattr(fmt, "_write_blob", failing)
    with pytest.raises(exc_type) as info:
        save(p, new_model, metadata={"v": 2})
    assert len(calls) == 3 and calls[-1] > 8  # data had been written to the temporary file
    if exc_type is OSError:
        assert str(p) in str(info.value)
    monkeypatch.undo()
    assert p.read_bytes() == old_bytes
    assert sorted(os.listdir(tmp_path)) == ["c.ckpt"]
    fresh = MLP(seed=17)
    assert load(p, fresh).metadata == {"v": 1}
    for path, v in values(old_model).items():
        assert tree_same_bits(values(fresh)[path], v)


def test_bad_values_and_metadata_fail_before_touching_disk(tmp_path):
    m = MLP()
    with pytest.raises(TypeError, match="metadata must be a dict"):
        save(tmp_path / "c", m, metadata=[1])
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        save(tmp_path / "c", m, metadata={"f": object()})
    with pytest.raises(ValueError, match="backend"):
        save(tmp_path / "c", m, backend="zip")

    class Odd(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            self.s = brainstate.State({"name": "text", "x": jnp.ones(1)})

    with pytest.raises(TypeError, match=r"at path s: its leaf \['name'\] is a str"):
        save(tmp_path / "c", Odd())
    with pytest.raises(TypeError, match="path part .* is a tuple"):
        save(tmp_path / "c", {"x": {(1, 2): brainstate.State(jnp.ones(1))}})
    with pytest.raises(TypeError, match="path part .* is a float"):
        save(tmp_path / "c", {1.5: brainstate.State(jnp.ones(1))})
    s = brainstate.State(jnp.ones(2))

    @brainstate.transform.jit
    def inside():
        s.value = s.value + 1
        save(tmp_path / "c", s)

    with pytest.raises(TypeError, match="traced value"):
        inside()
    assert os.listdir(tmp_path) == []


def test_error_classes_and_names():
    assert CheckpointMismatchError.__module__ == "brainstate.checkpoint"
    assert LoadResult.__module__ == "brainstate.checkpoint"
    assert save.__module__ == load.__module__ == "brainstate.checkpoint"
    assert issubclass(CheckpointMismatchError, ValueError)


def test_record_keys_are_unique_and_readable():
    used = set()
    assert _api._record_key(("layers", 0, "w"), (), used) == "layers/0/w"
    assert _api._record_key(("layers", "0", "w"), (), used) == "layers/0/w#2"
    assert _api._record_key((), (), used) == "<root>"
    assert _api._record_key(("__metadata__",), (), used) == "__metadata__#2"


# --- hypothesis: module trees with shared states ---------------------------------------------

_DTYPES = ["float32", "bfloat16", "int32", "uint8", "bool", "float16", "complex64"]


@st.composite
def model_specs(draw):
    """A tree of modules: each node holds states (fresh or shared) and child modules."""
    n_states = draw(st.integers(1, 12))
    specs = [(draw(st.sampled_from(_DTYPES)),
              tuple(draw(st.lists(st.integers(0, 3), max_size=3))),
              draw(st.sampled_from(["ParamState", "ShortTermState", "State"])),
              draw(st.booleans()))  # pytree value (dict of two leaves) or one array
             for _ in range(n_states)]

    def node(depth):
        slots = draw(st.lists(st.integers(0, n_states - 1), max_size=4))
        kids = [] if depth >= 3 else draw(st.lists(st.integers(0, 1), max_size=3))
        return slots, [node(depth + 1) for _ in kids], draw(st.booleans())

    return specs, node(0), draw(st.booleans())


class Tree(brainstate.nn.Module):
    pass


def _build(spec, seed):
    states_spec, root, share_child = spec
    rng = np.random.default_rng(seed)
    pool = []
    for dtype, shape, cls, as_tree in states_spec:
        def arr():
            return jax.device_put(_random_bits(np.dtype(getattr(ml_dtypes, dtype, dtype)),
                                               shape, int(rng.integers(1 << 30))))
        value = {"a": arr(), "b": [arr()]} if as_tree else arr()
        pool.append(getattr(brainstate, cls)(value))
    made = []

    def make(node):
        slots, kids, in_list = node
        m = Tree()
        for i, idx in enumerate(slots):
            setattr(m, f"s{i}", pool[idx])
        children = [make(k) for k in kids]
        if in_list:
            m.kids = children
        else:
            for i, c in enumerate(children):
                setattr(m, f"c{i}", c)
        made.append(m)
        return m

    model = make(root)
    if share_child and len(made) > 1:
        model.alias = made[0]  # a shared sub-module: its states appear under two paths
    return model


def _sharing(model):
    """Which paths hold the same state object (identity structure of the graph)."""
    found = {}

    def walk(x, path):
        if isinstance(x, brainstate.State):
            found.setdefault(id(x), []).append(path)
        elif isinstance(x, Tree):
            for k in sorted(vars(x)):
                walk(getattr(x, k), (*path, k))
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, (*path, i))

    walk(model, ())
    return sorted(sorted(v) for v in found.values())


@settings(deadline=None, max_examples=40,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=model_specs())
def test_generated_module_trees_with_shared_states_round_trip(spec, tmp_path_factory):
    src, dst = _build(spec, 1), _build(spec, 2)
    p = tmp_path_factory.mktemp("h") / "c"
    save(p, src)
    n_records = len(read_checkpoint(p)[1])
    n_leaves = sum(len(jax.tree_util.tree_leaves(s.value)) for s in src.states().values())
    assert n_records == n_leaves  # each shared state stored once
    result = load(p, dst)
    assert result.complete and len(result.restored) == len(src.states())
    want, got = values(src), values(dst)
    assert want.keys() == got.keys()
    for path in want:
        assert tree_same_bits(got[path], want[path]), path
    assert _sharing(dst) == _sharing(src)


class TestFastPlacement:
    """The load path's placement bypasses jax.device_put's Python dispatch (internal API)."""

    @pytest.mark.parametrize("dtype", [np.float32, np.int8, np.bool_, np.complex64,
                                       ml_dtypes.bfloat16, np.uint16])
    def test_same_as_jax_device_put(self, dtype):
        x = (np.arange(12) % 3).astype(dtype).reshape(3, 4)
        got = _api._device_put([x], [None])[0]
        want = jax.device_put(x)
        assert type(got) is type(want)
        assert (got.sharding, got.committed, got.dtype, got.shape) == \
            (want.sharding, want.committed, want.dtype, want.shape)
        np.testing.assert_array_equal(np.asarray(got), x)

    def test_fast_path_is_active_and_adopts_aligned_buffers(self):
        raw = np.empty(4 * 100 + 64, np.uint8)
        off = -raw.ctypes.data % 64
        x = raw[off:off + 400].view(np.float32)
        x[:] = 2.0
        assert _api._FAST_PUT.try_put(x) is not None  # probed and enabled on this JAX
        got = _api._device_put([x], [None])[0]
        assert got.unsafe_buffer_pointer() == x.ctypes.data  # no copy

    def test_non_canonical_dtype_goes_through_jax(self):
        if jax.config.jax_enable_x64:
            pytest.skip("float64 is canonical with x64 on")
        x = np.ones(3, np.float64)
        assert _api._FAST_PUT.try_put(x) is None
        assert _api._device_put([x], [None])[0].dtype == jnp.float32

    def test_a_missing_internal_falls_back(self, monkeypatch):
        fp = _api._FastPut()

        def moved(*a, **k):
            raise AttributeError("an internal moved")

        monkeypatch.setattr(jax, "local_devices", moved)
        assert fp.try_put(np.ones(3, np.float32)) is None
        assert fp.put is False
