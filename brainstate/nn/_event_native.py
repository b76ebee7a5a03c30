"""The native event kernels (``brainstate._event_cpu``, XLA:CPU custom calls) and their switch.

The compiled module is optional, like the compiled core: ``BRAINSTATE_NO_EXTENSIONS=1``, a
build without jaxlib's FFI headers, or a failed registration leave :func:`available` False, and
the callers use their pure-JAX kernels (the reference twin). On other platforms than CPU the
pure kernel runs too (``lax.platform_dependent``).
"""

from __future__ import annotations

from typing import Callable, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np

from brainstate._impl import NO_EXTENSIONS

__all__ = ["available", "on_cpu", "event_count", "event_weight", "spike_record", "ERROR"]

_R = TypeVar("_R")

_COUNT, _WEIGHT, _RECORD = ("brainstate_event_count", "brainstate_event_weight",
                            "brainstate_spike_record")

#: Why the native kernels are unavailable (``None`` when they are, or before the first use).
ERROR: BaseException | None = None
_STATE: list = []  # [bool]: registration attempted, and its outcome


def available() -> bool:
    """Whether the native kernels are built and registered with XLA (registers on first call)."""
    global ERROR
    if not _STATE:
        ok = False
        if not NO_EXTENSIONS:
            try:
                from brainstate import _event_cpu  # type: ignore[attr-defined]  # compiled, no stub

                for name, capsule in _event_cpu.handlers().items():
                    jax.ffi.register_ffi_target(name, capsule, platform="cpu")
                ok = True
            except Exception as exc:  # noqa: BLE001 - any failure means: use the pure kernels
                ERROR = exc
        _STATE.append(ok)
    return _STATE[0]


def on_cpu(native: Callable[..., _R], pure: Callable[..., _R], *args: jax.Array) -> _R:
    """``native(*args)`` when the computation runs on CPU, else ``pure(*args)``.

    Call only when :func:`available` is True. Both must return the same shapes and dtypes.
    """
    return jax.lax.platform_dependent(*args, cpu=native, default=pure)


def event_count(spikes: jax.Array, targets: jax.Array, n_post: int) -> jax.Array:
    """``int32[n_post]``: how many synapses of the spiking rows of ``targets`` reach each output.

    ``spikes`` is ``bool[n_pre]``, ``targets`` ``int32[n_pre, k]`` (entries outside
    ``[0, n_post)`` are padding). CPU only (see :func:`on_cpu`).
    """
    call = jax.ffi.ffi_call(_COUNT, jax.ShapeDtypeStruct((n_post,), jnp.int32),
                            vmap_method="sequential")
    return call(spikes, targets)


def event_weight(spikes: jax.Array, targets: jax.Array, weights: jax.Array,
                 n_post: int) -> jax.Array:
    """``float32[n_post]``: the sum of ``weights`` (``float32[n_pre, k]``) over the synapses of
    the spiking rows, in the order of the rows. CPU only."""
    call = jax.ffi.ffi_call(_WEIGHT, jax.ShapeDtypeStruct((n_post,), jnp.float32),
                            vmap_method="sequential")
    return call(spikes, targets, weights)


def spike_record(spikes: jax.Array, indices: jax.Array, steps: jax.Array, stored: jax.Array,
                 seen: jax.Array, step: jax.Array, max_events: int) -> tuple[jax.Array, ...]:
    """One step of ``SpikeMonitor`` in one kernel: ``(indices, steps, stored, seen, step)``.

    The spiking indices of ``spikes`` (``bool[n]``, ascending) and ``step`` are written into
    ``indices`` and ``steps`` (``int32[rows]``, ``rows >= max_events + n``; updated in place,
    the results alias them) from row ``min(stored, max_events)`` on; ``stored`` grows by the
    spike count only when they all fit in ``max_events``, ``seen`` always; ``step`` + 1. CPU
    only.
    """
    out = tuple(jax.ShapeDtypeStruct(x.shape, jnp.int32)
                for x in (indices, steps, stored, seen, step))
    call = jax.ffi.ffi_call(_RECORD, out, input_output_aliases={1: 0, 2: 1},
                            vmap_method="sequential")
    # a tuple of results for the tuple ``out`` (jax types it a Sequence)
    return cast(tuple[jax.Array, ...],
                call(spikes, indices, steps, stored, seen, step, max_events=np.int64(max_events)))
