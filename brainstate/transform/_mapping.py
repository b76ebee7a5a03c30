"""``vmap2``, ``pmap2``, ``StatefulMapping``: mapping with per-state axes chosen by filters.

``vmap`` takes states by declaration (``in_states={0: {...}}``); the transforms here take
*selectors* instead: ``state_in_axes={0: ParamState, 1: 'fast'}`` maps every state the
function touches that is a ``ParamState`` at axis 0 and every state tagged ``'fast'`` at axis 1.

How. Per abstract call signature, a *probe* traces the function once under
``jax.make_jaxpr`` with a ``StateTraceStack`` whose ``new_arg`` feeds each state it meets an
abstract value: per-lane (the mapped axis removed) when an in-selector matches it, whole
otherwise. That enumerates the touched states; the selectors are then resolved into explicit
``(state, axis)`` declarations, and the call is delegated to ``vmap``'s engine
(``VmappedFunction``), cached per signature. A warm call costs one more dict lookup than
``vmap``. The resolution is redone when one of the touched states is re-bound (its signature
changes, ``rebind_epoch``), as ``vmap`` re-plans.

Where. ``_mapping_axes.py`` turns selectors into rules and matches states against them,
``_mapping_probe.py`` runs the probe, ``_mapping_engine.py`` holds ``StatefulMapping`` (the
resolution and its cache); this module holds the public front ends.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Callable, Hashable

import jax

from brainstate._error import BatchAxisError
from brainstate._messages import describe_state
from brainstate._state import State
from brainstate.transform._mapping_axes import _match, _rules
from brainstate.transform._mapping_engine import StatefulMapping, _map_with_dummy
from brainstate.transform._mapping_probe import _probe_tls
from brainstate.transform._vmap import INIT_NO_BATCHING, VmapNewStatesFunction, _no_batching
from brainstate.typing import Missing

__all__ = [
    "StatefulMapping",
    "vmap2",
    "vmap2_new_states",
    "pmap2",
    "pmap2_new_states",
    "in_new_state_probe",
]


def in_new_state_probe() -> bool:
    """Whether the caller runs inside a discovery probe of ``vmap2``/``pmap2``.

    To learn which states a function touches, :func:`vmap2`, :func:`pmap2` and
    :class:`StatefulMapping` run it once more, abstractly, on the first call per call
    signature; the states it creates during that run are thrown away. Code doing a one-shot
    side effect bound to the states it creates (caching a computation graph over them, say)
    can skip that work while this returns True.

    Returns
    -------
    bool
        True inside such a probe run, False otherwise.

    Notes
    -----
    Differs from upstream: :func:`vmap2_new_states` and :func:`pmap2_new_states` run the
    initialiser once (no probe), so the flag is False there; upstream runs it twice and sets
    the flag during the first run.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> seen = []
    >>> @brainstate.transform.vmap2
    ... def f(x):
    ...     seen.append(brainstate.transform.in_new_state_probe())
    ...     return x * 2
    >>> f(jnp.arange(3.0))
    Array([0., 2., 4.], dtype=float32)
    >>> seen  # the probe run, then the traced run
    [True, False]
    >>> brainstate.transform.in_new_state_probe()
    False
    """
    return getattr(_probe_tls, "depth", 0) > 0


# --- public constructors --------------------------------------------------------------------


def vmap2(fn: Any = Missing(), *, in_axes: Any = 0, out_axes: Any = 0,
          axis_name: Hashable | None = None, axis_size: int | None = None,
          spmd_axis_name: Any = None, state_in_axes: Any = None, state_out_axes: Any = None,
          unexpected_out_state_mapping: str = "auto") -> Any:
    """Vectorise a function, mapping the states it touches by selectors.

    The rules are those of :class:`StatefulMapping`: ``state_in_axes`` selects the states
    read per lane (and written back along the same axis), ``state_out_axes`` the written
    states that gain the mapped axis, random states holding one key are split per lane, and
    ``unexpected_out_state_mapping`` decides what happens to other states written with
    lane-dependent values.

    Parameters
    ----------
    fn : callable, optional
        The function; omitted, a decorator is returned.
    in_axes, out_axes, axis_name, axis_size, spmd_axis_name
        As :func:`jax.vmap` (keyword arguments at call time are mapped at axis 0).
    state_in_axes, state_out_axes : dict, selector or None
        ``{axis: selector}`` or one selector (axis 0); see :class:`StatefulMapping`.
    unexpected_out_state_mapping : {'auto', 'raise', 'warn', 'ignore'}
        See :class:`StatefulMapping`.

    Returns
    -------
    StatefulMapping or decorator
        The mapped function (a ``functools.partial`` decorator when ``fn`` is omitted).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> w = brainstate.ParamState(jnp.ones((2, 3)))  # one row per lane
    >>> h = brainstate.HiddenState(jnp.zeros(3))
    >>> @brainstate.transform.vmap2(state_in_axes={0: brainstate.ParamState},
    ...                             state_out_axes={0: brainstate.HiddenState})
    ... def step(x):
    ...     h.value = w.value * x
    ...     return h.value.sum()
    >>> step(jnp.asarray([1., 2.]))
    Array([3., 6.], dtype=float32)
    >>> h.value.shape  # one value per lane
    (2, 3)
    """
    if isinstance(fn, Missing):
        return functools.partial(
            vmap2, in_axes=in_axes, out_axes=out_axes, axis_name=axis_name,
            axis_size=axis_size, spmd_axis_name=spmd_axis_name, state_in_axes=state_in_axes,
            state_out_axes=state_out_axes,
            unexpected_out_state_mapping=unexpected_out_state_mapping)
    return StatefulMapping(
        fn, in_axes=in_axes, out_axes=out_axes, state_in_axes=state_in_axes,
        state_out_axes=state_out_axes, axis_name=axis_name, axis_size=axis_size,
        unexpected_out_state_mapping=unexpected_out_state_mapping,
        mapping_kwargs=None if spmd_axis_name is None else {"spmd_axis_name": spmd_axis_name},
        name="vmap2")


def _argnums_given(x: Any) -> bool:
    if isinstance(x, int):
        return True
    if x is None:
        return False
    return len(tuple(x)) > 0


def pmap2(fn: Any = Missing(), axis_name: Hashable | None = None, *, in_axes: Any = 0,
          out_axes: Any = 0, static_broadcasted_argnums: Any = (), devices: Any = None,
          backend: str | None = None, axis_size: int | None = None, donate_argnums: Any = (),
          global_arg_shapes: Any = None, state_in_axes: Any = None, state_out_axes: Any = None,
          unexpected_out_state_mapping: str = "auto") -> Any:
    """Map a function over devices with :func:`jax.pmap`, mapping states by selectors.

    State handling is that of :func:`vmap2` (see :class:`StatefulMapping`); the per-lane
    computation runs once per device, so the mapped size must not exceed the device count.

    Parameters
    ----------
    fn : callable, optional
        The function; omitted, a decorator is returned.
    axis_name : hashable, optional
        Name of the mapped axis for collectives.
    in_axes, out_axes, axis_size, devices, backend
        As :func:`jax.pmap`.
    static_broadcasted_argnums, donate_argnums
        Not supported (``NotImplementedError`` when given): the wrapper passes the
        arguments and state values to :func:`jax.pmap` in its own layout, so positions
        would address the wrong values.
    global_arg_shapes
        Accepted for compatibility; forwarded only where the installed JAX knows it.
    state_in_axes, state_out_axes, unexpected_out_state_mapping
        As :func:`vmap2`.

    Returns
    -------
    StatefulMapping or decorator
        The mapped function (a ``functools.partial`` decorator when ``fn`` is omitted).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainstate
    >>> n = jax.local_device_count()
    >>> total = brainstate.State(jnp.zeros(()))
    >>> @brainstate.transform.pmap2(axis_name='d', state_out_axes={0: brainstate.State})
    ... def f(x):
    ...     total.value = jax.lax.psum(x.sum(), 'd')
    ...     return x * 2
    >>> out = f(jnp.ones((n, 3)))
    >>> out.shape == (n, 3), total.value.shape == (n,)
    (True, True)
    """
    if isinstance(fn, Missing):
        return functools.partial(
            pmap2, axis_name=axis_name, in_axes=in_axes, out_axes=out_axes,
            static_broadcasted_argnums=static_broadcasted_argnums, devices=devices,
            backend=backend, axis_size=axis_size, donate_argnums=donate_argnums,
            global_arg_shapes=global_arg_shapes, state_in_axes=state_in_axes,
            state_out_axes=state_out_axes,
            unexpected_out_state_mapping=unexpected_out_state_mapping)
    for what, val in (("static_broadcasted_argnums", static_broadcasted_argnums),
                      ("donate_argnums", donate_argnums)):
        if _argnums_given(val):
            raise NotImplementedError(
                f"pmap2 does not support {what}={val!r}: the wrapper passes your arguments "
                "and the state values to jax.pmap in its own layout, so positions would "
                "address the wrong values. Close over static values (functools.partial), or "
                "call jax.pmap directly."
            )
    kw = {"devices": devices, "backend": backend}
    if global_arg_shapes is not None:
        import inspect

        if "global_arg_shapes" in inspect.signature(jax.pmap).parameters:
            kw["global_arg_shapes"] = global_arg_shapes
    return StatefulMapping(
        fn, in_axes=in_axes, out_axes=out_axes, state_in_axes=state_in_axes,
        state_out_axes=state_out_axes, axis_name=axis_name, axis_size=axis_size,
        unexpected_out_state_mapping=unexpected_out_state_mapping, mapping_fn=jax.pmap,
        mapping_kwargs=kw, name="pmap2")


# --- new states -----------------------------------------------------------------------------


class _NewStates(VmapNewStatesFunction):
    """``vmap_new_states``' engine with output axes chosen by selectors."""

    def __init__(self, fun: Callable, axis_size: int, axis_name: Any, spmd_axis_name: Any,
                 state_tag: str | None, rules: tuple, custom_map: Callable | None,
                 map_kwargs: dict, what: str) -> None:
        super().__init__(fun, in_axes=0, out_axes=0, axis_name=axis_name, axis_size=axis_size,
                         spmd_axis_name=spmd_axis_name, state_tag=state_tag,
                         state_to_exclude=None)
        self._rules = rules
        self._custom_map = custom_map
        self._map_kwargs = map_kwargs
        self._what = what
        self.assigned: list = []

    def _new_state_axis(self, st: State, excluded: bool) -> int | None:
        if excluded:  # left out by the caller: not batched, not reported
            return None
        matched, axis = _match(st, self._rules, "state_out_axes")
        if _no_batching(st) or (matched and axis is None):
            axis = None
        elif not matched:
            axis = 0
        self.assigned.append((st, axis))
        return axis

    def _unbatched_new_state_error(self, st: State) -> BatchAxisError:
        return BatchAxisError(
            f"{describe_state(st)} is created inside {self._what} with a value that differs "
            "across the mapped axis, but it must hold one value for all lanes (it is a "
            f"NonBatchState, tagged {INIT_NO_BATCHING!r}, or selected at None by "
            "state_out_axes). Make its value lane-independent, or batch it."
        )

    def _map(self, fn: Callable, in_axes: Any, out_axes: Any, vkw: dict) -> Callable:
        if self._custom_map is None:
            return super()._map(fn, in_axes, out_axes, vkw)
        return _map_with_dummy(self._custom_map, fn, in_axes, out_axes, vkw["axis_name"],
                               vkw["axis_size"], self._map_kwargs)


