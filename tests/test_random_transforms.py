"""Random states under transforms: fresh draws per call and iteration, per-lane vmap streams,
the compiled program of a noisy loop, gradients and checkpoints."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
import brainstate.random as br
from brainstate import BatchAxisError
from brainstate.transform import (
    cond,
    for_loop,
    grad,
    jit,
    scan,
    vmap,
    vmap_new_states,
    while_loop,
)


def _distinct_rows(x):
    x = np.asarray(x)
    return len({row.tobytes() for row in x}) == len(x)


# --- jit and control flow: every call, every iteration draws fresh numbers -----------------------


def test_consecutive_jit_calls_differ_and_advance_the_key():
    rng = br.RandomState(0)
    f = jit(lambda: rng.normal(size=(4,)))
    keys, outs = [], []
    for _ in range(3):
        keys.append(np.asarray(rng.value))
        outs.append(np.asarray(f()))
    assert _distinct_rows(outs) and _distinct_rows(keys)
    rng.seed(0)
    np.testing.assert_allclose(rng.normal(size=(4,)), outs[0], rtol=1e-6)  # eager == compiled


def test_default_stream_inside_jit():
    br.seed(1)
    f = jit(lambda x: x + br.uniform(size=x.shape))
    a, b = f(jnp.zeros(3)), f(jnp.zeros(3))
    assert not np.array_equal(a, b)
    br.seed(1)
    np.testing.assert_allclose(br.uniform(size=3), a, rtol=1e-6)


def test_for_loop_iterations_differ_and_match_eager_draws():
    rng = br.RandomState(3)
    xs = jit(lambda: for_loop(lambda i: rng.normal(size=(2,)), jnp.arange(5)))()
    assert xs.shape == (5, 2) and _distinct_rows(xs)
    after = np.asarray(rng.value)
    rng.seed(3)
    eager = np.stack([rng.normal(size=(2,)) for _ in range(5)])
    np.testing.assert_allclose(xs, eager, rtol=1e-6)
    np.testing.assert_array_equal(rng.value, after)


def test_scan_and_while_loop_iterations_differ():
    rng = br.RandomState(4)
    _, ys = scan(lambda c, x: (c, rng.rand()), jnp.float32(0.0), jnp.arange(6))
    assert len(set(np.asarray(ys).tolist())) == 6

    def body(carry):
        total, n = carry
        return total + rng.uniform(), n + 1

    total, n = while_loop(lambda c: c[0] < 10.0, body, (jnp.float32(0.0), jnp.int32(0)))
    assert float(total) >= 10.0 and 10 < int(n) < 60  # mean 0.5 per step


def test_cond_branches_draw_and_advance():
    rng = br.RandomState(5)
    f = jit(lambda x: cond(x > 0, lambda: rng.normal(), lambda: rng.uniform() - 2.0))
    a, b, c = f(1.0), f(1.0), f(-1.0)
    assert float(a) != float(b) and float(c) < -1.0


def test_grad_through_a_noisy_loss_draws_fresh_noise():
    rng = br.RandomState(6)
    w = brainstate.ParamState(jnp.ones(3))
    g = grad(lambda: jnp.sum(w.value * rng.normal(size=(3,))), grad_states=w)
    key = rng.value
    g1 = g()
    g2 = g()
    _, sub = jax.random.split(key)
    np.testing.assert_allclose(g1, jax.random.normal(sub, (3,)), rtol=1e-6)
    assert not np.allclose(g1, g2)


# --- the compiled program of a noisy loop ---------------------------------------------------------


def _lif(v, current):
    v = v + 0.1 * (current - v)
    spike = v >= 1.0
    return jnp.where(spike, 0.0, v), spike


@pytest.mark.parametrize("make_key", [jax.random.PRNGKey, jax.random.key], ids=["raw", "typed"])
def test_noisy_lif_for_loop_compiles_to_the_explicit_key_scan_program(hlo_op_counts, make_key):
    # A draw is the state's read, the split, the state's write and the sample: inside for_loop
    # the key is one more carry, so the program is the hand-written scan that carries the key.
    n, steps = 64, 50
    drive = jnp.linspace(0.5, 1.5, steps * n, dtype=jnp.float32).reshape(steps, n)
    rng = br.RandomState(make_key(0))
    v = brainstate.HiddenState(jnp.zeros(n, jnp.float32))

    def step(current):
        v.value, spike = _lif(v.value, current + 0.5 * rng.normal(size=(n,)))
        return spike

    def raw(v0, key, xs):
        def body(carry, current):
            vv, k = carry
            k, sub = jax.random.split(k)
            vv, spike = _lif(vv, current + 0.5 * jax.random.normal(sub, (n,)))
            return (vv, k), spike

        return jax.lax.scan(body, (v0, key), xs)

    ours = jit(lambda xs: for_loop(step, xs)).lower(drive).compile().as_text()
    ref = jax.jit(raw).lower(v.value, rng.value, drive).compile().as_text()
    counts = hlo_op_counts(ours)
    assert counts["while"] >= 1 and counts == hlo_op_counts(ref)

    # and it computes the same thing
    key0, v0 = rng.value, v.value
    spikes = jit(lambda xs: for_loop(step, xs))(drive)
    (v_ref, key_ref), spikes_ref = jax.jit(raw)(v0, key0, drive)
    np.testing.assert_array_equal(spikes, spikes_ref)
    np.testing.assert_allclose(v.value, v_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(jax.random.key_data(rng.value) if make_key is jax.random.key
                                  else rng.value,
                                  jax.random.key_data(key_ref) if make_key is jax.random.key
                                  else key_ref)


# --- vmap: one stream per lane --------------------------------------------------------------------


def test_vmap_lanes_draw_independent_streams():
    rng = br.RandomState(7)
    f = vmap(lambda x: x + rng.normal(size=(2000,)))
    out = np.asarray(f(jnp.zeros((4, 2000))))
    assert _distinct_rows(out)
    corr = np.corrcoef(out)
    off = corr[~np.eye(4, dtype=bool)]
    assert np.all(np.abs(off) < 0.1)  # independent: |r| ~ 1/sqrt(2000) ~ 0.02
    np.testing.assert_allclose(out.std(axis=1), 1.0, atol=0.1)


def test_vmap_lanes_are_the_split_key_streams_and_the_key_advances_once():
    rng = br.RandomState(8)
    key = rng.value
    f = vmap(lambda x: x + rng.normal(size=(3,)))
    out = f(jnp.zeros((4, 3)))
    ref_keys = jax.random.split(key, 5)  # what rng.split_key(4) would give
    np.testing.assert_array_equal(rng.value, ref_keys[0])
    lanes = jax.vmap(lambda k: jax.random.normal(jax.random.split(k)[1], (3,)))(ref_keys[1:])
    np.testing.assert_allclose(out, lanes, rtol=1e-6)


def test_vmap_is_reproducible_from_the_seed_and_fresh_per_call():
    rng = br.RandomState(9)
    f = vmap(lambda x: rng.uniform(size=(3,)) + x)
    a = f(jnp.zeros((3, 3)))
    b = f(jnp.zeros((3, 3)))
    assert not np.allclose(a, b)
    rng.seed(9)
    np.testing.assert_allclose(f(jnp.zeros((3, 3))), a, rtol=1e-6)


def test_vmap_splits_the_default_stream_and_several_draws_per_lane():
    br.seed(10)

    @vmap
    def lane(x):
        return x + br.normal(size=(2,)), br.uniform(size=(2,))

    a, b = lane(jnp.zeros((5, 2)))
    assert _distinct_rows(a) and _distinct_rows(b)
    assert not np.allclose(a, b)


def test_vmap_splits_a_random_state_the_lanes_only_read():
    rng = br.RandomState(11)
    key = rng.value
    out = vmap(lambda x: x + jax.random.uniform(rng.value, (2,)))(jnp.zeros((3, 2)))
    assert _distinct_rows(out)
    np.testing.assert_array_equal(rng.value, jax.random.split(key, 4)[0])


def test_vmap_with_axis_size_and_no_mapped_argument():
    rng = br.RandomState(12)
    out = vmap(lambda: rng.normal(size=(3,)), axis_size=4)()
    assert out.shape == (4, 3) and _distinct_rows(out)


def test_vmap_inside_jit_and_jit_inside_vmap():
    rng = br.RandomState(13)
    inner = vmap(lambda x: x + rng.normal(size=(2,)))
    outer = jit(lambda x: inner(x))
    a, b = outer(jnp.zeros((3, 2))), outer(jnp.zeros((3, 2)))
    assert _distinct_rows(a) and not np.allclose(a, b)
    lane_jit = vmap(jit(lambda x: x + rng.normal(size=(2,))))
    c = lane_jit(jnp.zeros((3, 2)))
    assert _distinct_rows(c)


def test_nested_vmap_gives_every_lane_its_own_stream():
    rng = br.RandomState(14)
    f = vmap(vmap(lambda x: x + rng.normal()))
    out = np.asarray(f(jnp.zeros((3, 4)))).ravel()
    assert len(set(out.tolist())) == 12


def test_for_loop_inside_vmap():
    rng = br.RandomState(15)

    def run(x):
        return for_loop(lambda i: x + rng.normal(), jnp.arange(4))

    out = np.asarray(vmap(run)(jnp.zeros(3)))
    assert out.shape == (3, 4) and len(set(out.ravel().tolist())) == 12


def test_vmap_opt_out_declaring_per_lane_keys_in_in_states():
    rng = br.RandomState(16)
    rng.self_assign_multi_keys(3)
    lane_keys = rng.value
    out = vmap(lambda x: x + rng.normal(size=(2,)), in_states=rng)(jnp.zeros((3, 2)))
    for i in range(3):  # each lane drew from the key the user put at its index
        _, sub = jax.random.split(lane_keys[i])
        np.testing.assert_allclose(out[i], jax.random.normal(sub, (2,)), rtol=1e-6)
    assert rng.value.shape == (3, 2)  # written back per lane
    advanced = jax.vmap(lambda k: jax.random.split(k)[0])(lane_keys)
    np.testing.assert_array_equal(rng.value, advanced)
    rng.restore_key()
    assert rng.value.shape == (2,)


def test_vmap_opt_out_identical_keys_give_identical_lanes():
    rng = br.RandomState(17)
    with brainstate.check_state_value_tree(False):
        rng.value = jnp.stack([jax.random.PRNGKey(1)] * 3)
    out = vmap(lambda x: x + rng.uniform(size=(2,)), in_states=rng)(jnp.zeros((3, 2)))
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[1], out[2])


def test_vmap_refuses_to_split_a_state_holding_several_keys():
    rng = br.RandomState(18)
    rng.self_assign_multi_keys(2)
    with pytest.raises(BatchAxisError, match="not a single key.*Declare it in in_states"):
        vmap(lambda x: x + rng.value[0, 0].astype(x.dtype), axis_size=2)(jnp.zeros(2))
    with pytest.raises(ValueError, match="a batch of keys, and a draw needs a single key"):
        vmap(lambda x: x + rng.normal(), axis_size=2)(jnp.zeros(2))
    with pytest.raises(ValueError, match="restore_key"):
        rng.normal()


def test_vmap_of_a_pure_function_leaves_the_key_alone():
    rng = br.RandomState(19)
    key = rng.value
    vmap(lambda x: x * 2)(jnp.ones(3))
    np.testing.assert_array_equal(rng.value, key)


def test_vmap_new_states_initialises_each_lane_with_its_own_draw():
    br.seed(20)
    key = br.get_key()
    made = []

    @vmap_new_states(axis_size=4)
    def init():
        made.append(brainstate.HiddenState(br.normal(size=(3,))))

    init()
    assert made[0].value.shape == (4, 3) and _distinct_rows(made[0].value)
    np.testing.assert_array_equal(br.get_key(), jax.random.split(key, 5)[0])
    made[0].value = made[0].value + 1.0  # an ordinary state afterwards


def test_vmap_new_states_creating_random_states_batches_their_keys():
    made = []

    @vmap_new_states(axis_size=3)
    def init():
        made.append(br.RandomState(br.split_key()))

    init()
    keys = made[0].value
    assert keys.shape == (3, 2) and _distinct_rows(keys)


# --- checkpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make_key", [jax.random.PRNGKey, jax.random.key], ids=["raw", "typed"])
def test_checkpoints_save_and_restore_keys(tmp_path, make_key):
    from brainstate import checkpoint

    class Model(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            self.rng = br.RandomState(make_key(1))
            self.w = brainstate.ParamState(jnp.ones(2))

    model = Model()
    model.rng.normal(size=2)
    path = tmp_path / "model.ckpt"
    checkpoint.save(path, model)
    expected = model.rng.normal(size=(4,))

    other = Model()
    result = checkpoint.load(path, other)
    assert result.complete
    assert other.rng.value.dtype == model.rng.value.dtype
    np.testing.assert_allclose(other.rng.normal(size=(4,)), expected, rtol=1e-6)


def test_checkpoint_of_a_typed_key_refuses_a_raw_key_target(tmp_path):
    from brainstate import checkpoint

    checkpoint.save(tmp_path / "k.ckpt", {("rng",): br.RandomState(jax.random.key(0))})
    with pytest.raises(checkpoint.CheckpointMismatchError, match="rng"):
        checkpoint.load(tmp_path / "k.ckpt", {("rng",): br.RandomState(0)})


def test_vmap_splits_a_declared_random_state_that_holds_one_key():
    # declaring a single-key random state (e.g. via model.states()) does not opt out: there is
    # no axis to map, so it is split per lane like an undeclared one
    rng = br.RandomState(21)
    w = brainstate.State(jnp.zeros((2, 3)))
    key = rng.value

    def lane():
        w.value = w.value + rng.normal(size=(3,))

    vmap(lane, in_states={0: {"w": w, "rng": rng}})()
    assert _distinct_rows(w.value)
    np.testing.assert_array_equal(rng.value, jax.random.split(key, 3)[0])
    typed = br.RandomState(jax.random.key(0))
    out = vmap(lambda x: x + typed.uniform(), in_states=typed, out_states=typed)(jnp.zeros(3))
    assert len(set(np.asarray(out).tolist())) == 3 and typed.value.shape == ()


def test_vmap_replans_when_a_declared_random_state_switches_to_per_lane_keys():
    rng = br.RandomState(22)
    f = vmap(lambda x: x + rng.uniform(), in_states=rng)
    split_out = f(jnp.zeros(3))
    assert len(set(np.asarray(split_out).tolist())) == 3
    with brainstate.check_state_value_tree(False):
        rng.value = jnp.stack([jax.random.PRNGKey(4)] * 3)
    same = f(jnp.zeros(3))
    assert len(set(np.asarray(same).tolist())) == 1
    assert rng.value.shape == (3, 2)
