"""Regularizers: loss formulas, priors, sampling, trainable hyper-parameters."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import gammaln

import brainstate
from brainstate import ParamState
from brainstate.nn import (
    BetaReg,
    CauchyReg,
    ChainedReg,
    DirichletReg,
    ElasticNetReg,
    EntropyReg,
    ExponentialReg,
    GammaReg,
    GaussianReg,
    GroupLassoReg,
    HorseshoeReg,
    HuberReg,
    InverseGammaReg,
    L1Reg,
    L2Reg,
    LogNormalReg,
    LogUniformReg,
    MaxNormReg,
    Module,
    OrthogonalReg,
    Param,
    Regularization,
    SigmoidT,
    SoftplusT,
    SpectralNormReg,
    SpikeAndSlabReg,
    StudentTReg,
    TotalVariationReg,
    UniformReg,
)
from brainstate.transform import grad, jit

F32 = jnp.float32
V = np.array([0.5, -2.0, 1.5, 0.0], np.float64)
POS = np.array([0.5, 1.0, 2.0], np.float64)
UNIT = np.array([0.2, 0.5, 0.9], np.float64)


def f32(x):
    return jnp.asarray(x, F32)


def close(got, want, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol, atol=atol)


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


# Expected losses written from the formulas in the regularisers' docstrings (numpy, float64).
CASES = [
    (L1Reg(0.1), V, lambda v: 0.1 * np.abs(v).sum()),
    (L1Reg(-0.5), V, lambda v: -0.5 * np.abs(v).sum()),  # not clamped (upstream)
    (L2Reg(0.1), V, lambda v: 0.1 * (v ** 2).sum()),
    (L2Reg(-0.5), V, lambda v: 0.0),  # relu(weight)
    (GaussianReg(1.0, 2.0, weight=0.5), V,
     lambda v: 0.5 * ((1 / (4 + 1e-8) + 1e-6) * ((v - 1) ** 2).sum()
                      - np.log(1 / (4 + 1e-8) + 1e-6))),
    (ElasticNetReg(0.2, 0.3, alpha=0.25), V,
     lambda v: 0.25 * 0.2 * np.abs(v).sum() + 0.75 * 0.3 * (v ** 2).sum()),
    (ElasticNetReg(1.0, 1.0, alpha=3.0), V, lambda v: np.abs(v).sum()),  # alpha clipped
    (HuberReg(0.5, delta=1.0), V,
     lambda v: 0.5 * np.where(np.abs(v) <= 1, 0.5 * v ** 2, np.abs(v) - 0.5).sum()),
    (GroupLassoReg(0.5, group_size=3), V,
     lambda v: 0.5 * (np.sqrt((v[:3] ** 2).sum() + 1e-8) + np.sqrt(v[3] ** 2 + 1e-8))),
    (TotalVariationReg(0.5, order=1), V, lambda v: 0.5 * np.abs(np.diff(v)).sum()),
    (TotalVariationReg(0.5, order=2), V, lambda v: 0.5 * np.abs(np.diff(v, 2)).sum()),
    (MaxNormReg(2.0, max_value=1.0), V,
     lambda v: 2.0 * max(np.sqrt((v ** 2).sum() + 1e-8) - 1.0, 0.0) ** 2),
    (MaxNormReg(2.0, max_value=10.0), V, lambda v: 0.0),
    (EntropyReg(0.5), V,
     lambda v: 0.5 * (softmax(v) * np.log(softmax(v) + 1e-8)).sum()),
    (EntropyReg(0.5, maximize=False), V,
     lambda v: -0.5 * (softmax(v) * np.log(softmax(v) + 1e-8)).sum()),
    (OrthogonalReg(0.5), V,
     lambda v: 0.5 * ((v.reshape(2, 2).T @ v.reshape(2, 2) - np.eye(2)) ** 2).sum()),
    (SpectralNormReg(1.0, max_value=1.0), V.reshape(2, 2),
     lambda v: max(np.linalg.svd(v, compute_uv=False)[0] - 1.0, 0.0) ** 2),
    (StudentTReg(0.5, df=3.0, scale=2.0), V,
     lambda v: 0.5 * ((2.0 * np.log1p((v / 2) ** 2 / 3)).sum()
                      + v.size * (np.log(2.0) + float(gammaln(1.5)) + 0.5 * np.log(3 * np.pi)
                                  - float(gammaln(2.0))))),
    (CauchyReg(0.5, scale=2.0), V,
     lambda v: 0.5 * (np.log1p((v / 2) ** 2).sum() + v.size * np.log(2.0))),
    (UniformReg(0.5, lower=-1.0, upper=1.0), V,
     lambda v: 0.5 * (np.maximum(-1 - v, 0) ** 2 + np.maximum(v - 1, 0) ** 2).sum()),
    (LogNormalReg(0.5, mu=0.1, sigma=2.0), POS,
     lambda v: 0.5 * (((np.log(v) - 0.1) ** 2 / 8 + np.log(v)).sum() + v.size * np.log(2.0))),
    (ExponentialReg(0.5, rate=2.0), POS, lambda v: 0.5 * 2.0 * v.sum()),
    (GammaReg(0.5, alpha=3.0, beta=2.0), POS,
     lambda v: 0.5 * ((-2.0 * np.log(v) + 2.0 * v).sum()
                      + v.size * (-3.0 * np.log(2.0) + math.lgamma(3.0)))),
    (BetaReg(0.5, a=2.0, b=3.0), UNIT,
     lambda v: 0.5 * ((-1.0 * np.log(v) - 2.0 * np.log1p(-v)).sum()
                      + v.size * (math.lgamma(2) + math.lgamma(3) - math.lgamma(5)))),
    (HorseshoeReg(0.5, tau=0.5), V,
     lambda v: 0.5 * (np.log1p((v / 0.5) ** 2).sum() + v.size * np.log(0.5))),
    (InverseGammaReg(0.5, alpha=3.0, beta=2.0), POS,
     lambda v: 0.5 * ((4.0 * np.log(v) + 2.0 / v).sum()
                      + v.size * (-3.0 * np.log(2.0) + math.lgamma(3.0)))),
    (LogUniformReg(0.5, lower=0.75, upper=1.5), POS,
     lambda v: 0.5 * np.log(np.clip(v, 0.75, 1.5)).sum()),
    (SpikeAndSlabReg(0.5, spike_scale=0.1, slab_scale=2.0, pi=0.3), V,
     lambda v: -0.5 * np.log(0.3 * np.exp(-0.5 * (v / 0.1) ** 2) / 0.1
                             + 0.7 * np.exp(-0.5 * (v / 2) ** 2) / 2 + 1e-8).sum()),
    (DirichletReg(0.5, alpha=3.0), V, lambda v: -0.5 * (2.0 * np.log(softmax(v) + 1e-8)).sum()),
    (ChainedReg(L1Reg(0.1), L2Reg(0.2), weight=2.0), V,
     lambda v: 2.0 * (0.1 * np.abs(v).sum() + 0.2 * (v ** 2).sum())),
]


@pytest.mark.parametrize("reg, value, expected", CASES,
                         ids=[f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES)])
def test_loss_matches_formula(reg, value, expected):
    got = reg.loss(f32(value))
    assert got.shape == () and got.dtype == F32
    close(got, expected(value), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("reg, value, expected", CASES[:6],
                         ids=[f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES[:6])])
def test_loss_under_jit_and_with_integer_input(reg, value, expected):
    close(jax.jit(reg.loss)(f32(value)), expected(value), rtol=2e-5, atol=2e-5)
    ints = np.array([1, -2, 3])
    close(reg.loss(ints), expected(ints.astype(np.float64)), rtol=2e-5, atol=2e-5)


def test_chained_empty():
    reg = ChainedReg()
    assert reg.loss(f32(V)) == 0.0 and reg.reset_value() == 0.0
    assert reg.sample_init((2, 3)).shape == (2, 3)


def test_chained_delegates_to_first():
    reg = ChainedReg(GaussianReg(2.0, 1.0), L1Reg(0.1))
    close(reg.reset_value(), 2.0)
    with pytest.raises(TypeError, match="argument 1 must be a Regularization"):
        ChainedReg(L1Reg(), "l2")


@pytest.mark.parametrize("reg, want", [
    (L1Reg(), 0.0), (L2Reg(), 0.0), (GaussianReg(1.5, 1.0), 1.5), (ElasticNetReg(), 0.0),
    (HuberReg(), 0.0), (GroupLassoReg(), 0.0), (TotalVariationReg(), 0.0), (MaxNormReg(), 0.0),
    (EntropyReg(), 0.0), (OrthogonalReg(), 0.0), (SpectralNormReg(), 0.0), (StudentTReg(), 0.0),
    (CauchyReg(), 0.0), (UniformReg(lower=1.0, upper=3.0), 2.0),
    (LogNormalReg(mu=1.0), math.e), (ExponentialReg(), 0.0),
    (GammaReg(alpha=3.0, beta=2.0), 1.0), (BetaReg(a=3.0, b=2.0), 2.0 / 3.0),
    (HorseshoeReg(), 0.0), (InverseGammaReg(alpha=3.0, beta=2.0), 0.5),
    (LogUniformReg(lower=1.0, upper=100.0), 10.0), (SpikeAndSlabReg(), 0.0),
    (DirichletReg(), 0.0),
])
def test_reset_value(reg, want):
    close(reg.reset_value(), want, rtol=1e-5)


ALL = [L1Reg(2.0), L2Reg(2.0), GaussianReg(1.0, 0.5), ElasticNetReg(), HuberReg(),
       GroupLassoReg(group_size=2), TotalVariationReg(), MaxNormReg(max_value=2.0), EntropyReg(),
       OrthogonalReg(), SpectralNormReg(max_value=2.0), StudentTReg(), CauchyReg(),
       UniformReg(lower=1.0, upper=2.0), LogNormalReg(), ExponentialReg(), GammaReg(),
       BetaReg(), HorseshoeReg(), InverseGammaReg(), LogUniformReg(), SpikeAndSlabReg(),
       DirichletReg(alpha=2.0), ChainedReg(GaussianReg(0.0, 1.0))]


@pytest.mark.parametrize("reg", ALL, ids=lambda r: type(r).__name__)
def test_sample_init_shape_dtype_and_key(reg):
    key = jax.random.key(3)
    a = reg.sample_init((3, 4), key=key)
    b = reg.sample_init((3, 4), key=key)
    assert a.shape == (3, 4) and a.dtype == jnp.result_type(float)
    assert bool(jnp.all(jnp.isfinite(a)))
    np.testing.assert_array_equal(a, b)
    assert reg.sample_init(5).shape == (5,)


@pytest.mark.parametrize("reg, check", [
    (GaussianReg(3.0, 0.5), lambda x: abs(x.mean() - 3.0) < 0.05 and abs(x.std() - 0.5) < 0.05),
    (L2Reg(2.0), lambda x: abs(x.std() - 0.5) < 0.05),  # exp(-w x^2): std 1/sqrt(2w)
    (L1Reg(2.0), lambda x: abs(np.abs(x).mean() - 0.5) < 0.05),  # Laplace scale 1/w
    (UniformReg(lower=1.0, upper=2.0), lambda x: x.min() >= 1.0 and x.max() <= 2.0),
    (GammaReg(alpha=3.0, beta=2.0), lambda x: abs(x.mean() - 1.5) < 0.1 and x.min() > 0),
    (BetaReg(a=2.0, b=2.0), lambda x: abs(x.mean() - 0.5) < 0.05 and 0 < x.min() <= x.max() < 1),
    (ExponentialReg(rate=2.0), lambda x: abs(x.mean() - 0.5) < 0.05 and x.min() >= 0),
    (LogUniformReg(lower=1.0, upper=100.0), lambda x: x.min() >= 1.0 and x.max() <= 100.0),
    (MaxNormReg(max_value=2.0), lambda x: np.linalg.norm(x) <= 2.0),
    (OrthogonalReg(), lambda x: True),
])
def test_sample_init_follows_the_prior(reg, check):
    x = np.asarray(reg.sample_init((4000,) if not isinstance(reg, OrthogonalReg) else (3, 3),
                                   key=jax.random.key(0)))
    assert check(x)


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
def test_orthogonal_sample_is_orthogonal(shape):
    reg = OrthogonalReg()
    w = np.asarray(reg.sample_init(shape, key=jax.random.key(1)), np.float64)
    assert w.shape == shape
    small = w.T @ w if shape[0] >= shape[1] else w @ w.T
    close(small, np.eye(min(shape)), atol=1e-5)
    if shape[0] >= shape[1]:
        assert float(reg.loss(f32(w))) < 1e-8


def test_sample_without_key_draws_fresh_values():
    reg = GaussianReg(0.0, 1.0)
    assert not np.array_equal(reg.sample_init(8), reg.sample_init(8))


# --- validation -----------------------------------------------------------------------------


def test_validation_errors():
    with pytest.raises(TypeError, match="group_size must be an int"):
        GroupLassoReg(group_size=2.0)
    with pytest.raises(TypeError, match="group_size must be an int"):
        GroupLassoReg(group_size=True)
    with pytest.raises(ValueError, match="positive integer"):
        GroupLassoReg(group_size=0)
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        TotalVariationReg(order=3)
    with pytest.raises(ValueError, match=r"GaussianReg: std must be finite and > 0"):
        GaussianReg(0.0, 0.0)
    with pytest.raises(ValueError, match=r"UniformReg: upper - lower must be > 0"):
        UniformReg(lower=1.0, upper=1.0)
    with pytest.raises(ValueError, match=r"SpikeAndSlabReg: pi must be in \[0, 1\]"):
        SpikeAndSlabReg(pi=1.5)
    with pytest.raises(ValueError, match="StudentTReg: df"):
        StudentTReg(df=-1.0)
    with pytest.raises(TypeError, match="L1Reg: weight must be a number"):
        L1Reg("heavy")
    with pytest.raises(TypeError, match="fit_hyper=True"):
        L2Reg(ParamState(f32(1.0)))


def test_base_class_is_abstract_and_a_module():
    reg = Regularization()
    assert isinstance(reg, Module) and not reg.fit_hyper
    for call in (lambda: reg.loss(1.0), lambda: reg.sample_init(2), reg.reset_value):
        with pytest.raises(NotImplementedError, match="Regularization must implement"):
            call()
    assert L1Reg.__module__ == "brainstate.nn" and Regularization.__module__ == "brainstate.nn"


# --- trainable hyper-parameters ---------------------------------------------------------------


@pytest.mark.parametrize("reg, names", [
    (GaussianReg(0.0, 1.0, fit_hyper=True), {"mean", "precision"}),
    (ElasticNetReg(fit_hyper=True), {"alpha"}),
    (HuberReg(fit_hyper=True), {"delta"}),
    (StudentTReg(fit_hyper=True), {"df", "scale"}),
    (GammaReg(fit_hyper=True), {"alpha", "beta"}),
    (SpikeAndSlabReg(fit_hyper=True), {"spike_scale", "slab_scale", "pi"}),
    (L1Reg(fit_hyper=True), set()),
    (L2Reg(fit_hyper=True), set()),
    (GaussianReg(0.0, 1.0), set()),
])
def test_fit_hyper_makes_param_states(reg, names):
    found = {path[-1] for path in reg.states(ParamState)}
    assert found == names
    assert not isinstance(getattr(reg, "weight", None), ParamState)


def test_hyper_parameters_train_with_the_param():
    m = Module()
    m.w = Param(f32([1.0, 2.0, 3.0]), reg=GaussianReg(0.0, 1.0, fit_hyper=True))
    params = m.states(ParamState)
    assert {p[0] for p in params} == {"w"} and len(params) == 3
    g = jit(grad(lambda: m.reg_loss(), grad_states=params))()
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in g.values())
    close(g[("w", "reg", "mean")], -2 * (1 / (1 + 1e-8) + 1e-6) * 6.0, rtol=1e-4)


def test_regularizer_in_a_param_sees_the_constrained_value():
    p = Param(f32([0.25, 0.75]), t=SigmoidT(0.0, 1.0), reg=BetaReg(a=2.0, b=2.0))
    close(p.reg_loss(), BetaReg(a=2.0, b=2.0).loss(f32([0.25, 0.75])), rtol=1e-5)
    q = Param(f32([2.0]), t=SoftplusT(0.0), reg=LogNormalReg(mu=0.0, sigma=1.0))
    close(q.reg_loss(), LogNormalReg().loss(f32([2.0])), rtol=1e-5)


def test_float64_values_under_x64():
    reg = GaussianReg(1.0, 2.0, fit_hyper=True)  # float32 hyper-parameters
    with jax.enable_x64(True):
        v = jnp.asarray(V, jnp.float64)
        loss = reg.loss(v)
        assert loss.dtype == jnp.float64
    close(loss, CASES[4][2](V) * 2.0, rtol=1e-5)


def test_public_names():
    for name in ("L1Reg", "L2Reg", "GaussianReg", "DirichletReg", "Regularization"):
        assert name in brainstate.nn.__all__
