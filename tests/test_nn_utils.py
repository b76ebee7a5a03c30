"""``nn.count_parameters`` and ``nn.clip_grad_norm``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate

nn = brainstate.nn


def _net():
    brainstate.random.seed(0)
    return nn.Sequential(nn.Linear(30, 40), jax.nn.relu, nn.Linear(40, 2, b_init=None))


def test_count_parameters_counts_and_prints(capsys):
    net = _net()
    total = nn.count_parameters(net)
    assert total == 30 * 40 + 40 + 40 * 2
    printed = capsys.readouterr().out
    assert "layers.0.weight" in printed and "1.24K" in printed and "1.32K" in printed
    table, again = nn.count_parameters(net, precision=0, return_table=True)
    assert again == total and "| Total" in table and "1K" in table


def test_count_parameters_of_an_empty_module(capsys):
    assert nn.count_parameters(nn.Module()) == 0
    assert "| Total   |          0 |" in capsys.readouterr().out


def test_count_parameters_suffixes(capsys):
    net = nn.Module()
    net.big = brainstate.ParamState(jnp.zeros((999_999,), jnp.int8))
    assert nn.count_parameters(net, precision=2) == 999_999
    assert "1.00M" in capsys.readouterr().out  # 999.999K rounds up to the next suffix


def test_count_parameters_errors():
    with pytest.raises(TypeError, match="count_parameters needs a brainstate.nn.Module, got "
                                        "dict"):
        nn.count_parameters({})
    with pytest.raises(TypeError, match="precision must be a non-negative int"):
        nn.count_parameters(nn.Module(), precision=-1)


GRADS = {"w": jnp.asarray([3.0, 4.0]), "b": jnp.asarray([12.0])}


def test_clip_l2_norm():
    clipped, norm = nn.clip_grad_norm(GRADS, max_norm=6.5, return_norm=True)
    np.testing.assert_allclose(norm, 13.0, rtol=1e-6)
    np.testing.assert_allclose(clipped["w"], [1.5, 2.0], rtol=1e-5)
    np.testing.assert_allclose(clipped["b"], [6.0], rtol=1e-5)
    joint = np.sqrt(sum(float(jnp.sum(v ** 2)) for v in clipped.values()))
    np.testing.assert_allclose(joint, 6.5, rtol=1e-5)
    # below the limit: unchanged
    same = nn.clip_grad_norm(GRADS, max_norm=100.0)
    np.testing.assert_allclose(same["w"], GRADS["w"])


@pytest.mark.parametrize("norm_type, expected", [
    (1, 19.0), (1.0, 19.0), ("inf", 12.0), (float("inf"), 12.0), ("-inf", 3.0),
    (None, 13.0), (3, (27 + 64 + 1728) ** (1 / 3)),
])
def test_clip_norm_types(norm_type, expected):
    _, norm = nn.clip_grad_norm(GRADS, 1.0, norm_type=norm_type, return_norm=True)
    np.testing.assert_allclose(norm, expected, rtol=1e-5)


def test_clip_keeps_dtypes_and_structure_under_jit():
    grads = {"a": jnp.ones(3, jnp.bfloat16), "b": [jnp.ones((2, 2), jnp.float32), None]}
    out, norm = brainstate.transform.jit(
        lambda g: nn.clip_grad_norm(g, 1.0, return_norm=True))(grads)
    assert out["a"].dtype == jnp.bfloat16 and out["b"][0].dtype == jnp.float32
    assert out["b"][1] is None
    np.testing.assert_allclose(norm, np.sqrt(7.0), rtol=1e-5)
    np.testing.assert_allclose(out["b"][0], np.full((2, 2), 1 / np.sqrt(7.0)), rtol=1e-4)


def test_clip_empty_tree_and_array_max_norm():
    tree, norm = nn.clip_grad_norm({}, 1.0, return_norm=True)
    assert tree == {} and float(norm) == 0.0
    out = nn.clip_grad_norm(GRADS, jnp.asarray(6.5))
    np.testing.assert_allclose(out["b"], [6.0], rtol=1e-5)


def test_clip_is_differentiable():
    g = jax.grad(lambda w: nn.clip_grad_norm({"w": w}, 1.0)["w"].sum())(jnp.asarray([3.0, 4.0]))
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("bad, err, msg", [
    ("fro", ValueError, "norm_type 'fro' is not understood"),
    (0, ValueError, "norm_type must be > 0, inf or -inf, got 0"),
    (-2.0, ValueError, "p <= 0 is not a norm"),
    (float("nan"), ValueError, "norm_type must be > 0"),
    (True, TypeError, "norm_type must be a number, 'inf', '-inf' or None, got True"),
    ([2], TypeError, "got \\[2\\] of type list"),
])
def test_clip_bad_norm_type(bad, err, msg):
    with pytest.raises(err, match=msg):
        nn.clip_grad_norm(GRADS, 1.0, norm_type=bad)


def test_clip_negative_max_norm():
    with pytest.raises(ValueError, match="max_norm must be >= 0, got -1"):
        nn.clip_grad_norm(GRADS, -1.0)
