"""PRNG keys: the two kinds a ``RandomState`` holds, seeds, and their validation.

A key is either *raw* (a ``uint32`` array of shape ``(2,)``, what ``jax.random.PRNGKey``
returns) or *typed* (shape ``()``, dtype ``key<impl>``, what ``jax.random.key`` returns). A
``RandomState`` keeps the kind (and, for typed keys, the implementation) of its first key, so its
signature never changes when it is re-seeded.
"""

from __future__ import annotations

import operator
from typing import Any

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

__all__ = [
    "is_typed_key",
    "is_single_key",
    "describe_key",
    "fresh_raw_key",
    "as_key",
    "as_draw_key",
    "check_count",
]

_RAW_SHAPE = (2,)
_SEED_MIN, _SEED_MAX = -(2 ** 63), 2 ** 64 - 1


def is_typed_key(x: Any) -> bool:
    """Whether ``x`` is a typed PRNG key array (dtype ``key<...>``)."""
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def _is_raw(x: Any) -> bool:
    shape = getattr(x, "shape", None)
    return (shape is not None and len(shape) >= 1 and tuple(shape[-1:]) == _RAW_SHAPE
            and getattr(x, "dtype", None) == np.uint32)


def is_single_key(x: Any) -> bool:
    """Whether ``x`` is one key: a typed key of shape ``()`` or a raw ``uint32[2]``."""
    if is_typed_key(x):
        return tuple(x.shape) == ()
    return _is_raw(x) and len(x.shape) == 1


def describe_key(x: Any) -> str:
    """``shape=(2,) dtype=uint32``-style text of a would-be key (error messages)."""
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None or dtype is None:
        return f"a {type(x).__name__} ({x!r})"
    return f"an array of shape={tuple(shape)} dtype={dtype}"


def fresh_raw_key() -> np.ndarray:
    """A raw key drawn from NumPy's global generator (no JAX call: safe at import time).

    Seeding NumPy (``np.random.seed``) therefore makes unseeded ``RandomState()`` reproducible.
    """
    return np.random.randint(0, 2 ** 32, size=2, dtype=np.uint32)


def _seed_value(seed: Any) -> Any:
    """The integer seed held by ``seed`` (int, NumPy integer, size-1 integer array), or None."""
    if isinstance(seed, (bool, np.bool_)):
        return None
    if isinstance(seed, (int, np.integer)):
        s = int(seed)
        if not _SEED_MIN <= s <= _SEED_MAX:
            raise ValueError(
                f"Seed {s} is out of range: a seed must lie in [-2**63, 2**64 - 1]. Reduce it "
                "(e.g. seed % 2**32)."
            )
        return s
    dtype = getattr(seed, "dtype", None)
    if dtype is not None and not is_typed_key(seed) and jnp.issubdtype(dtype, jnp.integer) \
            and int(np.prod(np.shape(seed))) == 1:
        return jnp.reshape(seed, ())
    return None


def _bad_key(seed_or_key: Any, where: str) -> TypeError:
    return TypeError(
        f"{where} needs an integer seed or a PRNG key, got {describe_key(seed_or_key)}. Pass an "
        "int, jax.random.PRNGKey(seed) (a uint32 array of shape (2,)) or jax.random.key(seed) "
        "(a typed key of shape ())."
    )


def _convert(key: Any, like: Any, where: str) -> Any:
    """``key`` (a single key of either kind) in the kind and implementation of ``like``."""
    if is_typed_key(like):
        impl = jr.key_impl(like)
        if is_typed_key(key):
            if jr.key_impl(key) != impl:
                raise ValueError(
                    f"{where}: the key uses the PRNG implementation {jr.key_impl(key)}, but this "
                    f"RandomState holds {impl} keys. Pass a key made with that implementation "
                    f"(jax.random.key(seed, impl={str(impl)!r}))."
                )
            return key
        try:
            return jr.wrap_key_data(jnp.asarray(key, jnp.uint32), impl=impl)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{where}: a raw uint32 key cannot be wrapped as a {impl} key ({exc}). Pass a "
                "typed key instead."
            ) from None
    if is_typed_key(key):
        data = jr.key_data(key)
        if tuple(data.shape) != _RAW_SHAPE:
            raise ValueError(
                f"{where}: the typed key's data has shape {tuple(data.shape)}, but this "
                "RandomState holds raw uint32[2] keys. Pass a threefry key or a raw key."
            )
        return data
    return key


def as_key(seed_or_key: Any, like: Any = None, where: str = "RandomState") -> Any:
    """One key from a seed or a key, in the kind of ``like`` (raw when ``like`` is None).

    Raises
    ------
    TypeError
        If ``seed_or_key`` is neither an integer seed nor a key.
    ValueError
        If the seed is out of range, or the key cannot take ``like``'s kind.
    """
    seed = _seed_value(seed_or_key)
    if seed is not None:
        if like is not None and is_typed_key(like):
            return jr.key(seed, impl=jr.key_impl(like))
        return jr.PRNGKey(seed)
    if not is_single_key(seed_or_key):
        if is_typed_key(seed_or_key) or _is_raw(seed_or_key):
            raise ValueError(
                f"{where} needs a single key, got {describe_key(seed_or_key)} (a batch of "
                "keys). Pass one key, e.g. keys[0]."
            )
        raise _bad_key(seed_or_key, where)
    return seed_or_key if like is None else _convert(seed_or_key, like, where)


def as_draw_key(key: Any) -> Any:
    """The key of an explicit ``key=`` argument of a draw (a seed or a single key)."""
    seed = _seed_value(key)
    if seed is not None:
        return jr.PRNGKey(seed)
    if is_single_key(key):
        return key
    if is_typed_key(key) or _is_raw(key):
        raise ValueError(
            f"key= must be a single PRNG key, got {describe_key(key)} (a batch of keys). Draw "
            "per key under jax.vmap, or pass one key."
        )
    raise _bad_key(key, "key=")


def check_count(n: Any, name: str = "n") -> int:
    """``n`` as a positive int (TypeError if it is not an integer, ValueError if < 1)."""
    if isinstance(n, (bool, np.bool_)):
        raise TypeError(f"{name} must be a positive integer, got {n!r}.")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"{name} must be a positive integer, got {n!r}.") from None
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n}.")
    return n
