"""RandomState and the default stream: keys, seeds, splitting, backups and their errors."""

from __future__ import annotations

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
import brainstate.random as br
from brainstate import StateSignatureError
from brainstate.transform import jit


def _data(key):
    return np.asarray(jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
                      else key)


# --- construction and key kinds ---------------------------------------------------------------


def test_int_seed_gives_the_raw_key_of_jax_prngkey():
    rng = br.RandomState(42)
    assert rng.value.dtype == jnp.uint32 and rng.value.shape == (2,)
    np.testing.assert_array_equal(rng.value, jax.random.PRNGKey(42))


def test_typed_key_is_kept_typed():
    key = jax.random.key(3)
    rng = br.RandomState(key)
    assert rng.value.dtype == key.dtype and rng.value.shape == ()
    x = rng.normal(size=(4,))
    assert x.shape == (4,) and rng.value.dtype == key.dtype


def test_raw_key_array_and_numpy_integer_seed_are_accepted():
    raw = br.RandomState(jax.random.PRNGKey(5))
    np.testing.assert_array_equal(raw.value, jax.random.PRNGKey(5))
    from_np = br.RandomState(np.int64(5))
    np.testing.assert_array_equal(from_np.value, jax.random.PRNGKey(5))
    from_array = br.RandomState(np.array([5]))
    np.testing.assert_array_equal(from_array.value, jax.random.PRNGKey(5))


def test_unseeded_states_follow_numpys_global_generator():
    np.random.seed(7)
    a = br.RandomState()
    np.random.seed(7)
    b = br.RandomState()
    np.testing.assert_array_equal(a.value, b.value)
    assert a.value.shape == (2,) and a.value.dtype == np.uint32
    c = br.RandomState()
    assert not np.array_equal(a.value, c.value)


def test_default_is_a_random_state_and_default_rng_returns_it():
    assert isinstance(br.DEFAULT, br.RandomState)
    assert isinstance(br.DEFAULT, brainstate.State)
    assert br.default_rng() is br.DEFAULT
    other = br.default_rng(3)
    assert other is not br.DEFAULT
    np.testing.assert_array_equal(other.value, jax.random.PRNGKey(3))


def test_public_module_path_and_repr():
    assert br.RandomState.__module__ == "brainstate.random"
    assert repr(br.RandomState(0)) == "RandomState([0, 0])"
    assert repr(br.RandomState(jax.random.key(0))) == "RandomState([0, 0])"


@pytest.mark.parametrize("bad", ["seed", 1.5, [1, 2, 3], True])
def test_bad_seed_types_raise_type_error(bad):
    with pytest.raises(TypeError, match="integer seed or a PRNG key"):
        br.RandomState(bad)


def test_out_of_range_seed_and_batched_key_raise_value_error():
    with pytest.raises(ValueError, match="out of range"):
        br.RandomState(2 ** 70)
    with pytest.raises(ValueError, match="single key"):
        br.RandomState(jax.random.split(jax.random.PRNGKey(0), 3))


def test_float_key_array_is_refused():
    with pytest.raises(TypeError, match=r"shape=\(2,\) dtype=float32"):
        br.RandomState(jnp.zeros(2, jnp.float32))


# --- the key as a state -------------------------------------------------------------------------


def test_each_draw_splits_the_key_once_through_the_value():
    rng = br.RandomState(0)
    key = rng.value
    new, sub = jax.random.split(key)
    x = rng.normal(size=(3,))
    np.testing.assert_array_equal(rng.value, new)
    np.testing.assert_allclose(x, jax.random.normal(sub, (3,)), rtol=1e-6)


def test_draws_fire_read_and_write_hooks():
    rng = br.RandomState(0)
    seen = []
    rng.register_hook("read", lambda ctx: seen.append("read"))
    rng.register_hook("write_after", lambda ctx: seen.append("write"))
    rng.uniform()
    assert seen == ["read", "write"]


