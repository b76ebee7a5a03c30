"""Tests of the checkpoint file layer: bit-exact round trips, atomic saves, bad files."""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import zlib

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from brainstate._error import BrainStateError
from brainstate.checkpoint import _format as fmt
from brainstate.checkpoint._format import (
    FORMAT_VERSION,
    CheckpointFormatError,
    CheckpointRecord,
    read_checkpoint,
    write_checkpoint,
)

ALL_DTYPES = sorted(fmt._CODECS)


def _device_ok(name):
    try:
        jax.device_put(np.zeros(2, fmt._CODECS[name].dtype)).block_until_ready()
        return True
    except Exception:  # e.g. float6 has no XLA buffer type on CPU
        return False


SUB_BYTE = {"int1", "int2", "int4", "uint1", "uint2", "uint4", "float4_e2m1fn"}
JAX_DTYPES = [n for n in ALL_DTYPES if _device_ok(n)]
HYP = settings(deadline=None, max_examples=25,
               suppress_health_check=[HealthCheck.function_scoped_fixture])


def random_array(name, shape, seed):
    """An array of ``name`` whose bytes are random (NaN payloads, subnormals, all bit patterns)."""
    dt = fmt._CODECS[name].dtype
    raw = np.random.default_rng(seed).integers(0, 256, math.prod(shape) * dt.itemsize,
                                                dtype=np.uint8)
    if name == "bool":
        raw %= 2
    return raw.view(dt).reshape(shape)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return (a.dtype == b.dtype and a.shape == b.shape
            and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes())


def listing(folder):
    return sorted(os.listdir(folder))


# --- round trips ------------------------------------------------------------------------------


def test_jax_dtype_list_is_complete():
    # Every dtype jax.numpy exposes by name must be encodable (float6 only in numpy on CPU).
    expected = {"bool", "bfloat16", "float16", "float32", "float64", "complex64", "complex128",
                "int4", "uint4", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
                "uint64", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
                "float8_e4m3b11fnuz"}
    for name in dir(jnp):
        if re.fullmatch(r"u?int\d+|float\d+(_\w+)?|bfloat16|complex\d+", name):
            expected.add(np.dtype(getattr(jnp, name)).name)
    assert expected - set(ALL_DTYPES) == set()


@pytest.mark.parametrize("name", ALL_DTYPES)
@pytest.mark.parametrize("use_mmap", [True, False])
@HYP
@given(shape=array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5), seed=st.integers(0, 9))
def test_numpy_round_trip_is_bit_exact(name, use_mmap, shape, seed, tmp_path):
    a = random_array(name, shape, seed)
    p = tmp_path / "x.ckpt"
    write_checkpoint(p, [("a", a, {"class": "ParamState"})], {"n": 1})
    meta, [rec] = read_checkpoint(p, mmap=use_mmap)
    assert meta == {"n": 1}
    assert rec == CheckpointRecord("a", rec.value, {"class": "ParamState"})
    assert type(rec.value) is np.ndarray
    assert same_bits(rec.value, a)


@pytest.mark.parametrize("x64", [False, True])
@pytest.mark.parametrize("name", JAX_DTYPES)
def test_jax_round_trip_is_bit_exact(name, x64, tmp_path):
    a = random_array(name, (3, 4), 7)
    if name in SUB_BYTE:  # jax keeps only the low bits of each byte: use canonical values
        a = a.astype(np.float32).astype(a.dtype)
    if not x64 and name in ("int64", "uint64", "float64", "complex128"):
        pytest.skip("64-bit dtypes exist in jax only with x64 on")
    with jax.enable_x64(x64):
        wants = (a, np.asarray(a[0, 0]), a[:0])
        xs = [jax.device_put(w) for w in wants]  # no jax slicing: int1 has no CPU kernels
        assert all(x.dtype == a.dtype for x in xs)
        write_checkpoint(tmp_path / "x", [(f"x{i}", x, {}) for i, x in enumerate(xs)])
        _, recs = read_checkpoint(tmp_path / "x", as_jax=True)
        for rec, want in zip(recs, wants):
            assert isinstance(rec.value, jax.Array) and rec.value.dtype == a.dtype
            assert same_bits(jax.device_get(rec.value), want)


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg", "unsafe_rbg"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 0), (2, 3)])
def test_typed_prng_keys_round_trip(impl, shape, tmp_path):
    key = jax.random.key(42, impl=impl)
    keys = jax.random.split(key, math.prod(shape)).reshape(shape) if shape else key
    write_checkpoint(tmp_path / "k", [("rng", keys, {"class": "RandomState"})])
    for use_mmap in (True, False):
        _, [rec] = read_checkpoint(tmp_path / "k", mmap=use_mmap)
        assert rec.value.dtype == keys.dtype and rec.value.shape == keys.shape
        assert jax.random.key_impl(rec.value) == jax.random.key_impl(keys)
        assert same_bits(jax.random.key_data(rec.value), jax.random.key_data(keys))
    if shape == ():
        assert jnp.array_equal(jax.random.normal(rec.value, (4,)), jax.random.normal(keys, (4,)))


