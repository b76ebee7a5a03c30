"""Constraint transforms: round trips, ranges, gradients, log-dets, errors."""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from brainstate.nn._constraints import (
    AffineT,
    ChainT,
    ClipT,
    ExpT,
    IdentityT,
    LogT,
    MaskedT,
    NegativeT,
    NegSoftplusT,
    OrderedT,
    PositiveT,
    PowerT,
    ReluT,
    ScaledSigmoidT,
    SigmoidT,
    SimplexT,
    SoftplusT,
    SoftsignT,
    TanhT,
    Transform,
    UnitVectorT,
    save_exp,
)

F32 = jnp.float32
EPS32 = float(np.finfo(np.float32).eps)
PROPS = settings(max_examples=40, deadline=None)


def f32(v):
    return jnp.asarray(v, dtype=F32)


def fl(lo, hi):
    """float32-representable floats in [lo, hi] (hypothesis wants exact float32 limits)."""
    return st.floats(float(np.float32(lo)), float(np.float32(hi)), width=32)


# Elementwise properties do not depend on the shape; a few fixed shapes keep XLA from
# compiling every op for every length hypothesis would otherwise try.
def vectors(lo, hi, shapes=(8,)):
    return hnp.arrays(np.float32, st.sampled_from(shapes), elements=fl(lo, hi))


ANY_FINITE = hnp.arrays(
    np.float32, 8, elements=st.floats(width=32, allow_nan=False, allow_infinity=False)
)

# --- transform strategies -------------------------------------------------------------------

lower_st = fl(-50, 50)
interval_st = st.tuples(lower_st, fl(0.1, 50)).map(
    lambda p: (p[0], float(np.float32(p[0] + p[1])))
).filter(lambda b: b[0] < b[1])
beta_st = fl(0.1, 10)
scale_st = st.one_of(fl(0.05, 20), fl(-20, -0.05))

# (lower, upper) of the open range, for the bounds checks; None = unbounded on that side.
ELEMENTWISE = {
    "identity": st.just(IdentityT()),
    "affine": st.tuples(scale_st, lower_st).map(lambda p: AffineT(*p)),
    "softplus": lower_st.map(SoftplusT),
    "negsoftplus": lower_st.map(NegSoftplusT),
    "exp": lower_st.map(ExpT),
    "log": lower_st.map(LogT),
    "positive": st.just(PositiveT()),
    "negative": st.just(NegativeT()),
    "sigmoid": interval_st.map(lambda b: SigmoidT(*b)),
    "scaled_sigmoid": st.tuples(interval_st, beta_st).map(
        lambda p: ScaledSigmoidT(*p[0], beta=p[1])
    ),
    "tanh": interval_st.map(lambda b: TanhT(*b)),
    "softsign": interval_st.map(lambda b: SoftsignT(*b)),
}
BIJECTIVE = sorted(ELEMENTWISE)


def open_range(t):
    """(lower, upper) of ``t``'s open range as float32, None for an open side."""
    if isinstance(t, (SoftplusT, ExpT, LogT)):
        return np.float32(t.lower), None
    if isinstance(t, NegSoftplusT):
        return None, np.float32(t.upper)
    if isinstance(t, PositiveT):
        return np.float32(0.0), None
    if isinstance(t, NegativeT):
        return None, np.float32(0.0)
    if isinstance(t, (SigmoidT, ScaledSigmoidT, TanhT, SoftsignT)):
        return np.float32(t.lower), np.float32(t.upper)
    return None, None


def scalar_grad(t, x):
    return jax.vmap(jax.grad(lambda s: t.forward(s)))(x)


def bound_scale(t):
    lo, hi = open_range(t)
    return sum(abs(float(b)) for b in (lo, hi) if b is not None) + 1.0


# --- save_exp -------------------------------------------------------------------------------


def test_save_exp_caps_the_exponent():
    np.testing.assert_allclose(save_exp(f32(1000.0)), np.exp(np.float32(20.0)), rtol=1e-6)
    np.testing.assert_allclose(save_exp(f32(5.0), max_value=1.0), np.exp(1.0), rtol=1e-6)


def test_save_exp_is_exp_below_the_cap():
    x = f32([-3.0, 0.0, 2.5])
    np.testing.assert_allclose(save_exp(x), np.exp(np.asarray(x)), rtol=1e-6)


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", BIJECTIVE)
@PROPS
@given(data=st.data(), x=vectors(-10, 10))
def test_inverse_of_forward_recovers_x(name, data, x):
    t = data.draw(ELEMENTWISE[name])
    x = f32(x)
    y = t.forward(x)
    back = np.asarray(t.inverse(y), dtype=np.float64)
    # The tolerance is the conditioning of forward: a few ulps of the output (and of the
    # bounds it is computed against) divided by the local slope.
    slope = np.abs(np.asarray(scalar_grad(t, x), dtype=np.float64))
    yscale = np.abs(np.asarray(y, dtype=np.float64)) + bound_scale(t)
    with np.errstate(divide="ignore"):
        tol = 16 * EPS32 * yscale / slope + 1e-5 * (1 + np.abs(np.asarray(x)))
    np.testing.assert_array_less(np.abs(back - np.asarray(x)), tol)