def test_a_wrong_shape_or_dtype_key_written_to_value_raises():
    rng = br.RandomState(0)
    with pytest.raises(StateSignatureError, match=r"shape=\(2,\) dtype=uint32"):
        rng.value = jnp.zeros(3, jnp.uint32)
    with pytest.raises(StateSignatureError, match="signature"):
        rng.value = jnp.zeros(2, jnp.int32)
    with pytest.raises(StateSignatureError, match="signature"):
        rng.value = jax.random.key(0)  # a typed key into a raw-key state
    typed = br.RandomState(jax.random.key(0))
    with pytest.raises(StateSignatureError, match="signature"):
        typed.value = jax.random.PRNGKey(0)
    np.testing.assert_array_equal(rng.value, jax.random.PRNGKey(0))  # nothing changed


def test_explicit_key_leaves_the_state_untouched():
    rng = br.RandomState(0)
    before = rng.value
    a = rng.normal(size=(3,), key=1)
    b = rng.normal(size=(3,), key=jax.random.PRNGKey(1))
    c = rng.normal(size=(3,), key=jax.random.key(1))
    np.testing.assert_array_equal(rng.value, before)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(a, c, rtol=1e-6)
    np.testing.assert_allclose(a, jax.random.normal(jax.random.PRNGKey(1), (3,)), rtol=1e-6)


def test_explicit_batched_or_bad_key_raises():
    with pytest.raises(ValueError, match="single PRNG key"):
        br.normal(size=2, key=jax.random.split(jax.random.PRNGKey(0), 2))
    with pytest.raises(TypeError, match="key="):
        br.normal(size=2, key="abc")


# --- seeding ------------------------------------------------------------------------------------


def test_seed_reproduces_the_stream():
    rng = br.RandomState(0)
    rng.seed(11)
    a = rng.rand(5)
    rng.seed(11)
    np.testing.assert_array_equal(rng.rand(5), a)
    rng.seed()
    assert not np.array_equal(rng.rand(5), a)


def test_seed_keeps_the_states_key_kind():
    typed = br.RandomState(jax.random.key(0))
    typed.seed(4)
    assert typed.value.dtype == jax.random.key(0).dtype
    np.testing.assert_array_equal(_data(typed.value), _data(jax.random.key(4)))
    typed.seed(jax.random.PRNGKey(9))  # a raw key is wrapped
    np.testing.assert_array_equal(_data(typed.value), _data(jax.random.PRNGKey(9)))
    typed.seed()
    assert typed.value.dtype == jax.random.key(0).dtype
    raw = br.RandomState(0)
    raw.seed(jax.random.key(6))  # a typed key is unwrapped
    np.testing.assert_array_equal(raw.value, jax.random.PRNGKey(6))
    raw.set_key(8)
    np.testing.assert_array_equal(raw.value, jax.random.PRNGKey(8))


def test_seed_refuses_a_key_of_another_implementation():
    typed = br.RandomState(jax.random.key(0))
    with pytest.raises(ValueError, match="implementation"):
        typed.seed(jax.random.key(1, impl="rbg"))
    raw = br.RandomState(0)
    with pytest.raises(ValueError, match="raw uint32"):
        raw.seed(jax.random.key(1, impl="rbg"))


def test_module_seed_also_seeds_numpy_and_validates_first():
    br.seed(123)
    a, na = br.rand(3), np.random.rand()
    br.seed(123)
    np.testing.assert_array_equal(br.rand(3), a)
    assert np.random.rand() == na
    state = np.random.get_state()
    with pytest.raises(TypeError, match="integer seed"):
        br.seed(1.5)
    assert np.random.get_state()[1].tolist() == state[1].tolist()


