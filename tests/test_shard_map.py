"""``shard_map``: states on a one-device mesh, composition, errors, and a four-device run.

The four-device cases run in a subprocess: the host platform's device count is fixed when
JAX starts.
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
from jax.sharding import Mesh, PartitionSpec as P

import brainstate
from brainstate.transform import for_loop, grad, jit, shard_map, vmap

MESHES = {
    "explicit": lambda: jax.make_mesh((1,), ("x",)),
    "auto": lambda: Mesh(np.array(jax.devices()[:1]), ("x",)),
}


@pytest.fixture(params=sorted(MESHES))
def mesh(request):
    return MESHES[request.param]()


X = jnp.arange(8.0, dtype=jnp.float32)


class TestStates:
    def test_read_state_replicated_and_unchanged(self, mesh):
        w = brainstate.ParamState(jnp.asarray(3.0))
        f = shard_map(lambda x: x * w.value, mesh, in_specs=(P("x"),), out_specs=P("x"))
        np.testing.assert_allclose(f(X), np.asarray(X) * 3.0)
        np.testing.assert_allclose(w.value, 3.0)
        w.value = jnp.asarray(5.0)  # the next call reads the new value
        np.testing.assert_allclose(f(X), np.asarray(X) * 5.0)

    @pytest.mark.parametrize("how", ["dict", "single"])
    def test_written_sharded_state(self, mesh, how):
        buf = brainstate.State(jnp.arange(8.0))
        w = brainstate.ParamState(jnp.asarray(2.0))

        def acc(x):
            buf.value = buf.value + x * w.value
            return x

        spec = {buf: P("x")} if how == "dict" else P("x")
        f = shard_map(acc, mesh, in_specs=P("x"), out_specs=P("x"), state_out_specs=spec)
        f(X)
        f(X)
        np.testing.assert_allclose(buf.value, np.arange(8.0) + 4.0 * np.asarray(X))
        np.testing.assert_allclose(w.value, 2.0)

    def test_written_replicated_state_after_psum(self, mesh):
        total = brainstate.State(jnp.zeros(()))

        def f(x):
            total.value = total.value + jax.lax.psum(x.sum(), "x")
            return x

        shard_map(f, mesh, in_specs=P("x"), out_specs=P("x"))(X)
        np.testing.assert_allclose(total.value, float(np.asarray(X).sum()))

    def test_state_in_specs_single_spec(self, mesh):
        w = brainstate.State(jnp.ones(8))
        f = shard_map(lambda x: jax.lax.psum((x * w.value).sum(), "x"), mesh,
                      in_specs=P("x"), out_specs=P(), state_in_specs=P("x"))
        np.testing.assert_allclose(f(X), float(np.asarray(X).sum()))

    def test_out_spec_of_a_state_only_read_is_not_used(self, mesh):
        # An out spec applies only if the state is written: no conflict with its in spec.
        w = brainstate.State(jnp.arange(8.0), name="w")
        f = shard_map(lambda x: x * w.value, mesh, in_specs=P("x"), out_specs=P("x"),
                      state_in_specs={w: P("x")}, state_out_specs={w: P()})
        np.testing.assert_allclose(f(X), np.asarray(X) * np.arange(8.0))
        np.testing.assert_allclose(w.value, np.arange(8.0))

    def test_keywords_are_closed_over(self, mesh):
        f = shard_map(lambda x, scale=1.0: x * scale, mesh, in_specs=P("x"), out_specs=P("x"))
        np.testing.assert_allclose(f(X, scale=3.0), np.asarray(X) * 3.0)

    def test_pytree_arguments_and_prefix_specs(self, mesh):
        def f(a, b):
            return {"s": a["u"] + a["v"], "t": b * 2.0}

        g = shard_map(f, mesh, in_specs=(P("x"), P()), out_specs={"s": P("x"), "t": P()})
        out = g({"u": X, "v": X}, jnp.ones(3))
        np.testing.assert_allclose(out["s"], 2 * np.asarray(X))
        np.testing.assert_allclose(out["t"], 2 * np.ones(3))

    def test_state_created_inside_is_not_an_output(self, mesh):
        def f(x):
            tmp = brainstate.State(x)
            tmp.value = tmp.value + 1.0
            return tmp.value

        np.testing.assert_allclose(shard_map(f, mesh, in_specs=P("x"), out_specs=P("x"))(X),
                                   np.asarray(X) + 1.0)

    def test_check_vma_false_is_passed_through(self, mesh):
        f = shard_map(lambda x: x + 1.0, mesh, in_specs=P("x"), out_specs=P("x"),
                      check_vma=False)
        np.testing.assert_allclose(f(X), np.asarray(X) + 1.0)


class TestComposition:
    def test_inside_jit(self, mesh):
        buf = brainstate.State(jnp.zeros(8))

        def acc(x):
            buf.value = buf.value + x
            return x.sum()

        f = shard_map(acc, mesh, in_specs=P("x"), out_specs=P(), state_out_specs={buf: P("x")},
                      check_vma=False)
        run = jit(f)
        run(X)
        run(X)
        np.testing.assert_allclose(buf.value, 2 * np.asarray(X))

    def test_grad_matches_raw_jax(self, mesh):
        w = brainstate.ParamState(jnp.asarray(0.5))
        f = shard_map(lambda x: jax.lax.psum(jnp.tanh(x * w.value).sum(), "x"), mesh,
                      in_specs=P("x"), out_specs=P())
        g = grad(lambda: f(X), grad_states=w)()
        ref = jax.grad(lambda v: jnp.tanh(X * v).sum())(0.5)
        np.testing.assert_allclose(g, ref, rtol=1e-5)

    def test_inside_for_loop_writes_carried(self, mesh):
        buf = brainstate.State(jnp.zeros(8))

        def acc(x):
            buf.value = buf.value + x
            return buf.value.sum()

        f = shard_map(acc, mesh, in_specs=P("x"), out_specs=P(), state_out_specs={buf: P("x")},
                      check_vma=False)
        out = for_loop(f, jnp.stack([X, X, X]))
        s = float(np.asarray(X).sum())
        np.testing.assert_allclose(out, [s, 2 * s, 3 * s])
        np.testing.assert_allclose(buf.value, 3 * np.asarray(X))

    def test_under_vmap_read_state(self):
        mesh = MESHES["auto"]()  # an explicit mesh's layouts do not survive raw vmap batching
        w = brainstate.ParamState(jnp.asarray(2.0))
        f = shard_map(lambda x: x * w.value, mesh, in_specs=P("x"), out_specs=P("x"))
        out = vmap(f)(jnp.stack([X, X + 1.0]))
        np.testing.assert_allclose(out, np.stack([X, X + 1.0]) * 2.0)


class TestErrors:
    def test_not_callable(self, mesh):
        with pytest.raises(TypeError, match="shard_map needs a callable"):
            shard_map(3, mesh, in_specs=P("x"), out_specs=P("x"))

    def test_not_a_mesh(self):
        with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
            shard_map(lambda x: x, ("x",), in_specs=P("x"), out_specs=P("x"))

    def test_in_specs_count(self, mesh):
        f = shard_map(lambda a, b: a + b, mesh, in_specs=(P("x"),), out_specs=P("x"))
        with pytest.raises(ValueError, match="in_specs has 1 entries but .* 2 positional"):
            f(X, X)

    def test_in_specs_structure(self, mesh):
        f = shard_map(lambda a: a, mesh, in_specs=((P("x"), P("x")),), out_specs=P("x"))
        with pytest.raises(ValueError, match="in_specs does not match the arguments"):
            f(X)

    def test_unknown_mesh_axis(self, mesh):
        f = shard_map(lambda a: a, mesh, in_specs=P("y"), out_specs=P("x"))
        with pytest.raises(ValueError,
                           match=r"names mesh axis 'y', but the mesh has axes \('x',\)"):
            f(X)

    def test_spec_longer_than_rank(self, mesh):
        f = shard_map(lambda a: a, mesh, in_specs=P("x", None), out_specs=P("x"))
        with pytest.raises(ValueError, match=r"args\[0\] has rank 1 but its spec"):
            f(X)

    @pytest.mark.parametrize("specs", [
        {"state_in_specs": "x"},
        {"state_out_specs": {"not a state": P("x")}},
    ])
    def test_malformed_state_specs(self, mesh, specs):
        with pytest.raises(TypeError, match="state_(in|out)_specs"):
            shard_map(lambda a: a, mesh, in_specs=P("x"), out_specs=P("x"), **specs)

    def test_state_spec_not_a_partition_spec(self, mesh):
        st = brainstate.State(jnp.zeros(8), name="buf")
        with pytest.raises(TypeError, match=r"state_in_specs\[.*buf.*\] must be a PartitionSpec"):
            shard_map(lambda a: a, mesh, in_specs=P("x"), out_specs=P("x"),
                      state_in_specs={st: "x"})

    def test_conflicting_state_specs(self, mesh):
        buf = brainstate.State(jnp.zeros(8), name="buf")

        def acc(x):
            buf.value = buf.value + x
            return x

        f = shard_map(acc, mesh, in_specs=P("x"), out_specs=P("x"),
                      state_in_specs={buf: P()}, state_out_specs={buf: P("x")})
        with pytest.raises(ValueError, match=r"buf.*read with state_in_specs P\(\) but written"):
            f(X)
        assert float(buf.value.sum()) == 0.0

    def test_writes_that_change_between_traces(self, mesh):
        # Which states are written is read from a trace; a function whose writes change
        # from one trace to the next is refused rather than run with a wrong spec or write.
        buf = brainstate.State(jnp.zeros(8), name="buf")
        calls = []

        def flaky(x):
            calls.append(1)
            if len(calls) % 2 == 0:
                buf.value = buf.value + x
            return x + buf.value

        f = shard_map(flaky, mesh, in_specs=P("x"), out_specs=P("x"),
                      state_out_specs={buf: P("x")})
        with pytest.raises(ValueError, match="writes change with the shapes it sees"):
            f(X)
        calls.clear()
        g = shard_map(flaky, mesh, in_specs=P("x"), out_specs=P("x"))
        with pytest.raises(ValueError, match=r"wrote .*buf.* only when run on the shards"):
            g(X)
        np.testing.assert_allclose(buf.value, np.zeros(8))


_FOUR_DEVICES = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np, brainstate
    from jax.sharding import PartitionSpec as P
    from brainstate.transform import jit, shard_map
    assert jax.device_count() == 4
    mesh = jax.make_mesh((4,), ("x",))
    x = jnp.arange(8.0)

    # per-shard views of sharded states; the shard index shows each shard ran on its slice
    buf = brainstate.State(jnp.zeros(8))
    w = brainstate.State(jnp.arange(8.0))
    def acc(v):
        buf.value = buf.value + v * w.value + jax.lax.axis_index("x")
        return v.sum(keepdims=True)
    f = shard_map(acc, mesh, in_specs=P("x"), out_specs=P("x"),
                  state_in_specs={w: P("x"), buf: P("x")})
    out = f(x)
    np.testing.assert_allclose(out, np.arange(8.0).reshape(4, 2).sum(1))
    np.testing.assert_allclose(buf.value, np.arange(8.0) ** 2 + np.repeat(np.arange(4), 2))
    jit(f)(x)
    np.testing.assert_allclose(buf.value, 2 * (np.arange(8.0) ** 2 + np.repeat(np.arange(4), 2)))

    # a replicated state meeting sharded data: a shape error with a note on the state specs
    def bad(v):
        buf.value = buf.value + v
        return v
    try:
        shard_map(bad, mesh, in_specs=P("x"), out_specs=P("x"))(x)
    except TypeError as e:
        assert "state_in_specs={state: P('x')}" in str(e), e
    else:
        raise AssertionError("no error")

    # a replicated state written with a shard-dependent value: a note on state_out_specs
    total = brainstate.State(jnp.zeros(()))
    def varying(v):
        total.value = total.value + v.sum()
        return v
    try:
        shard_map(varying, mesh, in_specs=P("x"), out_specs=P("x"))(x)
    except ValueError as e:
        assert "state_out_specs={state: P('x')}" in str(e), e
    else:
        raise AssertionError("no error")
    assert float(total.value) == 0.0

    # an out spec applies only to a written state: one named in the dict but only read is
    # read whole, as with one spec for every state (not summed over each shard's slice)
    s = brainstate.State(jnp.arange(4.0))
    calls = []
    def read_only(v):
        calls.append(1)
        return v * s.value.sum()
    for spec in ({s: P("x")}, P("x")):
        out = shard_map(read_only, mesh, in_specs=P("x"), out_specs=P("x"),
                        state_out_specs=spec)(jnp.ones(4))
        np.testing.assert_allclose(out, [6.0] * 4)
    assert len(calls) == 5  # the dict form traces once more, with the state read whole
    # a state that is read and written keeps its dict out spec
    def scale(v):
        s.value = s.value * v
        return v
    shard_map(scale, mesh, in_specs=P("x"), out_specs=P("x"),
              state_out_specs={s: P("x")})(jnp.arange(4.0))
    np.testing.assert_allclose(s.value, np.arange(4.0) ** 2)

    # a split state's indivisible dimension names the state, whichever form gives its spec
    odd = brainstate.State(jnp.ones(6), name="odd")
    def use(v):
        odd.value = odd.value * 2.0
        return v
    for spec in ({odd: P("x")}, P("x")):
        try:
            shard_map(use, mesh, in_specs=P("x"), out_specs=P("x"), state_out_specs=spec)(x)
        except ValueError as e:
            assert "odd" in str(e) and "(size 6) is not divisible by the size 4" in str(e), e
        else:
            raise AssertionError("no error")
    np.testing.assert_allclose(odd.value, np.ones(6))

    # an indivisible dimension names the argument
    try:
        shard_map(lambda v: v, mesh, in_specs=P("x"), out_specs=P("x"))(jnp.ones(6))
    except ValueError as e:
        assert "dimension 0 of args[0] (size 6) is not divisible by the size 4" in str(e), e
    else:
        raise AssertionError("no error")
    # an exception type that cannot be rebuilt from one message gets the hint as a note
    from brainstate.transform._shard_map import _with_hint
    class Odd(ValueError):
        def __init__(self, a, b):
            super().__init__(a)
    e = _with_hint(Odd("incompatible shapes", 1), [P("x")])
    assert "state_in_specs" in "".join(e.__notes__)
    assert _with_hint(ValueError("unrelated"), [P("x")]).args == ("unrelated",)
    print("OK")
""")


def test_four_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", _FOUR_DEVICES], env=env, capture_output=True,
                         text=True, timeout=240)
    assert res.returncode == 0 and res.stdout.strip().endswith("OK"), res.stderr[-3000:]
