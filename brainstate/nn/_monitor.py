"""``SpikeMonitor``: spikes recorded as ``(step, index)`` events in a bounded buffer held in state.

Returning the spike vector from every step of a ``for_loop`` stacks a dense ``[steps, neurons]``
array: 4 GB for 400,000 neurons over 10,000 steps, almost all zeros. A :class:`SpikeMonitor`
keeps only the events, in a buffer of ``max_events`` rows allocated once, written in place inside
the loop (one listing of the spiking neurons and one ``dynamic_update_slice`` per step).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from brainstate._state import ShortTermState
from brainstate.nn import _event_native
from brainstate.nn._module import Module, _describe

__all__ = ["SpikeMonitor"]


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"SpikeMonitor {what} must be a positive integer, but got {value!r}.")
    return int(value)


def _write(index: jax.Array, buffers: tuple, at: jax.Array, step: jax.Array) -> tuple:
    indices, steps = buffers
    return (jax.lax.dynamic_update_slice(indices, index.astype(jnp.int32), (at,)),
            jax.lax.dynamic_update_slice(steps, jnp.full(index.shape, step, jnp.int32), (at,)))


def _write_first_k(fired: jax.Array, buffers: tuple, at: jax.Array, step: jax.Array,
                   k: int) -> tuple:
    # top_k of the 0/1 mask: the spiking indices first, in ascending order (ties keep index
    # order). 4-5x cheaper than nonzero(size=k) on CPU (a cumsum and a scatter of the whole
    # vector) at 4,000 neurons, k = 64.
    return _write(jax.lax.top_k(fired.astype(jnp.float32), k)[1], buffers, at, step)


def _write_all(fired: jax.Array, buffers: tuple, at: jax.Array, step: jax.Array) -> tuple:
    return _write(jnp.nonzero(fired, size=fired.shape[0], fill_value=0)[0], buffers, at, step)


class SpikeMonitor(Module):
    """Record the spikes of a population as ``(step, index)`` events, up to ``max_events``.

    Call it once per step with the spike vector (``update(spikes)``; boolean, or non-zero
    means a spike). At most ``max_events`` spikes are stored; every spike is counted, so a
    read after any was left out raises instead of returning an incomplete record (never a
    silent drop). ``max_per_step`` only tunes speed: a step with up to that many spikes takes a
    fast path (writes of that size), a burst above it an exact slower one (writes of ``num``,
    through ``lax.cond``; under ``vmap`` both run). On CPU with the compiled extension one
    native kernel does the whole step (one pass over the spike bytes, writing the events and
    the counters in place; ``max_per_step`` is not used); elsewhere the spikes are listed by
    ``top_k`` (fast path) or ``nonzero`` (bursts).

    Parameters
    ----------
    num : int
        The population size (the spike vector's length).
    max_events : int
        The buffer size: the most events stored.
    max_per_step : int, optional
        The fast path's bound on the spikes of one step. Default: ``num`` (one exact path, no
        branch). A population firing sparsely runs faster with a bound a few times its
        typical spike count per step.
    name : str, optional

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> monitor = brainstate.nn.SpikeMonitor(4, max_events=10)
    >>> monitor.init_state()
    >>> def step(i):
    ...     monitor.update(jnp.arange(4) == i % 4)
    >>> brainstate.transform.for_loop(step, jnp.arange(6))
    >>> steps, indices = monitor.events()
    >>> steps.tolist(), indices.tolist()
    ([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 0, 1])
    >>> monitor.counts().tolist()
    [2, 2, 1, 1]
    """

    __module__ = "brainstate.nn"

    def __init__(self, num: int, max_events: int, max_per_step: int | None = None,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.num = _positive_int(num, "num")
        self.max_events = _positive_int(max_events, "max_events")
        self.max_per_step = self.num if max_per_step is None else \
            min(_positive_int(max_per_step, "max_per_step"), self.num)

    def init_state(self, *args: Any, **kwargs: Any) -> None:
        """Allocate the buffer (``max_events + num`` rows) and the counters."""
        rows = self.max_events + self.num  # room for one step's full write at the end
        self.steps = ShortTermState(jnp.zeros(rows, jnp.int32))
        self.indices = ShortTermState(jnp.zeros(rows, jnp.int32))
        self.stored = ShortTermState(jnp.asarray(0, jnp.int32))
        self.seen = ShortTermState(jnp.asarray(0, jnp.int32))
        self.step = ShortTermState(jnp.asarray(0, jnp.int32))

    def reset_state(self, *args: Any, **kwargs: Any) -> None:
        """Forget every event and restart the step count at 0."""
        self._require_state()
        for st in (self.stored, self.seen, self.step):
            st.value = jnp.asarray(0, jnp.int32)

    def _require_state(self) -> None:
        if self.__dict__.get("stored") is None:
            raise ValueError(f"{_describe(self)} has no buffer yet: call "
                             "brainstate.nn.init_all_states(model) (or monitor.init_state()).")

    def update(self, spikes: Any) -> None:
        """Record the spikes of one step."""
        self._require_state()
        spikes = jnp.asarray(spikes)
        if spikes.shape != (self.num,):
            raise ValueError(f"{_describe(self)} records {self.num} neurons, but got spikes of "
                             f"shape {spikes.shape}.")
        fired = spikes if spikes.dtype == jnp.bool_ else spikes != jnp.zeros((), spikes.dtype)
        before = (self.indices.value, self.steps.value, self.stored.value, self.seen.value,
                  self.step.value)
        pure = partial(self._pure_record, *before)
        if _event_native.available():
            def native(f):
                return _event_native.spike_record(f, *before, max_events=self.max_events)

            after = _event_native.on_cpu(native, pure, fired)
        else:
            after = pure(fired)
        (self.indices.value, self.steps.value, self.stored.value, self.seen.value,
         self.step.value) = after

    def _pure_record(self, indices: jax.Array, steps: jax.Array, stored: jax.Array,
                     seen: jax.Array, step: jax.Array, fired: jax.Array) -> tuple:
        # the twin of the native kernel brainstate_spike_record
        k = self.max_per_step
        n_fired = fired.sum(dtype=jnp.int32)
        at = jnp.minimum(stored, jnp.int32(self.max_events))
        buffers = (indices, steps)
        if k >= fired.shape[0]:
            indices, steps = _write_all(fired, buffers, at, step)
        else:
            # a burst above the fast path's bound takes the exact path: nothing is dropped
            indices, steps = jax.lax.cond(n_fired <= k, partial(_write_first_k, k=k),
                                          _write_all, fired, buffers, at, step)
        # store this step's events only when they all fit in the buffer
        stored = jnp.where(stored + n_fired <= self.max_events, stored + n_fired, stored)
        return indices, steps, stored, seen + n_fired, step + 1

    def _check_complete(self) -> int:
        self._require_state()
        stored, seen = int(self.stored.value), int(self.seen.value)
        if stored != seen:
            raise RuntimeError(
                f"{_describe(self)} stored {stored} of the {seen} spikes it saw: the buffer "
                f"(max_events={self.max_events}) filled up. Raise the bound and run again.")
        return stored

    def events(self) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, indices)`` of every recorded spike, in order (numpy int32 arrays).

        Raises
        ------
        RuntimeError
            Some spikes could not be stored (see the class notes).
        """
        n = self._check_complete()
        return np.asarray(self.steps.value[:n]), np.asarray(self.indices.value[:n])

    def counts(self) -> np.ndarray:
        """Spikes per neuron over the recording."""
        _, indices = self.events()
        return np.bincount(indices, minlength=self.num)

    def rate(self, dt: float, bin_steps: int = 1) -> np.ndarray:
        """The population rate per bin of ``bin_steps`` steps, in spikes per unit of ``dt``'s time.

        With ``dt`` in ms, multiply by 1000 for Hz.
        """
        bin_steps = _positive_int(bin_steps, "bin_steps")
        steps, _ = self.events()
        n_bins = -(-int(self.step.value) // bin_steps)
        per_bin = np.bincount(steps // bin_steps, minlength=n_bins)
        return per_bin / (self.num * bin_steps * dt)

    def dense(self) -> np.ndarray:
        """The record as a dense boolean ``[steps, num]`` array (for small recordings)."""
        steps, indices = self.events()
        out = np.zeros((int(self.step.value), self.num), bool)
        out[steps, indices] = True
        return out