def test_seed_context_restores_the_previous_key_and_numpy_state():
    br.seed(0)
    before = br.get_key()
    np_before = np.random.get_state()[1].copy()
    with br.seed_context(42):
        a = br.rand(2)
        np.random.rand()
    np.testing.assert_array_equal(br.get_key(), before)
    np.testing.assert_array_equal(np.random.get_state()[1], np_before)
    with br.seed_context(42):
        np.testing.assert_array_equal(br.rand(2), a)


def test_seed_context_restores_on_error():
    br.seed(0)
    before = br.get_key()
    with pytest.raises(RuntimeError, match="boom"):
        with br.seed_context(1):
            br.rand(2)
            raise RuntimeError("boom")
    np.testing.assert_array_equal(br.get_key(), before)


def test_get_set_key_and_key_data():
    br.set_key(jax.random.PRNGKey(17))
    np.testing.assert_array_equal(br.get_key(), jax.random.PRNGKey(17))
    np.testing.assert_array_equal(br.get_key_data(), jax.random.PRNGKey(17))
    br.set_key(5)
    np.testing.assert_array_equal(br.get_key(), jax.random.PRNGKey(5))
    with pytest.raises(TypeError, match="set_key"):
        br.set_key("five")


# --- splitting, backups, clones -----------------------------------------------------------------


def test_split_key_advances_once():
    rng = br.RandomState(0)
    key = rng.value
    one = rng.split_key()
    new, sub = jax.random.split(key)
    np.testing.assert_array_equal(one, sub)
    np.testing.assert_array_equal(rng.value, new)
    keys = rng.split_key(3)
    ref = jax.random.split(new, 4)
    np.testing.assert_array_equal(keys, ref[1:])
    np.testing.assert_array_equal(rng.value, ref[0])
    assert rng.split_keys(2).shape == (2, 2)


@pytest.mark.parametrize("bad, err", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                      ("2", TypeError), (True, TypeError)])
def test_split_key_refuses_bad_counts(bad, err):
    rng = br.RandomState(0)
    before = rng.value
    with pytest.raises(err, match="positive integer"):
        rng.split_key(bad)
    with pytest.raises(err, match="positive integer"):
        br.split_keys(bad)
    np.testing.assert_array_equal(rng.value, before)


def test_module_split_key_uses_default():
    br.seed(3)
    key = br.get_key()
    sub = br.split_key()
    np.testing.assert_array_equal(sub, jax.random.split(key)[1])
    assert br.split_keys(4).shape == (4, 2)


def test_backup_and_restore_rewind_the_key():
    rng = br.RandomState(0)
    before = rng.value
    rng.split_key(backup=True)
    rng.rand(3)
    rng.restore_key()
    np.testing.assert_array_equal(rng.value, before)
    with pytest.raises(ValueError, match="no key is backed up"):
        rng.restore_key()
    rng.backup_key()
    with pytest.raises(ValueError, match="already backed up"):
        rng.backup_key()
    rng.restore_key()


def test_module_restore_key():
    br.seed(1)
    before = br.get_key()
    br.split_key(2, backup=True)
    br.restore_key()
    np.testing.assert_array_equal(br.get_key(), before)


def test_backup_is_not_part_of_the_state_snapshot():
    rng = br.RandomState(0)
    rng.backup_key()
    ref = rng.to_state_ref()
    assert "_backup" not in ref.get_metadata()
    rng.restore_key()


def test_self_assign_multi_keys_rebinds_and_restore_rebinds_back():
    rng = br.RandomState(0)
    before = rng.value
    rng.self_assign_multi_keys(4)
    assert rng.value.shape == (4, 2)
    np.testing.assert_array_equal(rng.value, jax.random.split(before, 4))
    rng.restore_key()
    np.testing.assert_array_equal(rng.value, before)
    assert rng.normal(size=2).shape == (2,)