def _map_new_states(what: str, module: Any, init_kwargs: Any, state_tag: str | None,
                    axis_size: Any, state_out_axes: Any, axis_name: Any = None,
                    spmd_axis_name: Any = None, custom_map: Callable | None = None) -> dict:
    if not hasattr(module, "init_all_states"):
        raise TypeError(
            f"{what} expects a module with an init_all_states method (a brainstate.nn.Module), "
            f"got {type(module).__name__}."
        )
    if init_kwargs is None:
        init_kwargs = {}
    if not isinstance(init_kwargs, Mapping):
        raise TypeError(f"{what} init_kwargs must be a mapping of keyword arguments, got "
                        f"{type(init_kwargs).__name__}.")
    if axis_size is None:
        raise ValueError(f"{what} requires axis_size (the number of lanes), e.g. axis_size=4.")
    if isinstance(axis_size, bool) or not isinstance(axis_size, int) or axis_size <= 0:
        raise ValueError(f"{what} axis_size must be a positive int, got {axis_size!r}.")
    kwargs = dict(init_kwargs)

    def init() -> None:
        module.init_all_states(**kwargs)

    engine = _NewStates(init, axis_size, axis_name, spmd_axis_name, state_tag,
                        _rules(state_out_axes, "state_out_axes"), custom_map, {}, what)
    engine()
    out: dict = {}
    for st, axis in engine.assigned:
        out.setdefault(axis, []).append(st)
    return out


