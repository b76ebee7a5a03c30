"""Every private JAX name (``jax._src``) brainstate uses, imported here and nowhere else.

Tested against JAX 0.10 to 0.12 (``pyproject.toml`` accepts ``jax>=0.10,<0.13``; the suite runs
on 0.10 under CPython 3.11 and on 0.12 under CPython 3.13). A JAX upgrade means auditing this
module and running ``tests/test_impl.py``, which pins each name below.

Required (brainstate cannot trace without them; JAX has no public equivalent):

- ``jax_core.trace_ctx``: the current trace (which trace a state's tracer belongs to; new
  arguments of a trace being built with ``trace.new_arg``), and the axis environment.
- ``jax_config.disable_jit``: the C++ flag behind ``jax.disable_jit``, read per call.
- ``source_info_util.current()``: the source info ``trace.new_arg`` wants.
- ``batching``: ``BatchTracer`` (is a value a per-lane view of the current ``vmap``?) and the
  batching helpers ``brainstate._compatible_import`` re-exports for the ecosystem.

Optional (each has a fallback, so a move costs speed, not function): the concrete array and
PRNG key classes, and the host-buffer transfer of ``brainstate.checkpoint``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from jax._src import config as jax_config
from jax._src import core as jax_core
from jax._src import source_info_util
from jax._src.interpreters import batching

__all__ = ["jax_core", "jax_config", "source_info_util", "batching", "array_type",
           "key_array_type", "host_transfer_modules"]


def array_type() -> type | None:
    """JAX's concrete array class (what ``jax.numpy.zeros`` returns), or None where it moved.

    Read from where JAX defines it: making an array instead would start the backend and
    compile a kernel while ``brainstate`` imports (about 50 ms).
    """
    try:
        from jax._src.array import ArrayImpl
    except ImportError:  # pragma: no cover - moved
        return None
    return ArrayImpl


def key_array_type() -> type | None:
    """The class of typed PRNG key arrays (``jax.random.key``), or None where it moved."""
    for where in ("jax._src.random.prng", "jax._src.prng"):  # it moved in JAX 0.7
        try:
            return importlib.import_module(where).PRNGKeyArray
        except (ImportError, AttributeError):
            continue
    return None  # pragma: no cover - moved again


def host_transfer_modules() -> tuple[ModuleType, ModuleType]:
    """``(jax._src.dtypes, jax._src.lib.xla_client)`` for the checkpoint loader's direct
    host-to-device transfer; raises ImportError where they moved (the loader then uses
    ``jax.device_put``)."""
    from jax._src import dtypes
    from jax._src.lib import xla_client

    return dtypes, xla_client