def test_float0_round_trips(tmp_path):
    z = np.zeros((2, 3), jax.dtypes.float0)
    write_checkpoint(tmp_path / "f", [("g", z, {})])
    _, [rec] = read_checkpoint(tmp_path / "f", as_jax=True)
    assert rec.value.dtype == jax.dtypes.float0 and rec.value.shape == (2, 3)


def test_non_contiguous_and_big_endian_inputs(tmp_path):
    base = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    inputs = {
        "transposed": base.T,
        "strided": base[:, ::2, 1::2],
        "reversed": base[::-1, :, ::-1],
        "fortran": np.asfortranarray(base),
        "bf16_strided": base.astype(ml_dtypes.bfloat16)[::2, ::3],
        "int4_T": (base.astype(np.int8) % 8).astype(ml_dtypes.int4).T,
        "big_endian": base.astype(">f8"),
        "big_c": (base + 1j * base).astype(">c16")[:, 1],
        "broadcast": np.broadcast_to(np.float16(2), (4, 4)),
        "jax_slice": jnp.asarray(base)[:, 1:3],
    }
    write_checkpoint(tmp_path / "nc", [(k, v, {}) for k, v in inputs.items()])
    _, recs = read_checkpoint(tmp_path / "nc")
    for rec in recs:
        want = np.asarray(inputs[rec.key])
        assert rec.value.dtype == want.dtype.newbyteorder("=") and rec.value.shape == want.shape
        assert np.array_equal(rec.value, want), rec.key
        assert rec.value.flags.c_contiguous and rec.value.flags.aligned


def test_scalars_lists_order_info_and_metadata(tmp_path):
    entries = [("z", 3.5, {"path": ("layers", 0, "w"), "class": "ParamState", "x": None}),
               ("a", [1, 2], {}), ("m", np.int8(-3), {"nested": {"k": [1.5, True]}}),
               ("é/ü", np.ones(2, np.bool_), None)]
    meta = {"step": 10, "name": "run-1", "tags": ("a", "b")}
    write_checkpoint(tmp_path / "s", entries, meta)
    got_meta, recs = read_checkpoint(tmp_path / "s")
    assert got_meta == {"step": 10, "name": "run-1", "tags": ["a", "b"]}  # tuples via JSON
    assert [r.key for r in recs] == ["z", "a", "m", "é/ü"]
    assert recs[0].info == {"path": ["layers", 0, "w"], "class": "ParamState", "x": None}
    assert recs[0].value.shape == () and recs[0].value == 3.5
    assert recs[1].value.tolist() == [1, 2] and recs[2].value.dtype == np.int8
    assert recs[3].info == {}


def test_empty_checkpoint(tmp_path):
    write_checkpoint(tmp_path / "e", [])
    assert read_checkpoint(tmp_path / "e") == ({}, [])
    assert os.path.getsize(tmp_path / "e") % 64 == 0


