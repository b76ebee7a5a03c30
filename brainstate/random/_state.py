"""``RandomState``: a ``State`` whose value is a PRNG key, and ``DEFAULT``, the process-wide one."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

import jax
import jax.random as jr
import numpy as np

from brainstate._state import State, check_state_value_tree
from brainstate.random._draws import DrawMethods
from brainstate.random._keys import (
    as_draw_key,
    as_key,
    check_count,
    describe_key,
    fresh_raw_key,
    is_single_key,
    is_typed_key,
)

if TYPE_CHECKING:
    from brainstate.typing import SeedOrKey

__all__ = ["RandomState", "DEFAULT"]

# The read-split-write of a key must not interleave between threads (two threads reading the
# same key would draw the same numbers from the shared DEFAULT). One lock for all states keeps
# RandomState free of per-instance attributes; the guarded region is a few microseconds.
_KEY_LOCK = threading.RLock()

# Backed-up keys live beside the state, not in it: an array in the instance dict would become
# metadata of the state's snapshot (TreefyState) and so part of treedefs.
_BACKUPS: "weakref.WeakKeyDictionary[RandomState, Any]" = weakref.WeakKeyDictionary()


class RandomState(DrawMethods, State):
    """A ``State`` holding a PRNG key, with the numpy-like draws of ``numpy.random``.

    Each draw without ``key=`` splits the held key once (``key, sub = split(key)``), writes the
    new ``key`` back through ``.value`` and samples with ``sub``. The key is therefore an
    ordinary read-and-written state: ``jit``, ``for_loop``/``scan``, ``while_loop`` and ``cond``
    carry it, so every call and every iteration draws fresh numbers, and the same seed gives the
    same numbers eagerly and compiled.

    Under ``brainstate.transform.vmap`` (and ``vmap_new_states``) a random state the function
    uses is split per lane: the call behaves as if ``lanes = rng.split_key(n)`` ran first and
    lane ``i`` drew from ``lanes[i]``. Lanes are independent, reproducible from the seed, and
    the state's key advances exactly once per call. To opt out, give the state one key per
    lane (:meth:`self_assign_multi_keys`) and declare it in ``in_states``: the function then
    maps those keys like any other state (a declared state holding a single key is still split
    per lane).

    Parameters
    ----------
    seed_or_key : int or PRNG key, optional
        An integer seed (giving a raw ``uint32[2]`` key, as ``jax.random.PRNGKey``), a raw key,
        or a typed key (``jax.random.key``). None draws a seed from NumPy's global generator.
        The key's kind (raw or typed, and the typed key's implementation) is kept for the
        state's life: re-seeding converts to it.

    Raises
    ------
    TypeError
        If ``seed_or_key`` is neither an integer nor a key.
    ValueError
        If it is a batch of keys or an out-of-range seed.

    Notes
    -----
    Differs from upstream: a key of the wrong shape or kind written to ``.value`` raises
    ``StateSignatureError`` (upstream accepted it); ``seed``/``set_key`` convert a key of the
    other kind instead. ``split_key(backup=True)`` backs up the key *before* the split, so
    ``restore_key`` rewinds it.

    Examples
    --------
    >>> import brainstate.random as br
    >>> rng = br.RandomState(42)
    >>> rng.normal(size=(2,)).shape
    (2,)
    >>> rng.seed(42)
    >>> bool((rng.rand(3) == br.RandomState(42).rand(3)).all())
    True
    """

    __module__ = "brainstate.random"

    def __init__(self, seed_or_key: SeedOrKey | None = None) -> None:
        if seed_or_key is None:
            key: Any = fresh_raw_key()
        else:
            key = as_key(seed_or_key, where="RandomState")
        super().__init__(key)

    def __repr__(self) -> str:
        v = self._value
        if isinstance(v, jax.core.Tracer):
            shown = f"traced {describe_key(v)}"
        else:
            try:
                shown = np.asarray(jr.key_data(v) if is_typed_key(v) else v).tolist()
            except Exception:  # a poisoned or deleted key: repr never raises
                shown = v
        return f"{type(self).__name__}({shown})"

    # --- the hot path ---

    def _take(self, key: Any) -> Any:
        """One fresh key for a draw: ``key`` itself when given, else split from the state."""
        if key is not None:
            return as_draw_key(key)
        with _KEY_LOCK:
            try:
                new, sub = jr.split(self.value)
            except ValueError as exc:  # the checks cost nothing until a split fails
                raise self._not_single(exc) from None
            self.value = new
        return sub

    def _not_single(self, exc: BaseException) -> BaseException:
        v = self._value
        if is_single_key(v):
            return exc
        from brainstate._messages import describe_state

        return ValueError(
            f"Cannot draw from {describe_state(self)}: it holds {describe_key(v)}, a batch of "
            "keys, and a draw needs a single key. Call restore_key() after "
            "self_assign_multi_keys(), or map the keys with "
            "brainstate.transform.vmap(..., in_states=this_state)."
        )

    def _take_n(self, key: Any, n: int) -> Any:
        """``n`` fresh keys for a draw that needs several (one advance of the state)."""
        return jr.split(self._take(key), n)

    # --- seeding ---

    def seed(self, seed_or_key: SeedOrKey | None = None) -> None:
        """Replace the key: from an integer seed, a key, or a fresh random seed (None).

        The new key takes the state's kind (raw or typed), so its signature is unchanged.
        """
        key = fresh_raw_key() if seed_or_key is None else seed_or_key
        self.value = as_key(key, like=self._value, where="RandomState.seed")

    def set_key(self, key: SeedOrKey) -> None:
        """Replace the key with ``key`` (an integer is taken as a seed)."""
        self.value = as_key(key, like=self._value, where="RandomState.set_key")

    def split_key(self, n: int | None = None, backup: bool = False) -> Any:
        """Advance the state once and return one new key (``n`` None) or ``n`` new keys.

        Parameters
        ----------
        n : int, optional
            How many keys to return (shape ``(n,) + key shape``); None returns a single key.
        backup : bool
            Back up the key before the split, for :meth:`restore_key`.

        Raises
        ------
        TypeError, ValueError
            If ``n`` is not a positive integer.
        """
        if n is not None:
            n = check_count(n)
        with _KEY_LOCK:
            try:
                keys = jr.split(self.value, 2 if n is None else n + 1)
            except ValueError as exc:
                raise self._not_single(exc) from None
            if backup:
                self.backup_key()  # still the key before the split
            if n is None:
                new, sub = keys
                self.value = new
                return sub
            self.value = keys[0]
            return keys[1:]

    def split_keys(self, n: int, backup: bool = False) -> Any:
        """``n`` new keys (``split_key(n)`` with ``n`` required)."""
        return self.split_key(check_count(n), backup=backup)

    def self_assign_multi_keys(self, n: int, backup: bool = True) -> None:
        """Make the state hold ``n`` keys (one per lane of a mapping that declares it).

        The state's signature is re-bound to the batch of keys; :meth:`restore_key` (with the
        default ``backup=True``) re-binds it back to the single key.
        """
        n = check_count(n)
        with _KEY_LOCK:
            old = self.value
            if backup:
                self.backup_key()
            with check_state_value_tree(False):
                self.value = jr.split(old, n)

    def clone(self) -> "RandomState":
        """A new, independent ``RandomState`` seeded from a key split off this one."""
        return type(self)(self.split_key())

    # --- backup ---

    def backup_key(self) -> None:
        """Remember the current key for :meth:`restore_key` (one backup at a time)."""
        if self in _BACKUPS:
            raise ValueError(
                f"{type(self).__name__}.backup_key: a key is already backed up and not restored "
                "yet. Call restore_key() first."
            )
        _BACKUPS[self] = self.value

    def restore_key(self) -> None:
        """Put back the key saved by :meth:`backup_key` (re-binding the signature if needed)."""
        key = _BACKUPS.pop(self, None)
        if key is None:
            raise ValueError(
                f"{type(self).__name__}.restore_key: no key is backed up. Call backup_key() "
                "(or split_key(backup=True)) first."
            )
        if getattr(key, "shape", None) != getattr(self._value, "shape", None):
            with check_state_value_tree(False):
                self.value = key
        else:
            self.value = key


def _module_default() -> RandomState:
    # A NumPy placeholder key: creating DEFAULT at import makes no JAX call. Its signature
    # (uint32, shape (2,)) is the one a JAX key has, so the first draw writes one back freely.
    rng = RandomState()
    rng.name = "brainstate.random.DEFAULT"  # error messages name it (it has no creation site)
    return rng


#: The process-wide random state every module-level draw uses.
DEFAULT: RandomState = _module_default()
