"""Module-level key management on ``DEFAULT``: seeding, getting and splitting keys."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator

import jax
import jax.random as jr
import numpy as np

from brainstate.random._keys import check_count, is_typed_key
from brainstate.random._state import DEFAULT, RandomState

if TYPE_CHECKING:
    from brainstate.typing import SeedOrKey

__all__ = [
    "seed",
    "seed_context",
    "get_key",
    "get_key_data",
    "set_key",
    "split_key",
    "split_keys",
    "restore_key",
    "self_assign_multi_keys",
    "default_rng",
    "clone_rng",
]


def _seed_numpy(seed_or_key: Any) -> None:
    """Seed NumPy's global generator alike (an int seed, or a raw key's first word)."""
    if isinstance(seed_or_key, jax.core.Tracer) or is_typed_key(seed_or_key):
        return
    arr = np.asarray(seed_or_key)
    if arr.size == 1:
        np.random.seed(int(arr.reshape(())) % 2 ** 32)
    elif arr.size == 2:
        np.random.seed(int(arr.reshape(-1)[0]))


def seed(seed_or_key: SeedOrKey | None = None) -> None:
    """Seed the default random state (and NumPy's global generator alike).

    Parameters
    ----------
    seed_or_key : int or PRNG key, optional
        An integer seed or a key; None draws a fresh seed (NumPy is then left alone).

    Examples
    --------
    >>> import brainstate.random as br
    >>> br.seed(0); a = br.rand(2)
    >>> br.seed(0); b = br.rand(2)
    >>> bool((a == b).all())
    True
    """
    if seed_or_key is not None:
        DEFAULT.seed(seed_or_key)  # validates first, so a bad seed leaves NumPy untouched
        _seed_numpy(seed_or_key)
    else:
        DEFAULT.seed()


@contextlib.contextmanager
def seed_context(seed_or_key: SeedOrKey) -> Iterator[None]:
    """Seed the default state (and NumPy) for a ``with`` block; both are restored on exit.

    Examples
    --------
    >>> import brainstate.random as br
    >>> with br.seed_context(42):
    ...     a = br.rand(2)
    >>> with br.seed_context(42):
    ...     b = br.rand(2)
    >>> bool((a == b).all())
    True
    """
    old_key = DEFAULT.value
    old_np = np.random.get_state()
    try:
        seed(seed_or_key)
        yield
    finally:
        np.random.set_state(old_np)
        DEFAULT.value = old_key


def get_key() -> Any:
    """The default state's current key."""
    return DEFAULT.value


def get_key_data() -> Any:
    """The default state's current key as raw ``uint32`` data (``jax.random.key_data``)."""
    key = DEFAULT.value
    return jr.key_data(key) if is_typed_key(key) else key


def set_key(seed_or_key: SeedOrKey) -> None:
    """Replace the default state's key (an integer is taken as a seed)."""
    DEFAULT.set_key(seed_or_key)


def split_key(n: int | None = None, backup: bool = False) -> Any:
    """One new key (or ``n`` of them) split off the default state, which advances once."""
    return DEFAULT.split_key(n, backup=backup)


def split_keys(n: int, backup: bool = False) -> Any:
    """``n`` new keys split off the default state (``split_key(n)`` with ``n`` required)."""
    return DEFAULT.split_keys(check_count(n), backup=backup)


def restore_key() -> None:
    """Put back the default state's key saved by ``split_key(backup=True)``/``backup_key``."""
    DEFAULT.restore_key()


def self_assign_multi_keys(n: int, backup: bool = True) -> None:
    """Make the default state hold ``n`` keys (see ``RandomState.self_assign_multi_keys``)."""
    DEFAULT.self_assign_multi_keys(n, backup=backup)


def default_rng(seed_or_key: SeedOrKey | None = None) -> RandomState:
    """``DEFAULT`` itself (no argument), or a new ``RandomState`` from ``seed_or_key``."""
    return DEFAULT if seed_or_key is None else RandomState(seed_or_key)


def clone_rng(seed_or_key: SeedOrKey | None = None, clone: bool = True) -> RandomState:
    """A new state from ``seed_or_key``; else a clone of ``DEFAULT`` (or ``DEFAULT`` itself)."""
    if seed_or_key is not None:
        return RandomState(seed_or_key)
    return DEFAULT.clone() if clone else DEFAULT