def test_clone_is_independent_and_advances_the_source():
    rng = br.RandomState(0)
    key = rng.value
    twin = rng.clone()
    assert type(twin) is br.RandomState and twin is not rng
    np.testing.assert_array_equal(twin.value, jax.random.split(key)[1])
    assert not np.array_equal(twin.rand(3), rng.rand(3))
    made = br.clone_rng(5)
    np.testing.assert_array_equal(made.value, jax.random.PRNGKey(5))
    assert br.clone_rng(clone=False) is br.DEFAULT


def test_subclass_clone_keeps_its_class():
    class MyRandom(br.RandomState):
        pass

    assert type(MyRandom(1).clone()) is MyRandom


# --- reproducibility eager and compiled -------------------------------------------------------


def test_same_seed_same_numbers_eager_and_under_jit():
    def draws(rng):
        return rng.normal(size=(3,)), rng.uniform(size=(2,)), rng.randint(0, 10, size=(4,))

    rng = br.RandomState(9)
    eager = draws(rng)
    eager_key = rng.value
    rng.seed(9)
    compiled = jit(lambda: draws(rng))()
    for a, b in zip(eager, compiled):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_array_equal(rng.value, eager_key)


def test_environment_dtypes_are_read_at_draw_time():
    import brainstate.environ as environ

    rng = br.RandomState(0)
    assert rng.normal(size=2).dtype == jnp.float32
    with environ.context(precision=16):
        assert rng.normal(size=2).dtype == jnp.float16
        assert rng.randint(5, size=2).dtype == jnp.int16
        assert br.rand(2).dtype == jnp.float16
    assert rng.randint(5, size=2).dtype == jnp.int32


def test_state_pickles_with_its_key():
    rng = br.RandomState(4)
    rng.rand(2)
    back = pickle.loads(pickle.dumps(rng))
    assert type(back) is br.RandomState
    np.testing.assert_array_equal(back.value, rng.value)
    np.testing.assert_array_equal(back.rand(3), rng.rand(3))


def test_unseeded_state_holds_a_host_key_until_its_first_draw():
    # no JAX work at construction (DEFAULT is built at import); the first draw, compiled or
    # not, replaces the host key with a device key of the same signature
    rng = br.RandomState()
    assert type(rng.value) is np.ndarray
    first = jit(lambda: rng.normal(size=(2,)))()
    assert isinstance(rng.value, jax.Array) and rng.value.shape == (2,)
    assert first.shape == (2,) and rng.normal(size=(2,)).shape == (2,)
    rng.seed()
    assert type(rng.value) is np.ndarray
    assert rng.uniform(size=3).shape == (3,)


def test_upstream_public_names_exist():
    names = """RandomState DEFAULT seed set_key get_key get_key_data default_rng split_key
    split_keys seed_context restore_key self_assign_multi_keys clone_rng rand randint
    random_integers randn random random_sample ranf sample choice permutation shuffle beta
    exponential gamma gumbel laplace logistic normal pareto standard_cauchy
    standard_exponential standard_gamma standard_normal standard_t uniform truncated_normal
    lognormal rayleigh triangular vonmises wald weibull weibull_min maxwell t loggamma poisson
    bernoulli binomial chisquare dirichlet geometric f hypergeometric logseries multinomial
    multivariate_normal negative_binomial noncentral_chisquare noncentral_f power zipf
    orthogonal categorical rand_like randint_like randn_like""".split()
    missing = [n for n in names if not hasattr(br, n)]
    assert not missing
    assert sorted(br.__all__) == sorted(set(br.__all__))
    assert set(names) <= set(br.__all__)


@pytest.mark.parametrize("make_key", [jax.random.PRNGKey, jax.random.key], ids=["raw", "typed"])
def test_seeding_with_a_traced_seed_inside_jit(make_key):
    rng = br.RandomState(make_key(0))

    @jit
    def reseed_and_draw(s):
        rng.seed(s)
        return rng.normal(size=(2,))

    compiled = reseed_and_draw(jnp.int32(5))
    np.testing.assert_allclose(compiled, br.RandomState(make_key(5)).normal(size=(2,)),
                               rtol=1e-6)