@pytest.mark.parametrize(
    "t, x",
    [
        (SoftplusT(0.0), [-5.0, -1.0, 0.0, 2.0, 5.0, 60.0]),
        (NegSoftplusT(0.0), [-5.0, -1.0, 0.0, 2.0, 5.0]),
        (SigmoidT(0.0, 1.0), [-5.0, 0.0, 5.0]),
        (SigmoidT(-1.0, 1.0), [-2.0, 0.0, 2.0]),
        (TanhT(-2.0, 5.0), [-4.0, 0.0, 4.0]),
        (SoftsignT(-1.0, 2.0), [-4.0, 0.0, 4.0]),
        (ScaledSigmoidT(0.0, 1.0, beta=2.0), [-3.0, 0.0, 3.0]),
        (ExpT(0.5), [-2.0, 0.5, 2.0]),
        (LogT(1.0), [-3.0, 0.0, 3.0]),
        (PositiveT(), [-3.0, -1.0, 0.0, 1.0, 3.0]),
        (NegativeT(), [-3.0, -1.0, 0.0, 1.0, 3.0]),
        (AffineT(2.5, -3.0), [-2.0, 0.0, 1.2]),
        (PowerT(0.5), [0.1, 1.0, 4.0, 9.0]),
        (PowerT(2.0), [0.1, 1.0, 4.0]),
        (PowerT(-1.0), [0.1, 1.0, 4.0]),
        (PowerT(0.0), [0.1, 1.0, 4.0]),
        (OrderedT(), [0.0, 1.0, -0.5, 2.0]),
        (SimplexT(), [0.0, 1.0, -1.0]),
        (ChainT(SigmoidT(0.0, 1.0), AffineT(2.0, -1.0)), [-3.0, 0.0, 3.0]),
        (MaskedT(jnp.asarray([False, True, False, True]), SoftplusT(0.0)), [-1.0, -1.0, 2, 2]),
    ],
    ids=repr,
)
def test_round_trip_examples(t, x):
    x = f32(x)
    np.testing.assert_allclose(t.inverse(t.forward(x)), x, rtol=1e-4, atol=1e-4)


def test_softplus_inverse_is_accurate_far_from_the_bound():
    # The old log(exp(z) - 1) form overflowed/clipped here; z + log(-expm1(-z)) does not.
    t = SoftplusT(0.0)
    y = f32([1e-30, 1e-6, 30.0, 100.0, 1e6])
    x = t.inverse(y)
    assert np.all(np.isfinite(np.asarray(x)))
    np.testing.assert_allclose(t.forward(x), y, rtol=1e-5)


# --- forward lands inside the range ---------------------------------------------------------


@pytest.mark.parametrize("name", BIJECTIVE)
@PROPS
@given(data=st.data(), x=ANY_FINITE)
def test_forward_stays_inside_the_open_range(name, data, x):
    t = data.draw(ELEMENTWISE[name])
    y = np.asarray(t.forward(f32(x)))
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y)) or name in ("identity", "affine")
    lo, hi = open_range(t)
    if lo is not None:
        assert np.all(y > lo), (t, x[y <= lo], y[y <= lo])
    if hi is not None:
        assert np.all(y < hi), (t, x[y >= hi], y[y >= hi])
    if name not in ("identity", "affine"):
        assert bool(jnp.all(t.check_in_range(y, strict=True)))
        assert np.all(np.isfinite(np.asarray(t.inverse(y))))


@pytest.mark.parametrize("name", BIJECTIVE)
@PROPS
@given(data=st.data(), x=ANY_FINITE)
def test_forward_gradient_is_finite(name, data, x):
    t = data.draw(ELEMENTWISE[name])
    if name == "affine":
        x = np.clip(x, -1e30, 1e30)
    g = jax.grad(lambda v: jnp.sum(t.forward(v)))(f32(x))
    assert np.all(np.isfinite(np.asarray(g)))