def test_data_is_aligned_and_mmap_is_zero_copy_read_only(tmp_path):
    entries = [("b", np.ones(3, np.int8), {}), ("c", np.ones(5, np.complex128), {}),
               ("h", np.ones(7, np.float16), {}), ("d", np.ones(3, np.float64), {})]
    write_checkpoint(tmp_path / "a", entries)
    _, recs = read_checkpoint(tmp_path / "a")
    bases = set()
    for rec in recs:
        assert rec.value.ctypes.data % rec.value.dtype.itemsize == 0
        assert not rec.value.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            rec.value[...] = 0
        base = rec.value
        while isinstance(base, np.ndarray) and base.base is not None:
            base = base.base
        bases.add(id(base))
    assert len(bases) == 1  # every array views the one mapping
    _, recs = read_checkpoint(tmp_path / "a", mmap=False)
    recs[0].value[...] = 5  # the copying load gives writable arrays
    assert recs[0].value.tolist() == [5, 5, 5]


@pytest.mark.skipif(os.name != "posix", reason="Windows cannot replace a mapped file")
def test_mapped_arrays_survive_a_new_save_to_the_same_path(tmp_path):
    p = tmp_path / "c"
    write_checkpoint(p, [("w", np.arange(1000.0), {})])
    _, [old] = read_checkpoint(p)
    write_checkpoint(p, [("w", np.zeros(1000), {})])
    assert old.value.sum() == sum(range(1000))
    assert read_checkpoint(p)[1][0].value.sum() == 0


def test_numpy_only_reader_from_the_docstring_works(tmp_path):
    code = textwrap.dedent(fmt.__doc__.split("complex as float pairs)::\n")[1].split("\n\n")[0])
    code = code.strip("\n")
    assert code.count("\n") <= 7  # import, a two-line dtype table, five lines of reading
    arrays_in = {"f": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array(True),
                 "h": random_array("bfloat16", (4,), 1), "i4": random_array("int4", (2, 2), 2),
                 "c": np.array([1 + 2j, 3 - 4j], np.complex64), "e": np.zeros((0, 3), np.int64),
                 "f8": random_array("float8_e4m3fn", (3,), 3), "k": jax.random.key(0)}
    p = tmp_path / "r.ckpt"
    write_checkpoint(p, [(k, v, {"class": "C"}) for k, v in arrays_in.items()], {"step": 2})
    # A fresh interpreter proves the snippet needs neither brainstate nor jax nor ml_dtypes.
    runner = code + textwrap.dedent("""
        import sys
        assert not {"brainstate", "jax", "ml_dtypes"} & set(sys.modules), sorted(sys.modules)
        np.savez(sys.argv[2], **arrays)
        print(json.dumps(brainstate))
    """)
    out = tmp_path / "out.npz"
    script = f"path = __import__('sys').argv[1]\n{runner}"
    proc = subprocess.run([sys.executable, "-I", "-c", script, str(p), str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    with np.load(out) as z:
        arrays = dict(z)
    assert info["metadata"] == {"step": 2}
    assert [r["key"] for r in info["records"]] == list(arrays_in)
    assert same_bits(arrays["f"], arrays_in["f"]) and same_bits(arrays["b"], arrays_in["b"])
    assert same_bits(arrays["h"].view(ml_dtypes.bfloat16), arrays_in["h"])
    assert same_bits(arrays["i4"].view(ml_dtypes.int4), arrays_in["i4"])
    assert same_bits(arrays["f8"].view(ml_dtypes.float8_e4m3fn), arrays_in["f8"])
    assert same_bits(arrays["c"].view(np.complex64)[..., 0], arrays_in["c"])
    assert arrays["e"].shape == (0, 3)
    rec_k = info["records"][-1]
    key = jax.random.wrap_key_data(np.asarray(arrays["k"]), impl=rec_k["prng_impl"])
    assert same_bits(jax.random.key_data(key), jax.random.key_data(arrays_in["k"]))


def test_safetensors_package_reads_the_file(tmp_path):
    safetensors = pytest.importorskip("safetensors")
    p = tmp_path / "s.ckpt"
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_checkpoint(p, [("a", a, {}), ("h", a.astype(ml_dtypes.bfloat16), {})])
    with safetensors.safe_open(str(p), "flax") as f:
        assert f.metadata()["format"] == fmt.FORMAT_NAME
        assert np.array_equal(np.asarray(f.get_tensor("a")), a)
        assert f.get_tensor("h").dtype == jnp.bfloat16


# --- atomic writes ----------------------------------------------------------------------------


def _old_checkpoint(folder):
    p = folder / "model.ckpt"
    write_checkpoint(p, [("w", np.arange(10.0), {"v": 1})], {"step": 1})
    return p, p.read_bytes()


def _many_entries(n=8, size=100_000):
    return [(f"a{i}", np.full(size, i, np.float32), {}) for i in range(n)]


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt, OSError])
def test_failure_halfway_keeps_old_checkpoint_and_leaves_no_temp_file(exc_type, tmp_path,
                                                                     monkeypatch):
    p, old = _old_checkpoint(tmp_path)
    before = listing(tmp_path)
    calls = []
    real = fmt._write_blob

    def failing(f, blob):
        calls.append(f.tell())
        if len(calls) == 4:
            raise exc_type(28, "No space left on device") if exc_type is OSError else exc_type()
        real(f, blob)

    monkeypatch.setattr(fmt, "_write_blob", failing)
    with pytest.raises(exc_type) as info:
        write_checkpoint(p, _many_entries())
    assert calls[-1] > 1_000  # it really failed with data already in the temp file
    if exc_type is OSError:
        assert "model.ckpt" in str(info.value) and "No space left" in str(info.value)
    assert p.read_bytes() == old and listing(tmp_path) == before
    assert read_checkpoint(p)[0] == {"step": 1}


