"""The dropout layers: statistics, scaling, channel masks, fit switch, states and transforms."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import nn
from brainstate.environ import context

ALL = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
       "DropoutFixed"]
SELU_SAT = -1.0507009873554804934193349852946 * 1.6732632423543772848170429916717


def _make(name, prob=0.5):
    cls = getattr(nn, name)
    return cls(4, prob) if name == "DropoutFixed" else cls(prob)


def test_every_upstream_class_is_exported():
    from brainstate.nn import _dropout

    assert sorted(_dropout.__all__) == sorted(ALL)
    for name in ALL:
        assert issubclass(getattr(brainstate.nn, name), nn.ElementWiseBlock)


# --- prob checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_prob_outside_0_1_is_rejected(name, bad):
    with pytest.raises(ValueError, match=rf"{name}: prob is the probability to keep an element "
                                         rf"and must be in \(0, 1\], got {bad}"):
        _make(name, bad)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", ["0.5", None, True])
def test_prob_of_wrong_type_is_rejected(name, bad):
    with pytest.raises(TypeError, match=rf"{name}: prob must be a"):
        _make(name, bad)


def test_prob_accepts_numpy_and_jax_scalars():
    assert nn.Dropout(np.float32(0.25)).prob == 0.25
    assert nn.Dropout(jnp.asarray(0.5)).prob == 0.5
    assert nn.Dropout(1).prob == 1.0


# --- the fit switch ------------------------------------------------------------------------


def _input(name):
    return {"Dropout1d": jnp.ones((2, 5, 4)), "Dropout2d": jnp.ones((2, 3, 3, 4)),
            "Dropout3d": jnp.ones((2, 2, 3, 3, 4))}.get(name, jnp.ones((3, 4)))


@pytest.mark.parametrize("name", ALL)
def test_identity_when_not_fitting(name):
    layer = _make(name)
    layer.init_state(batch_size=3)
    x = _input(name)
    with context(fit=False):
        assert layer(x) is x


@pytest.mark.parametrize("name", ALL)
def test_identity_when_prob_is_one(name):
    layer = _make(name, 1.0)
    layer.init_state(batch_size=3)
    x = _input(name)
    with context(fit=True):
        assert layer(x) is x


@pytest.mark.parametrize("name", ALL)
def test_missing_fit_raises_key_error_with_hint(name):
    layer = _make(name)
    layer.init_state(batch_size=3)
    with pytest.raises(KeyError, match=r"environ key 'fit' is not set") as info:
        layer(_input(name))
    assert any("drops inputs only while fitting" in note for note in info.value.__notes__)


# --- Dropout -------------------------------------------------------------------------------


@pytest.mark.parametrize("prob", [0.2, 0.5, 0.9])
def test_dropout_keep_rate_and_scaling(prob):
    brainstate.random.seed(0)
    x = jnp.full((200, 200), 2.0)
    with context(fit=True):
        y = np.asarray(nn.Dropout(prob)(x))
    kept = y != 0
    assert abs(kept.mean() - prob) < 0.01
    np.testing.assert_allclose(y[kept], 2.0 / prob, rtol=1e-6)
    assert abs(y.mean() - 2.0) < 0.1  # unbiased in expectation


def test_dropout_is_reproducible_with_a_seed_and_fresh_each_call():
    x = jnp.ones((20, 20))
    layer = nn.Dropout(0.5)
    with context(fit=True):
        brainstate.random.seed(3)
        a, b = layer(x), layer(x)
        brainstate.random.seed(3)
        c = layer(x)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_dropout_broadcast_dims_share_the_mask():
    brainstate.random.seed(1)
    with context(fit=True):
        y = np.asarray(nn.Dropout(0.5, broadcast_dims=(0,))(jnp.ones((6, 50))))
        z = np.asarray(nn.Dropout(0.5, broadcast_dims=-1)(jnp.ones((50, 6))))
    assert (y == y[:1]).all() and 0 < (y[0] != 0).sum() < 50
    assert (z == z[:, :1]).all() and 0 < (z[:, 0] != 0).sum() < 50


def test_dropout_rejects_bad_broadcast_dims():
    with pytest.raises(ValueError, match=r"Dropout: broadcast_dims axis 2 is out of range for an "
                                         r"input of shape \(3, 4\)"):
        with context(fit=True):
            nn.Dropout(0.5, broadcast_dims=(2,))(jnp.ones((3, 4)))
    with pytest.raises(TypeError, match=r"Dropout: broadcast_dims must be an int, got 0.5"):
        nn.Dropout(0.5, broadcast_dims=(0.5,))


def test_dropout_dtypes():
    with context(fit=True):
        assert nn.Dropout(0.5)(jnp.ones(8, jnp.float16)).dtype == jnp.float16
        yi = nn.Dropout(0.5)(jnp.ones(64, jnp.int32) * 3)
    assert yi.dtype == brainstate.environ.dftype()
    assert set(np.unique(np.asarray(yi)).tolist()) <= {0.0, 6.0}


def test_dropout_keeps_units():
    u = pytest.importorskip("brainunit")
    with context(fit=True):
        y = nn.Dropout(0.5)(jnp.ones(100) * u.mV)
    assert y.unit == u.mV
    assert set(np.unique(np.asarray(y.mantissa)).tolist()) <= {0.0, 2.0}


# --- channel dropout -----------------------------------------------------------------------

ND = [("Dropout1d", (8, 5, 16)), ("Dropout2d", (8, 3, 3, 16)), ("Dropout3d", (8, 2, 2, 2, 16))]


@pytest.mark.parametrize("name, shape", ND)
def test_channel_dropout_drops_whole_channels(name, shape):
    brainstate.random.seed(2)
    prob = 0.6
    with context(fit=True):
        y = np.asarray(getattr(nn, name)(prob)(jnp.ones(shape)))
    spatial = tuple(range(1, len(shape) - 1))
    zero = (y == 0).all(axis=spatial)  # (N, C)
    kept = np.isclose(y, 1 / prob).all(axis=spatial)
    assert (zero | kept).all()  # each (sample, channel) is dropped or kept as a whole
    assert 0.4 < kept.mean() < 0.8
    assert not (kept == kept[:1]).all()  # samples draw their own masks


@pytest.mark.parametrize("name, shape", ND)
def test_channel_dropout_unbatched_and_channel_first(name, shape):
    brainstate.random.seed(4)
    with context(fit=True):
        y = np.asarray(getattr(nn, name)(0.5)(jnp.ones(shape[1:])))
        spatial = tuple(range(len(shape) - 2))
        assert ((y == 0).all(axis=spatial) | (y == 2).all(axis=spatial)).all()
        cf = shape[1:][::-1]  # channels first
        y0 = np.asarray(getattr(nn, name)(0.5, channel_axis=0)(jnp.ones(cf)))
        rest = tuple(range(1, len(cf)))
        assert ((y0 == 0).all(axis=rest) | (y0 == 2).all(axis=rest)).all()


@pytest.mark.parametrize("name, shape", ND)
def test_channel_dropout_rejects_wrong_rank(name, shape):
    n = len(shape) - 1
    with pytest.raises(ValueError, match=rf"{name}: expected a {n}D input .* or a {n + 1}D "
                                         rf"batched one, but got a 2D input of shape \(3, 3\)"
                       if n != 2 else rf"{name}: expected .* got a 4D input"):
        layer = getattr(nn, name)(0.5)
        with context(fit=True):
            layer(jnp.ones((3, 3)) if n != 2 else jnp.ones((2, 2, 2, 2)))


@pytest.mark.parametrize("name, shape", ND)
def test_channel_dropout_rejects_bad_channel_axis(name, shape):
    n = len(shape) - 1
    with pytest.raises(ValueError, match=rf"{name}: channel_axis {n} is out of range for an "
                                         rf"unbatched input of {n} dimensions"):
        getattr(nn, name)(0.5, channel_axis=n)


# --- alpha dropout -------------------------------------------------------------------------


@pytest.mark.parametrize("prob", [0.5, 0.8, 0.95])
def test_alpha_dropout_keeps_mean_and_variance(prob):
    brainstate.random.seed(5)
    x = brainstate.random.randn(300, 300)
    with context(fit=True):
        y = nn.AlphaDropout(prob)(x)
    assert abs(float(y.mean())) < 0.03
    assert abs(float(y.std()) - 1.0) < 0.03


def test_alpha_dropout_affine_and_dropped_value():
    prob = 0.7
    m = nn.AlphaDropout(prob)
    a = 1 / math.sqrt(prob * (1 + (1 - prob) * SELU_SAT ** 2))
    np.testing.assert_allclose([m.alpha, m.a, m.b], [SELU_SAT, a, -a * (1 - prob) * SELU_SAT])
    brainstate.random.seed(6)
    x = jnp.full((1000,), 3.0)
    with context(fit=True):
        y = np.asarray(m(x))
    dropped = np.isclose(y, a * SELU_SAT + m.b, rtol=1e-5)
    kept = np.isclose(y, a * 3.0 + m.b, rtol=1e-5)
    assert (dropped | kept).all() and abs(kept.mean() - prob) < 0.05


def test_alpha_dropout_needs_dimensionless_input():
    u = pytest.importorskip("brainunit")
    with pytest.raises(TypeError, match=r"AlphaDropout needs a dimensionless input"):
        with context(fit=True):
            nn.AlphaDropout(0.5)(jnp.ones(3) * u.mV)


def test_feature_alpha_dropout_masks_channels():
    brainstate.random.seed(7)
    x = brainstate.random.randn(64, 10, 32)
    m = nn.FeatureAlphaDropout(0.6)
    with context(fit=True):
        y = np.asarray(m(x))
    sat = m.a * SELU_SAT + m.b
    dropped = np.isclose(y, sat, rtol=1e-5).all(axis=1)  # (N, C): all positions saturated
    kept = np.isclose(y, np.asarray(x) * m.a + m.b, rtol=1e-4, atol=1e-5).all(axis=1)
    assert (dropped | kept).all()
    assert 0.5 < kept.mean() < 0.7
    assert abs(float(y.mean())) < 0.05 and abs(float(y.std()) - 1.0) < 0.05


def test_feature_alpha_dropout_channel_axis():
    brainstate.random.seed(8)
    with context(fit=True):
        y = np.asarray(nn.FeatureAlphaDropout(0.5, channel_axis=1)(jnp.zeros((4, 6, 5))))
    assert (y == y[:, :, :1]).all()
    with pytest.raises(ValueError, match=r"FeatureAlphaDropout: channel_axis 0 names axis 0, "
                                         r"the batch axis"):
        nn.FeatureAlphaDropout(0.5, channel_axis=0)(jnp.zeros((4, 6)))
    with pytest.raises(ValueError, match=r"FeatureAlphaDropout: channel_axis 3 is out of range "
                                         r"for an input of shape \(4, 6\)"):
        nn.FeatureAlphaDropout(0.5, channel_axis=3)(jnp.zeros((4, 6)))


# --- DropoutFixed --------------------------------------------------------------------------


def test_dropout_fixed_mask_state_and_shape():
    layer = nn.DropoutFixed((5,), 0.5)
    assert layer.in_size == (5,) and layer.out_size == (5,)
    layer.init_state(batch_size=3)
    assert isinstance(layer.mask, brainstate.ShortTermState)
    assert layer.mask.value.shape == (3, 5) and layer.mask.value.dtype == jnp.bool_
    layer.init_state()
    assert layer.mask.value.shape == (5,)
    assert not hasattr(nn.DropoutFixed(5, 1.0), "mask")


def test_dropout_fixed_mask_is_fixed_across_calls():
    brainstate.random.seed(9)
    layer = nn.DropoutFixed(40, 0.5)
    layer.init_state(batch_size=4)
    x = jnp.ones((4, 40))
    with context(fit=True):
        y1, y2 = np.asarray(layer(x)), np.asarray(layer(2 * x))
    np.testing.assert_array_equal(y1 * 2, y2)
    np.testing.assert_array_equal(y1 != 0, np.asarray(layer.mask.value))
    assert set(np.unique(y1).tolist()) == {0.0, 2.0}


def test_dropout_fixed_reset_state_redraws_the_mask():
    brainstate.random.seed(10)
    layer = nn.DropoutFixed(40, 0.5)
    layer.init_state(batch_size=4)
    state = layer.mask
    before = np.asarray(layer.mask.value)
    layer.reset_state(batch_size=4)
    assert layer.mask is state  # same state, new value
    assert not np.array_equal(before, np.asarray(layer.mask.value))
    nn.reset_all_states(layer, batch_size=4)
    assert layer.mask is state
    layer.reset_state(batch_size=2)  # a new batch size re-binds the shape, as RNN cells do
    assert layer.mask is state and layer.mask.value.shape == (2, 40)


def test_dropout_fixed_reset_before_init_creates_the_mask():
    layer = nn.DropoutFixed(3, 0.5)
    layer.reset_state()
    assert layer.mask.value.shape == (3,)


def test_dropout_fixed_errors():
    layer = nn.DropoutFixed(6, 0.5)
    with context(fit=True):
        with pytest.raises(RuntimeError, match=r"DropoutFixed has no mask yet: it is drawn by "
                                               r"init_state"):
            layer(jnp.ones(6))
        layer.init_state(batch_size=2)
        with pytest.raises(ValueError, match=r"DropoutFixed: the input has shape \(3, 6\), but "
                                             r"the mask has shape \(2, 6\)"):
            layer(jnp.ones((3, 6)))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"DropoutFixed: batch_size must be a positive int "
                                             r"or None"):
            layer.init_state(batch_size=bad)


# --- inside transformations ----------------------------------------------------------------


def test_dropout_inside_jit_draws_a_fresh_mask_per_call():
    brainstate.random.seed(11)
    layer = nn.Dropout(0.5)
    f = brainstate.transform.jit(lambda x: layer(x))
    x = jnp.ones((50, 50))
    with context(fit=True):
        a, b = np.asarray(f(x)), np.asarray(f(x))
    assert not np.array_equal(a, b)
    assert abs((a != 0).mean() - 0.5) < 0.03


def test_dropout_fixed_inside_jit_keeps_its_mask():
    brainstate.random.seed(12)
    layer = nn.DropoutFixed(30, 0.5)
    layer.init_state(batch_size=2)
    f = brainstate.transform.jit(lambda x: layer(x))
    with context(fit=True):
        a, b = np.asarray(f(jnp.ones((2, 30)))), np.asarray(f(jnp.ones((2, 30))))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a != 0, np.asarray(layer.mask.value))


def test_dropout_inside_for_loop():
    brainstate.random.seed(13)
    fixed, fresh = nn.DropoutFixed(40, 0.5), nn.Dropout(0.5)
    fixed.init_state()
    xs = jnp.ones((6, 40))
    with context(fit=True):
        ys_fixed = np.asarray(brainstate.transform.for_loop(fixed, xs))
        ys_fresh = np.asarray(brainstate.transform.for_loop(fresh, xs))
    assert (ys_fixed == ys_fixed[:1]).all()  # one mask for the whole sequence
    assert not (ys_fresh == ys_fresh[:1]).all()  # a new mask at every step
    # resetting between sequences gives the next one its own mask
    fixed.reset_state()
    with context(fit=True):
        again = np.asarray(brainstate.transform.for_loop(fixed, xs))
    assert (again == again[:1]).all() and not np.array_equal(again[0], ys_fixed[0])


def test_fit_is_read_when_tracing():
    layer = nn.Dropout(0.5)
    f = brainstate.transform.jit(lambda x: layer(x))
    x = jnp.ones(20)
    with context(fit=False):
        np.testing.assert_array_equal(np.asarray(f(x)), np.asarray(x))