@PROPS
@given(lmbda=st.sampled_from([0.5, 2.0, -1.0, 0.0, 1e-12, 1.0]), x=vectors(1e-6, 1e6))
def test_power_forward_inside_range_with_finite_gradient(lmbda, x):
    t = PowerT(lmbda)
    y = t.forward(f32(x))
    assert bool(jnp.all(t.check_in_range(y, strict=True)))
    if lmbda > 1e-10:
        assert np.all(np.asarray(y) > -1.0 / lmbda)
    elif lmbda < -1e-10:
        assert np.all(np.asarray(y) < -1.0 / lmbda)
    g = jax.grad(lambda v: jnp.sum(t.forward(v)))(f32(x))
    assert np.all(np.isfinite(np.asarray(g)))


def test_saturated_outputs_are_nudged_inside_the_bounds():
    # These inputs round onto the bound in float32; forward must stay strictly inside so
    # that inverse(forward(x)) is finite.
    x = f32([-1e4, -200.0, 200.0, 1e4])
    for t in (SigmoidT(100.0, 101.0), TanhT(0.0, 1.0), SoftsignT(-1.0, 1.0)):
        y = np.asarray(t.forward(x))
        assert np.all(y > np.float32(t.lower)) and np.all(y < np.float32(t.upper)), t
        assert np.all(np.isfinite(np.asarray(t.inverse(y)))), t
    for t, bound in ((SoftplusT(0.0), 0.0), (ExpT(5.0), 5.0), (PositiveT(), 0.0)):
        y = np.asarray(t.forward(f32([-1e4, -200.0])))
        assert np.all(y > np.float32(bound)), t
        assert np.all(np.isfinite(np.asarray(t.inverse(y)))), t


def test_exp_family_saturates_above_twenty():
    for t in (ExpT(0.0), LogT(0.0), PositiveT()):
        y = t.forward(f32([20.0, 25.0]))
        assert float(y[0]) == float(y[1]) == float(save_exp(f32(20.0)))