def vmap2_new_states(module: Any, init_kwargs: Any, state_tag: str | None = None,
                     axis_size: int | None = None, state_out_axes: Any = None,
                     spmd_axis_name: Any = None) -> dict:
    """Initialise an ensemble: ``module.init_all_states(**init_kwargs)`` once per lane.

    Every state the initialiser creates ends up holding the stacked per-lane values (its
    signature re-bound), at axis 0 or at the axis a ``state_out_axes`` selector gives it;
    :class:`~brainstate._state.NonBatchState`\\ s, states tagged ``'INIT_NO_BATCHING'`` and
    states selected at ``None`` keep one lane-independent value. Random states used by the
    initialiser are split per lane, so each lane gets its own draw.

    Parameters
    ----------
    module : Module
        Anything with an ``init_all_states`` method (a :class:`brainstate.nn.Module`).
    init_kwargs : dict
        Keyword arguments of ``init_all_states`` (broadcast to every lane).
    state_tag : str, optional
        Tag added to every new state.
    axis_size : int
        The number of lanes (required).
    state_out_axes : dict, selector or None
        ``{axis: selector}`` or one selector (axis 0); unselected states go to axis 0.
    spmd_axis_name : optional
        Passed to :func:`jax.vmap`.

    Returns
    -------
    dict
        ``{axis: [new states]}`` (``None`` for the unbatched ones).

    Raises
    ------
    ValueError
        ``axis_size`` missing or not positive.
    BatchAxisError
        A state that must hold one value is created with lane-dependent values.

    Notes
    -----
    Differs from upstream: the initialiser runs once (upstream runs it twice, a probe pass
    first), so one-shot side effects need no :func:`in_new_state_probe` guard here.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Member(brainstate.nn.Module):
    ...     def init_state(self):
    ...         self.w = brainstate.ParamState(brainstate.random.randn(3))
    >>> m = Member()
    >>> made = brainstate.transform.vmap2_new_states(m, {}, axis_size=5)
    >>> m.w.value.shape, [st is m.w for st in made[0]]
    ((5, 3), [True])
    """
    return _map_new_states("vmap2_new_states", module, init_kwargs, state_tag, axis_size,
                           state_out_axes, spmd_axis_name=spmd_axis_name)


def pmap2_new_states(module: Any, init_kwargs: Any, state_tag: str | None = None,
                     axis_size: int | None = None, state_out_axes: Any = None,
                     axis_name: Hashable | None = None) -> dict:
    """:func:`vmap2_new_states` over devices (:func:`jax.pmap`), one lane per device.

    Parameters
    ----------
    module, init_kwargs, state_tag, state_out_axes
        As :func:`vmap2_new_states`.
    axis_size : int, optional
        The number of lanes; ``jax.local_device_count()`` by default.
    axis_name : hashable, optional
        Name of the mapped axis for collectives.

    Returns
    -------
    dict
        ``{axis: [new states]}``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainstate
    >>> class Member(brainstate.nn.Module):
    ...     def init_state(self):
    ...         self.count = brainstate.ShortTermState(jnp.zeros(()))
    >>> m = Member()
    >>> _ = brainstate.transform.pmap2_new_states(m, {})
    >>> m.count.value.shape == (jax.local_device_count(),)
    True
    """
    if axis_size is None:
        axis_size = jax.local_device_count()
    return _map_new_states("pmap2_new_states", module, init_kwargs, state_tag, axis_size,
                           state_out_axes, axis_name=axis_name, custom_map=jax.pmap)