@pytest.mark.parametrize("stage", ["fsync", "replace"])
def test_failure_at_commit_keeps_old_checkpoint(stage, tmp_path, monkeypatch):
    p, old = _old_checkpoint(tmp_path)
    before = listing(tmp_path)

    def boom(*args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fmt.os, stage, boom)
    with pytest.raises(OSError, match="cannot write checkpoint .*model.ckpt.*Input/output"):
        write_checkpoint(p, _many_entries())
    monkeypatch.undo()
    assert p.read_bytes() == old and listing(tmp_path) == before


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_during_save_keeps_old_checkpoint(tmp_path):
    p, old = _old_checkpoint(tmp_path)
    child = textwrap.dedent(f"""
        import os, signal, numpy as np
        from brainstate.checkpoint import _format as fmt
        n = []
        real = fmt._write_blob
        def dying(f, blob):
            n.append(1)
            if len(n) == 3:
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            real(f, blob)
        fmt._write_blob = dying
        fmt.write_checkpoint({str(p)!r}, [(f"a{{i}}", np.full(100_000, i, np.float32), {{}})
                                          for i in range(8)])
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert p.read_bytes() == old
    leftovers = [n for n in listing(tmp_path) if n != "model.ckpt"]
    assert len(leftovers) == 1 and re.fullmatch(r"\.model\.ckpt\.[0-9a-f]{8}\.tmp", leftovers[0])
    assert os.path.getsize(tmp_path / leftovers[0]) > 200_000  # killed mid-data, not before
    write_checkpoint(p, [("w", np.ones(2), {})])  # a leftover does not block the next save
    assert read_checkpoint(p)[1][0].value.tolist() == [1.0, 1.0]


@pytest.mark.skipif(os.name != "posix", reason="symlinks need privileges on Windows")
def test_symlink_target_is_replaced_and_link_kept(tmp_path):
    real = tmp_path / "real.ckpt"
    write_checkpoint(real, [("w", np.zeros(2), {})])
    link = tmp_path / "latest"
    link.symlink_to(real)
    write_checkpoint(link, [("w", np.ones(2), {})])
    assert link.is_symlink()
    assert read_checkpoint(real)[1][0].value.tolist() == [1.0, 1.0]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_new_file_mode_follows_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_checkpoint(tmp_path / "m", [])
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m").st_mode) == 0o640


# --- unwritable paths and bad entries ---------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cannot write checkpoint .*nope.*create the"):
        write_checkpoint(tmp_path / "nope" / "x.ckpt", [("w", np.zeros(1), {})])
    assert listing(tmp_path) == []


def test_parent_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match="cannot write checkpoint"):
        write_checkpoint(tmp_path / "f" / "x.ckpt", [])
    assert listing(tmp_path) == ["f"] and (tmp_path / "f").read_text() == "x"


def test_path_is_a_folder(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder; give a file name"):
        write_checkpoint(tmp_path / "d", [])
    assert listing(tmp_path) == ["d"] and listing(tmp_path / "d") == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root ignores permission bits")
def test_read_only_folder(tmp_path):
    p, old = _old_checkpoint(tmp_path)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="choose a folder you may write to"):
            write_checkpoint(p, [])
    finally:
        tmp_path.chmod(0o755)
    assert p.read_bytes() == old


@pytest.mark.parametrize("entries, exc, msg", [
    ([("a", np.zeros(1), {}), ("a", np.zeros(1), {})], ValueError, "'a' appears twice"),
    ([("__metadata__", np.zeros(1), {})], ValueError, "reserved"),
    ([(0, np.zeros(1), {})], TypeError, "key must be a non-empty str"),
    ([("", np.zeros(1), {})], TypeError, "key must be a non-empty str"),
    ([("a", np.zeros(1))], TypeError, r"entry #0 must be a \(key, array, info\) triple"),
    (["abc"], TypeError, r"entry #0 must be a \(key, array, info\) triple"),
    ([("a", np.zeros(1), [1])], TypeError, "info must be a dict"),
    ([("a", np.zeros(1), {"f": object()})], TypeError, "info of checkpoint entry 'a'"),
    ([("a", np.zeros(1), {"f": float("nan")})], TypeError, "info of checkpoint entry 'a'"),
    ([("a", np.array(["x"]), {})], TypeError, "'a' has dtype <U1"),
    ([("a", np.array([None]), {})], TypeError, "'a' has dtype object"),
    ([("a", np.zeros(1, "datetime64[s]"), {})], TypeError, "no checkpoint encoding"),
    ([("a", np.zeros(1, np.longdouble), {})], TypeError, "no checkpoint encoding"),
])
def test_bad_entries_raise_before_touching_disk(entries, exc, msg, tmp_path):
    p, old = _old_checkpoint(tmp_path)
    with pytest.raises(exc, match=msg):
        write_checkpoint(p, entries)
    assert p.read_bytes() == old and listing(tmp_path) == ["model.ckpt"]


def test_bad_metadata_and_traced_values(tmp_path):
    with pytest.raises(TypeError, match="checkpoint metadata is not JSON-serialisable"):
        write_checkpoint(tmp_path / "x", [], {"bad": {1, 2}})
    with pytest.raises(TypeError, match="checkpoint metadata must be a dict, got list"):
        write_checkpoint(tmp_path / "x", [], [("step", 1)])

    @jax.jit
    def save(x):
        write_checkpoint(tmp_path / "x", [("x", x, {})])
        return x

    with pytest.raises(TypeError, match="'x' is a traced value"):
        save(jnp.ones(2))
    assert listing(tmp_path) == []


# --- bad files --------------------------------------------------------------------------------


@pytest.fixture
def good_file(tmp_path):
    p = tmp_path / "good.ckpt"
    write_checkpoint(p, [("w", np.arange(50, dtype=np.float32), {"class": "ParamState"}),
                         ("k", jax.random.key(3), {}),
                         ("h", np.ones((2, 3), ml_dtypes.bfloat16), {"path": ["a", 1]})],
                     {"step": 7})
    return p


def test_error_class():
    assert issubclass(CheckpointFormatError, BrainStateError)
    assert issubclass(CheckpointFormatError, ValueError)


@HYP
@given(data=st.data())
def test_any_truncation_is_reported(good_file, data):
    blob = good_file.read_bytes()
    cut = data.draw(st.integers(0, len(blob) - 1))
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "cut.ckpt")
        with open(p, "wb") as f:
            f.write(blob[:cut])
        for use_mmap in (True, False):
            with pytest.raises(CheckpointFormatError, match=r"cut\.ckpt.*(truncated|not a)"):
                read_checkpoint(p, mmap=use_mmap)
        with open(p, "rb") as f:
            assert f.read() == blob[:cut]  # reading modifies nothing


@HYP
@given(data=st.data())
def test_any_changed_byte_is_reported(good_file, data):
    blob = bytearray(good_file.read_bytes())
    pos = data.draw(st.integers(0, len(blob) - 1))
    blob[pos] ^= data.draw(st.integers(1, 255))
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "bad.ckpt")
        with open(p, "wb") as f:
            f.write(blob)
        with pytest.raises(CheckpointFormatError, match=r"bad\.ckpt"):
            read_checkpoint(p)


def test_changed_data_byte_passes_only_without_verify(good_file):
    blob = bytearray(good_file.read_bytes())
    blob[-1] ^= 1
    good_file.write_bytes(blob)
    with pytest.raises(CheckpointFormatError, match="'h' fails its CRC-32 check"):
        read_checkpoint(good_file, mmap=False)
    assert read_checkpoint(good_file, verify=False)[0] == {"step": 7}


def test_trailing_garbage(good_file):
    with open(good_file, "ab") as f:
        f.write(b"\0" * 3)
    with pytest.raises(CheckpointFormatError, match="longer than its header describes"):
        read_checkpoint(good_file)


@pytest.mark.parametrize("writer, hint", [
    (lambda p: p.write_bytes(b""), "0 bytes"),
    (lambda p: p.write_bytes(b"abc"), "3 bytes"),
    (lambda p: p.write_text("hello world, this is text\n" * 10), "not a brainstate checkpoint"),
    (lambda p: np.savez(p, a=np.zeros(3)), "zip archive"),
    (lambda p: np.save(p, np.zeros(3)), r"\.npy file"),
    (lambda p: p.write_bytes(pickle.dumps({"a": np.zeros(3)})), "never unpickles"),
    (lambda p: p.write_bytes(json.dumps({"a": 1}).encode()), "not a brainstate checkpoint"),
])
def test_files_that_are_not_checkpoints(writer, hint, tmp_path):
    p = tmp_path / "thing"
    writer(p)
    if not p.exists():  # numpy appended its suffix
        p = next(tmp_path.iterdir())
    with pytest.raises(CheckpointFormatError, match=hint) as info:
        read_checkpoint(p)
    assert str(p) in str(info.value)


def _plain_safetensors(path, meta):
    header = json.dumps({"__metadata__": meta,
                         "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + np.zeros(2, "<f4").tobytes())


def test_plain_safetensors_file_is_not_a_checkpoint(tmp_path):
    _plain_safetensors(tmp_path / "m.safetensors", {"format": "pt"})
    with pytest.raises(CheckpointFormatError, match="safetensors file without brainstate"):
        read_checkpoint(tmp_path / "m.safetensors")


def _rewrite_metadata(path, change):
    """Re-encode a checkpoint's header after ``change(top)``, with a valid header CRC."""
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    top = json.loads(blob[8:8 + n])
    change(top)
    text = json.dumps(top, separators=(",", ":")).encode()
    text += b" " * (n - len(text))
    assert len(text) == n
    end = len(fmt._HEADER_PREFIX) + 9
    text = text[:end - 9] + b"%08x" % zlib.crc32(text[end:]) + text[end - 1:]
    path.write_bytes(blob[:8] + text + blob[8 + n:])


def test_documented_header_crc_rule(good_file):
    _rewrite_metadata(good_file, lambda top: None)  # recomputing by the documented rule is a no-op
    assert read_checkpoint(good_file)[0] == {"step": 7}


def test_newer_format_version_is_refused(good_file):
    def bump(top):
        top["__metadata__"]["format_version"] = str(FORMAT_VERSION + 1)
    _rewrite_metadata(good_file, bump)
    with pytest.raises(CheckpointFormatError,
                       match=f"format version {FORMAT_VERSION + 1}, newer .* upgrade brainstate"):
        read_checkpoint(good_file)


@pytest.mark.parametrize("change, msg", [
    (lambda t: t["__metadata__"].update(format="other"), "format is 'other'"),
    (lambda t: t["__metadata__"].update(format_version="one"), "format_version is 'one'"),
    (lambda t: t["w"].update(data_offsets=[0, 196]), "record table is inconsistent"),
    (lambda t: t["w"].update(dtype="F64"), "record table is inconsistent"),
    (lambda t: t.pop("h"), "record table is inconsistent"),
    (lambda t: t["__metadata__"].update(brainstate="{"), "record table is inconsistent"),
])
def test_inconsistent_headers_from_other_writers(good_file, change, msg):
    _rewrite_metadata(good_file, change)
    with pytest.raises(CheckpointFormatError, match=msg):
        read_checkpoint(good_file)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "absent.ckpt")
