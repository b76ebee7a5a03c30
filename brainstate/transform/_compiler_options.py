"""XLA compiler options for time-stepped simulations on CPU, passed as
``jit(f, compiler_options=simulation_options())``.

A simulation step updates a few state vectors elementwise, thousands of times in a loop. Two of
XLA:CPU's defaults cost more than they give there:

* Copy insertion without region analysis copies loop-carried buffers that several kernels of
  the body read before one of them overwrites them; with it, most of those copies go and the
  state is updated in place.
* The parallel task assigner splits every kernel above a fixed cost into tasks run on the
  intra-op thread pool. Each split kernel hands work to another thread and waits for it; for a
  population of tens of thousands of neurons (kernels of tens of microseconds) the hand-off
  costs more than the second core gives back.

Both are per-compilation options (fields of XLA's ``DebugOptions``), so they change only the
function compiled with them, never the process. Other backends than CPU do not read them.
"""

from __future__ import annotations

__all__ = ["simulation_options"]

_REGION_ANALYSIS = "xla_cpu_copy_insertion_use_region_analysis"
_DISABLED_PASSES = "xla_disable_hlo_passes"
_PARALLEL_TASK_PASS = "cpu-parallel-task-assigner"


def simulation_options(parallel_kernels: bool = False) -> dict[str, bool | str]:
    """XLA:CPU compiler options for loops of small elementwise state updates.

    Pass the result to :func:`brainstate.transform.jit` as ``compiler_options``. Measured on a
    2-core CPU: a leaky integrate-and-fire population in ``for_loop`` takes 0.5-0.6x the time
    per step of XLA's defaults at 4,000 and 40,000 neurons, and 1.06x at 400,000, where
    ``parallel_kernels=True`` takes 0.63x (``bench/bench_compiler_options.py``); the COBA
    network of ``examples/coba.py`` runs 1.5x more steps per second at 40,000 neurons.

    Parameters
    ----------
    parallel_kernels : bool
        Keep XLA's splitting of large kernels across threads. Serial kernels win while each
        kernel is short; with populations of a few hundred thousand neurons (on two cores,
        from about 200,000) or on machines with many cores, splitting pays again: measure
        both.

    Returns
    -------
    dict
        ``{"xla_cpu_copy_insertion_use_region_analysis": True}``, plus
        ``{"xla_disable_hlo_passes": "cpu-parallel-task-assigner"}`` unless
        ``parallel_kernels``. To disable further passes yourself, join their names to that
        entry with commas.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> from brainstate.transform import for_loop, jit, simulation_options
    >>> v = brainstate.HiddenState(jnp.zeros(3))
    >>> def step(i):
    ...     v.value = v.value * 0.9 + 1.0
    >>> run = jit(lambda n: for_loop(step, jnp.arange(n)), static_argnums=0,
    ...           compiler_options=simulation_options())
    >>> run(2)
    >>> v.value.tolist()
    [1.899999976158142, 1.899999976158142, 1.899999976158142]
    """
    if not isinstance(parallel_kernels, bool):
        raise TypeError(f"simulation_options: parallel_kernels must be a bool, got "
                        f"{type(parallel_kernels).__name__}: {parallel_kernels!r}.")
    options: dict[str, bool | str] = {_REGION_ANALYSIS: True}
    if not parallel_kernels:
        options[_DISABLED_PASSES] = _PARALLEL_TASK_PASS
    return options