def test_relu_and_clip_are_closed_and_not_bijective():
    x = f32([-2.0, -1.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(ReluT(1.0).forward(x), [1.0, 1.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(ReluT().inverse(ReluT().forward(x)), [0.0, 0.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(ClipT(-1.0, 1.5).forward(x), [-1.0, -1.0, 0.0, 1.0, 1.5])
    np.testing.assert_allclose(ClipT(-1.0, 1.5).inverse(f32([0.5, 7.0])), [0.5, 1.5])
    np.testing.assert_allclose(ClipT(0.0, np.inf).forward(x), [0.0, 0.0, 0.0, 1.0, 2.0])


# --- log |det J| ----------------------------------------------------------------------------

LADJ_CASES = [
    IdentityT(),
    AffineT(2.0, 1.0),
    AffineT(f32([2.0, -0.5, 3.0]), 0.0),
    SoftplusT(1.0),
    NegSoftplusT(-2.0),
    ExpT(0.5),
    LogT(0.0),
    PositiveT(),
    NegativeT(),
    SigmoidT(-1.0, 3.0),
    ScaledSigmoidT(0.0, 2.0, beta=3.0),
    TanhT(-2.0, 5.0),
    SoftsignT(0.0, 4.0),
    OrderedT(),
    ChainT(SigmoidT(0.0, 1.0), AffineT(2.0, -1.0)),
    ChainT(AffineT(0.5, 1.0), SoftplusT(0.0), ExpT(1.0)),
]


@pytest.mark.parametrize("t", LADJ_CASES, ids=repr)
@PROPS
@given(x=hnp.arrays(np.float32, 3, elements=fl(-4, 4)))
def test_log_abs_det_jacobian_matches_autodiff(t, x):
    x = f32(x)
    ladj = t.log_abs_det_jacobian(x, t.forward(x))
    assert ladj.shape == ()
    jac = jax.jacfwd(t.forward)(x)
    ref = jnp.linalg.slogdet(jac)[1]
    np.testing.assert_allclose(ladj, ref, rtol=1e-4, atol=1e-4)


@PROPS
@given(lmbda=st.sampled_from([0.5, 2.0, -1.0, 0.0]), x=hnp.arrays(
    np.float32, 3, elements=fl(0.1, 10)))
def test_power_log_abs_det_jacobian_matches_autodiff(lmbda, x):
    t = PowerT(lmbda)
    x = f32(x)
    ref = jnp.log(jnp.abs(jnp.diag(jax.jacfwd(t.forward)(x)))).sum()
    np.testing.assert_allclose(t.log_abs_det_jacobian(x, t.forward(x)), ref, rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("t", [IdentityT(), AffineT(2.0, 1.0), SoftplusT(0.0), ExpT(0.0),
                               SigmoidT(0.0, 1.0), PositiveT(),
                               ChainT(SoftplusT(0.0), AffineT(3.0, 0.0))], ids=repr)
def test_log_abs_det_jacobian_reduces_the_last_axis(t):
    x = jnp.zeros((2, 3), dtype=F32)
    assert t.log_abs_det_jacobian(x, t.forward(x)).shape == (2,)
    s = f32(0.3)
    ladj = t.log_abs_det_jacobian(s, t.forward(s))
    assert ladj.shape == ()
    ref = jnp.log(jnp.abs(jax.grad(t.forward)(s)))
    np.testing.assert_allclose(ladj, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("t", [ClipT(0.0, 1.0), ReluT(), SimplexT(), UnitVectorT(),
                               MaskedT(jnp.asarray([True]), SoftplusT(0.0))], ids=repr)
def test_log_abs_det_jacobian_not_implemented(t):
    with pytest.raises(NotImplementedError, match=type(t).__name__):
        t.log_abs_det_jacobian(f32([0.5]), f32([0.5]))


# --- vector transforms ----------------------------------------------------------------------


@PROPS
@given(x=hnp.arrays(np.float32, st.sampled_from([(1, 0), (1, 1), (2, 3), (3, 7)]),
                    elements=fl(-30, 30)))
def test_simplex_is_non_negative_sums_to_one_and_grows_the_last_axis(x):
    t = SimplexT()
    y = np.asarray(t.forward(f32(x)))
    assert y.shape == x.shape[:-1] + (x.shape[-1] + 1,)
    assert np.all(y >= 0)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=4 * EPS32 * y.shape[-1])
    assert t.inverse(y).shape == x.shape


@PROPS
@given(x=vectors(-8, 8, shapes=((1,), (3,), (7,))))
def test_simplex_round_trip(x):
    t = SimplexT()
    np.testing.assert_allclose(t.inverse(t.forward(f32(x))), x, atol=2e-4)


@PROPS
@given(x=vectors(-1e4, 1e4, shapes=((1,), (7,))))
def test_simplex_gradient_is_finite(x):
    g = jax.grad(lambda v: jnp.sum(SimplexT().forward(v) ** 2))(f32(x))
    assert np.all(np.isfinite(np.asarray(g)))


def test_simplex_inverse_clips_boundary_points_to_finite_logits():
    t = SimplexT()
    x = np.asarray(t.inverse(f32([1.0, 0.0, 0.0])))
    limit = np.log1p(-EPS32) - np.log(EPS32)
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(x[0], limit, rtol=1e-5)
    # 0 / 0 stick fractions are clipped to the same bounded logits.
    assert np.all(np.abs(x) <= limit * (1 + 1e-6))
    np.testing.assert_allclose(t.forward(t.inverse(f32([0.2, 0.3, 0.5]))), [0.2, 0.3, 0.5],
                               rtol=1e-5)


def test_simplex_matches_upstream_stick_breaking():
    x = f32([0.5, -0.5, 1.0])
    z = 1 / (1 + np.exp(-np.asarray(x, dtype=np.float64)))
    ref = np.append(z * np.concatenate([[1.0], np.cumprod(1 - z)[:-1]]), np.prod(1 - z))
    np.testing.assert_allclose(SimplexT().forward(x), ref, rtol=1e-6)


@PROPS
@given(x=hnp.arrays(np.float32, st.sampled_from([(1, 1), (1, 4), (3, 6)]),
                    elements=fl(-10, 10)))
def test_ordered_output_is_increasing_and_round_trips(x):
    t = OrderedT()
    y = np.asarray(t.forward(f32(x)))
    assert y.shape == x.shape
    assert np.all(np.diff(y, axis=-1) > 0)
    assert bool(jnp.all(t.check_in_range(y, strict=True)))
    back = np.asarray(t.inverse(y), dtype=np.float64)
    # Each gap is a difference of outputs: a few ulps of max|y| over its softplus slope.
    slope = 1 / (1 + np.exp(-x.astype(np.float64)))
    tol = 16 * EPS32 * (np.abs(y).max() + 1) / slope
    tol[..., 0] = 1e-6 * (1 + np.abs(x[..., 0]))
    np.testing.assert_array_less(np.abs(back - x), tol)


def test_unit_vector_normalises_the_last_axis():
    t = UnitVectorT()
    np.testing.assert_allclose(t.forward(f32([3.0, 4.0])), [0.6, 0.8], rtol=1e-6)
    y = t.forward(f32([[1.0, 2.0, 2.0], [0.0, -5.0, 0.0]]))
    np.testing.assert_allclose(jnp.linalg.norm(y, axis=-1), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(t.inverse(y), y)
    g = jax.grad(lambda v: jnp.sum(t.forward(v)))(jnp.zeros(3, dtype=F32))
    assert np.all(np.isfinite(np.asarray(g)))


@pytest.mark.parametrize("t", [OrderedT(), SimplexT(), UnitVectorT()], ids=repr)
def test_vector_transforms_reject_scalars(t):
    with pytest.raises(ValueError, match="last axis"):
        t.forward(f32(1.0))


# --- composites -----------------------------------------------------------------------------


@PROPS
@given(x=vectors(-5, 5))
def test_chain_applies_left_to_right_and_inverts_right_to_left(x):
    x = f32(x)
    a, e = AffineT(2.0, 1.0), ExpT(0.0)
    np.testing.assert_allclose(ChainT(a, e).forward(x), e.forward(a.forward(x)), rtol=1e-6)
    np.testing.assert_allclose(ChainT(e, a).forward(x), a.forward(e.forward(x)), rtol=1e-6)
    y = ChainT(e, a).forward(x)
    np.testing.assert_allclose(ChainT(e, a).inverse(y), e.inverse(a.inverse(y)), rtol=1e-6)
    np.testing.assert_allclose(ChainT(e, a).inverse(y), x, atol=1e-4)


def test_chain_log_det_is_summed_along_the_chain():
    c = ChainT(SoftplusT(0.0), AffineT(3.0, 1.0))
    x = f32([0.2, -1.0])
    ref = SoftplusT(0.0).log_abs_det_jacobian(x, None) + AffineT(3.0, 1.0).log_abs_det_jacobian(
        SoftplusT(0.0).forward(x), None)
    np.testing.assert_allclose(c.log_abs_det_jacobian(x, c.forward(x)), ref, rtol=1e-6)


def test_empty_chain_is_the_identity():
    x = f32([1.0, -2.0])
    np.testing.assert_allclose(ChainT().forward(x), x)
    np.testing.assert_allclose(ChainT().inverse(x), x)
    assert ChainT().domain_error(f32([np.nan])) is None


def test_masked_transforms_only_masked_entries():
    mask = jnp.asarray([False, True, False, True])
    t = MaskedT(mask, SoftplusT(0.0))
    x = f32([-1.0, -1.0, 2.0, 2.0])
    y = np.asarray(t.forward(x))
    np.testing.assert_allclose(y[[0, 2]], [-1.0, 2.0])
    np.testing.assert_allclose(y[[1, 3]], np.log1p(np.exp([-1.0, 2.0])), rtol=1e-6)
    np.testing.assert_allclose(t.inverse(y), x, rtol=1e-5, atol=1e-6)


def test_masked_gradients_stay_finite_outside_the_inner_domain():
    mask = jnp.asarray([True, False])
    # PowerT(0.5) is NaN for negative inputs; the unmasked -4 must not leak NaN gradients.
    fwd = MaskedT(mask, PowerT(0.5))
    g = jax.grad(lambda v: jnp.sum(fwd.forward(v)))(f32([4.0, -4.0]))
    np.testing.assert_allclose(g, [0.5, 1.0], rtol=1e-6)
    # SigmoidT(0, 0.5).inverse(3.0) is NaN; the unmasked 3.0 must pass through untouched.
    inv = MaskedT(mask, SigmoidT(0.0, 0.5))
    x = inv.inverse(f32([0.25, 3.0]))
    np.testing.assert_allclose(x, [0.0, 3.0], atol=1e-6)
    g = jax.grad(lambda v: jnp.sum(inv.inverse(v)))(f32([0.25, 3.0]))
    assert np.all(np.isfinite(np.asarray(g)))


# --- range checks and domain_error ----------------------------------------------------------


def test_domain_error_names_transform_range_and_offending_values():
    t = SoftplusT(0.0)
    msg = t.domain_error(f32([-1.0, 1.0, -3.0]))
    assert msg is not None
    for part in ("SoftplusT(lower=0.0)", "(0.0, inf)", "2 of 3", "-1.0", "-3.0"):
        assert part in msg
    assert t.domain_error(f32([0.5, 2.0])) is None
    assert t.domain_error(2.0) is None


def test_boundary_values_pass_unless_strict():
    t = SoftplusT(0.0)
    assert t.domain_error(f32(0.0)) is None
    assert t.domain_error(f32(0.0), strict=True) is not None
    assert not bool(t.check_in_range(f32(0.0), strict=True))
    assert bool(t.check_in_range(f32(np.inf)))
    assert not bool(t.check_in_range(f32(np.inf), strict=True))


@pytest.mark.parametrize(
    "t, good, bad",
    [
        (SoftplusT(1.0), [1.5, 100.0], [0.5, np.nan]),
        (NegSoftplusT(1.0), [0.5, -100.0], [1.5]),
        (ExpT(0.0), [1e-3, float(np.exp(np.float32(20.0)))], [-1.0, 1e9]),
        (PositiveT(), [1e-3, 4e8], [-1e-3, 1e9]),
        (NegativeT(), [-1e-3], [1e-3]),
        (SigmoidT(0.0, 1.0), [0.5], [-0.1, 1.1, np.nan]),
        (TanhT(-1.0, 1.0), [0.0], [-2.0, 2.0]),
        (SoftsignT(-1.0, 1.0), [0.0], [1.5]),
        (ScaledSigmoidT(0.0, 2.0, beta=3.0), [1.0], [3.0]),
        (ClipT(0.0, 1.0), [0.0, 1.0], [1.5]),
        (ReluT(2.0), [2.0, 5.0], [1.0]),
        (PowerT(0.5), [-1.9, 3.0], [-2.5]),
        (PowerT(-1.0), [0.5], [1.5]),
        (IdentityT(), [np.nan, np.inf, -1.0], []),
        (AffineT(2.0, 1.0), [np.nan, -1e30], []),
    ],
    ids=repr,
)
def test_check_in_range_per_entry(t, good, bad):
    y = f32(good + bad)
    ok = np.asarray(t.check_in_range(y))
    assert ok.shape == y.shape
    assert ok.tolist() == [True] * len(good) + [False] * len(bad)
    assert (t.domain_error(y) is None) == (not bad)


def test_vector_range_checks_flag_whole_events():
    ordered = OrderedT().check_in_range(f32([[0.0, 1.0, 2.0], [0.0, 2.0, 1.0]]))
    assert np.asarray(ordered).tolist() == [[True] * 3, [False] * 3]
    simplex = SimplexT().check_in_range(f32([[0.2, 0.3, 0.5], [0.5, 0.6, -0.1], [0.2, 0.2, 0.2]]))
    assert np.asarray(simplex).tolist() == [[True] * 3, [False] * 3, [False] * 3]
    assert bool(jnp.all(SimplexT().check_in_range(f32([1.0, 0.0]))))
    assert not bool(jnp.all(SimplexT().check_in_range(f32([1.0, 0.0]), strict=True)))
    # Any finite vector is accepted: forward projects it onto the sphere.
    assert bool(jnp.all(UnitVectorT().check_in_range(f32([3.0, 4.0]))))
    assert not bool(jnp.all(UnitVectorT().check_in_range(f32([3.0, np.inf]))))


def test_chain_range_walks_the_steps_backwards():
    c = ChainT(SoftplusT(0.0), AffineT(2.0, 1.0))  # range (1, inf)
    assert np.asarray(c.check_in_range(f32([0.5, 1.0, 3.0]))).tolist() == [False, True, True]
    assert np.asarray(c.check_in_range(f32([1.0]), strict=True)).tolist() == [False]
    msg = c.domain_error(f32([0.5]))
    assert "ChainT(SoftplusT(lower=0.0), AffineT(scale=2.0, shift=1.0))" in msg
    # A shape-changing step collapses the flags to all-or-nothing.
    s = ChainT(SimplexT(), AffineT(2.0, 0.0))
    assert np.asarray(s.check_in_range(f32([0.8, 1.2]))).tolist() == [True, True]
    assert np.asarray(s.check_in_range(f32([0.8, 0.8]))).tolist() == [False, False]


def test_masked_range_only_restricts_masked_entries():
    t = MaskedT(jnp.asarray([True, False, True]), SoftplusT(0.0))
    assert np.asarray(t.check_in_range(f32([-1.0, -1.0, 1.0]))).tolist() == [False, True, True]


def test_domain_error_is_silent_under_tracing():
    t = SoftplusT(0.0)
    seen = []

    @jax.jit
    def f(y):
        seen.append(t.domain_error(y))
        return t.check_in_range(y)

    assert np.asarray(f(f32([-1.0, 1.0]))).tolist() == [False, True]
    assert seen == [None]


# --- construction errors --------------------------------------------------------------------


class _FakeQuantity:
    mantissa = 1.0
    unit = "mV"


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: AffineT(0.0, 1.0), ValueError, "a cannot be zero, must be invertible"),
        (lambda: AffineT(1e-9, 1.0), ValueError, "a cannot be zero, must be invertible"),
        (lambda: AffineT(f32([1.0, 0.0]), 0.0), ValueError, "a cannot be zero"),
        (lambda: AffineT(1.0, np.inf), ValueError, "shift must be finite"),
        (lambda: ScaledSigmoidT(0.0, 1.0, beta=0.0), ValueError, "beta must be a positive"),
        (lambda: ScaledSigmoidT(0.0, 1.0, beta=-1.0), ValueError, "beta must be a positive"),
        (lambda: ScaledSigmoidT(0.0, 1.0, beta=np.inf), ValueError, "positive finite"),
        (lambda: ScaledSigmoidT(0.0, 1.0, beta=np.nan), ValueError, "positive finite"),
        (lambda: SigmoidT(1.0, 0.0), ValueError, "lower < upper"),
        (lambda: SigmoidT(1.0, 1.0), ValueError, "lower < upper"),
        (lambda: SigmoidT(f32([0.0, 2.0]), 1.0), ValueError, "lower < upper"),
        (lambda: SigmoidT(0.0, np.inf), ValueError, "upper must be finite"),
        (lambda: TanhT(2.0, -2.0), ValueError, "TanhT"),
        (lambda: SoftsignT(0.0, 0.0), ValueError, "SoftsignT"),
        (lambda: ScaledSigmoidT(3.0, 1.0), ValueError, "ScaledSigmoidT"),
        (lambda: SoftplusT(np.nan), ValueError, "lower must be finite"),
        (lambda: NegSoftplusT(-np.inf), ValueError, "upper must be finite"),
        (lambda: ExpT(np.inf), ValueError, "ExpT: lower must be finite"),
        (lambda: LogT(np.nan), ValueError, "LogT: lower must be finite"),
        (lambda: ReluT(np.nan), ValueError, "lower_bound must be finite"),
        (lambda: ClipT(2.0, 1.0), ValueError, "lower <= upper"),
        (lambda: ClipT(np.nan, 1.0), ValueError, "must not be NaN"),
        (lambda: PowerT(np.nan), ValueError, "lmbda must be finite"),
        (lambda: PowerT("half"), TypeError, "lmbda must be a real scalar"),
        (lambda: ChainT(SoftplusT(0.0), "exp"), TypeError, "step 1 must be an instance of"),
        (lambda: MaskedT(jnp.asarray([True]), lambda v: v), TypeError, "instance of Transform"),
        (lambda: MaskedT(jnp.asarray([True]), IdentityT(), np.nan), ValueError, "safe_value"),
        (lambda: SoftplusT(_FakeQuantity()), TypeError, "unit-carrying bounds"),
        (lambda: SoftplusT("zero"), TypeError, "lower must be a number"),
        (lambda: SigmoidT(True, 2.0), TypeError, "lower must be a number"),
    ],
)
def test_constructor_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_bounds_accept_ints_numpy_and_arrays():
    assert SoftplusT(0).lower == 0.0 and isinstance(SoftplusT(0).lower, float)
    t = SigmoidT(np.zeros(2), np.asarray([1.0, 2.0]))
    y = t.forward(f32([0.0, 0.0]))
    assert y.dtype == F32
    np.testing.assert_allclose(y, [0.5, 1.0])
    with pytest.raises(ValueError, match="broadcast"):
        SigmoidT(np.zeros(2), np.ones(3))


# --- reprs, module, misc --------------------------------------------------------------------


@pytest.mark.parametrize(
    "t, text",
    [
        (IdentityT(), "IdentityT()"),
        (SoftplusT(0.0), "SoftplusT(lower=0.0)"),
        (NegSoftplusT(1.5), "NegSoftplusT(upper=1.5)"),
        (ExpT(0.5), "ExpT(lower=0.5)"),
        (LogT(1.0), "LogT(lower=1.0)"),
        (SigmoidT(0.0, 1.0), "SigmoidT(lower=0.0, upper=1.0)"),
        (ScaledSigmoidT(0.0, 1.0, beta=2.0), "ScaledSigmoidT(lower=0.0, upper=1.0, beta=2.0)"),
        (TanhT(-1.0, 1.0), "TanhT(lower=-1.0, upper=1.0)"),
        (SoftsignT(-1.0, 2.0), "SoftsignT(lower=-1.0, upper=2.0)"),
        (ClipT(0.0, 1.0), "ClipT(lower=0.0, upper=1.0)"),
        (AffineT(2.0, -1.0), "AffineT(scale=2.0, shift=-1.0)"),
        (ChainT(SigmoidT(0.0, 1.0), AffineT(2.0, 0.0)),
         "ChainT(SigmoidT(lower=0.0, upper=1.0), AffineT(scale=2.0, shift=0.0))"),
        (MaskedT(jnp.asarray([True, False]), SoftplusT(0.0)),
         "MaskedT(mask=..., transform=SoftplusT(lower=0.0))"),
        (ReluT(), "ReluT(lower_bound=0.0)"),
        (PositiveT(), "PositiveT()"),
        (NegativeT(), "NegativeT()"),
        (PowerT(lmbda=0.5), "PowerT(lmbda=0.5)"),
        (OrderedT(), "OrderedT()"),
        (SimplexT(), "SimplexT()"),
        (UnitVectorT(), "UnitVectorT()"),
        (SigmoidT(f32([0.0, 0.5]), 1.0), "SigmoidT(lower=[0. , 0.5], upper=1.0)"),
    ],
)
def test_repr(t, text):
    assert repr(t) == text
    assert type(t).__module__ == "brainstate.nn"


def test_transform_base_contract():
    assert Transform.__module__ == "brainstate.nn"
    with pytest.raises(TypeError):
        Transform()

    class Double(Transform):
        # No super().__init__(), as user subclasses in upstream tests do.
        def __init__(self):
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return 2 * x

        def inverse(self, y):
            return y / 2

    t = Double()
    assert float(t(f32(3.0))) == 6.0 and t.calls == 1  # __call__ follows the override
    assert repr(t) == "Double()"
    assert t.domain_error(f32([np.nan, -1.0])) is None
    with pytest.raises(NotImplementedError, match="Double does not implement"):
        t.log_abs_det_jacobian(f32(1.0), f32(2.0))


ALL_TRANSFORMS = [
    IdentityT(), AffineT(2.0, 1.0), SoftplusT(0.5), NegSoftplusT(0.5), ExpT(0.5), LogT(0.5),
    PositiveT(), NegativeT(), SigmoidT(-1.0, 2.0), ScaledSigmoidT(-1.0, 2.0, 3.0),
    TanhT(-1.0, 2.0), SoftsignT(-1.0, 2.0), ClipT(-1.0, 2.0), ReluT(0.5), PowerT(0.5),
    OrderedT(), SimplexT(), UnitVectorT(), ChainT(SoftplusT(0.0), AffineT(2.0, 1.0)),
    MaskedT(jnp.asarray([True, False, True]), SigmoidT(0.0, 1.0)),
]


@pytest.mark.parametrize("t", ALL_TRANSFORMS, ids=repr)
def test_jit_matches_eager_and_copies(t):
    x = f32([0.3, 1.7, 2.5])
    eager = t.forward(x)
    np.testing.assert_allclose(jax.jit(t.forward)(x), eager, rtol=1e-6)
    y = t.forward(x)
    np.testing.assert_allclose(jax.jit(t.inverse)(y), t.inverse(y), rtol=1e-6, atol=1e-7)
    # Calling inside jit first must not cache a tracer that later eager calls would hit.
    fresh = copy.deepcopy(t)
    jax.jit(fresh.forward)(x)
    np.testing.assert_allclose(fresh.forward(x), eager, rtol=1e-6)
    assert repr(fresh) == repr(t)


def test_traced_bounds_skip_validation():
    f = jax.jit(lambda lo, x: SoftplusT(lo).forward(x))
    np.testing.assert_allclose(f(f32(1.0), f32([0.0])), [1.0 + np.log(2.0)], rtol=1e-6)
    g = jax.jit(lambda lo, hi, x: SigmoidT(lo, hi).forward(x))
    np.testing.assert_allclose(g(f32(0.0), f32(2.0), f32([0.0])), [1.0], rtol=1e-6)


def test_inputs_are_promoted_to_float_and_keep_their_dtype():
    assert SoftplusT(0.0).forward(jnp.arange(3)).dtype == F32
    t = SigmoidT(f32([0.0, 1.0]), 3.0)  # float32 array bound
    y16 = t.forward(jnp.zeros(2, dtype=jnp.float16))
    assert y16.dtype == jnp.float16
    assert np.all(np.asarray(y16) > np.asarray([0.0, 1.0], dtype=np.float16))
    assert PositiveT().forward(jnp.full(2, -1e4, dtype=jnp.float16)).dtype == jnp.float16
    assert np.all(np.asarray(PositiveT().forward(jnp.full(2, -1e4, dtype=jnp.float16))) > 0)


def test_rebinding_a_bound_takes_effect():
    t = SoftplusT(0.0)
    assert float(t.forward(f32(-200.0))) > 0.0  # populates the cached kernel arguments
    t.lower = 5.0
    assert float(t.forward(f32(-200.0))) > 5.0
    np.testing.assert_allclose(t.inverse(t.forward(f32(1.0))), 1.0, rtol=1e-5)


def test_sequences_and_vmap_are_accepted():
    t = SigmoidT(f32([0.0, 1.0]), 3.0)
    np.testing.assert_allclose(t.forward([0.0, 0.0]), [1.5, 2.0])
    batch = jnp.zeros((4, 2), dtype=F32)
    np.testing.assert_allclose(jax.vmap(t.forward)(batch), np.tile([1.5, 2.0], (4, 1)))
    np.testing.assert_allclose(SimplexT().forward([[0.0], [0.0]]), [[0.5, 0.5]] * 2)
