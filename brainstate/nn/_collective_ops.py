"""Collective state operations: call one method on every module of a model, in call order.

``init_all_states`` / ``reset_all_states`` walk every :class:`~brainstate.nn.Module` of a model
(children first, as :func:`brainstate.graph.nodes` lists them) and call its ``init_state`` /
``reset_state``. Methods decorated with :func:`call_order` run after the undecorated ones, in
ascending level. The ``vmap_*`` variants run the same walk once per lane of an ensemble.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Callable, Sequence, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np

from brainstate._error import BatchAxisError
from brainstate._messages import describe_state
from brainstate._state import NonBatchState, State, catch_new_states
from brainstate.graph import nodes
from brainstate.nn._module import Module
from brainstate.transform import INIT_NO_BATCHING, vmap, vmap_new_states
from brainstate.util.filter import to_predicate

__all__ = [
    "MAX_ORDER",
    "call_order",
    "call_all_fns",
    "vmap_call_all_fns",
    "init_all_states",
    "vmap_init_all_states",
    "reset_all_states",
    "vmap_reset_all_states",
    "assign_state_values",
]

#: Levels accepted by :func:`call_order` (unless its boundary check is off) are ``[0, MAX_ORDER)``.
MAX_ORDER = 10

_IF_NOT_EXIST = ("raise", "pass", "none", "warn")

T = TypeVar("T", bound=Module)
_F = TypeVar("_F", bound=Callable[..., Any])


# --- call order ------------------------------------------------------------------------------


def call_order(level: int = 0, check_order_boundary: bool = True) -> Callable[[_F], _F]:
    """Give a method an order level for the collective operations (lower levels run first).

    Collective operations (:func:`call_all_fns`, :func:`init_all_states`,
    :func:`reset_all_states`...) first call the undecorated methods, then the decorated ones
    sorted by level (stable: equal levels keep the walk order).

    Parameters
    ----------
    level : int, default 0
        The order level.
    check_order_boundary : bool, default True
        Require ``0 <= level < MAX_ORDER``.

    Returns
    -------
    callable
        A decorator that sets ``fn.call_order = level`` and returns ``fn``.

    Raises
    ------
    ValueError
        If the boundary check is on and ``level`` is outside ``[0, MAX_ORDER)``.
    TypeError
        If ``level`` is not an integer.

    Examples
    --------
    >>> import brainstate
    >>> class Net(brainstate.nn.Module):
    ...     @brainstate.nn.call_order(2)
    ...     def init_state(self):
    ...         pass
    >>> Net().init_state.call_order
    2
    """
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
        raise TypeError(
            f"call_order level must be an integer, got {type(level).__name__}: {level!r}."
        )
    if check_order_boundary and not 0 <= level < MAX_ORDER:
        raise ValueError(
            f'"level" must be an integer in [0, {MAX_ORDER}), but got {level}. Pick a level in '
            "that range or pass check_order_boundary=False."
        )

    def wrap(fn: _F) -> _F:
        cast(Any, fn).call_order = int(level)  # a function attribute: typing has no slot for it
        return fn

    return wrap


# --- calling one method on every module --------------------------------------------------------


def _normalise_call(args: Any, kwargs: Any) -> tuple[tuple, dict]:
    args = args if isinstance(args, tuple) else (args,)
    if kwargs is None:
        return args, {}
    if not isinstance(kwargs, Mapping):
        raise TypeError(
            f"kwargs must be a mapping of keyword arguments, but got {type(kwargs).__name__}: "
            f"{kwargs!r}."
        )
    return args, dict(kwargs)


def _check_if_not_exist(policy: str) -> None:
    if policy not in _IF_NOT_EXIST:
        raise ValueError(
            f"fn_if_not_exist must be one of {list(_IF_NOT_EXIST)}, but got {policy!r}."
        )


def _bound_methods(target: Module, fn_name: str, node_to_exclude: Any,
                   fn_if_not_exist: str) -> list:
    """``[(fn, order or None), ...]`` for every module in walk order, with exclusions applied."""
    found = nodes(target, Module)
    excluded = None if node_to_exclude is None else to_predicate(node_to_exclude)
    methods = []
    for path, node in found.items():
        if excluded is not None and excluded(path, node):
            continue
        fn = getattr(node, fn_name, _MISSING)
        if fn is _MISSING:
            where = f"Module {type(node).__name__} with the path {path}"
            if fn_if_not_exist == "raise":
                raise AttributeError(
                    f"{where} does not have method '{fn_name}'. Define it, exclude the module "
                    "with node_to_exclude, or pass fn_if_not_exist='pass'."
                )
            if fn_if_not_exist == "warn":
                warnings.warn(f"{where} does not have method '{fn_name}'. Skipping.",
                              UserWarning, stacklevel=4)
            continue
        if not callable(fn):
            raise TypeError(
                f"'{fn_name}' of {type(node).__name__} at path {path} must be callable, but got "
                f"{type(fn).__name__}."
            )
        methods.append((fn, getattr(fn, "call_order", None)))
    return methods


class _Missing:
    pass


_MISSING = _Missing()


def call_all_fns(target: T, fn_name: str, args: Sequence[Any] | Any = (),
                 kwargs: Mapping[str, Any] | None = None, node_to_exclude: Any = None,
                 fn_if_not_exist: str = "raise") -> T:
    """Call method ``fn_name`` on every module of ``target``, respecting :func:`call_order`.

    Modules are visited children first (the order of :func:`brainstate.graph.nodes`), each once
    even when shared. Undecorated methods run during the walk; decorated ones afterwards, by
    ascending level.

    Parameters
    ----------
    target : Module
        The model.
    fn_name : str
        The method name.
    args : tuple or any, default ()
        Positional arguments; a non-tuple is one argument.
    kwargs : mapping, optional
        Keyword arguments.
    node_to_exclude : filter, optional
        Modules matching it are skipped (a type, a tag, a predicate ``(path, node)``...).
    fn_if_not_exist : {'raise', 'pass', 'none', 'warn'}, default 'raise'
        What to do with a module lacking the method.

    Returns
    -------
    Module
        ``target``.

    Raises
    ------
    TypeError
        ``fn_name`` not a string, ``kwargs`` not a mapping, or the attribute not callable.
    ValueError
        Unknown ``fn_if_not_exist``.
    AttributeError
        A module lacks the method and ``fn_if_not_exist='raise'``.

    Notes
    -----
    Differs from upstream: ``fn_if_not_exist`` is checked before the walk, so a bad value
    fails even when every module has the method.

    Examples
    --------
    >>> import brainstate
    >>> calls = []
    >>> class Leaf(brainstate.nn.Module):
    ...     def hello(self, who):
    ...         calls.append(who)
    >>> class Root(brainstate.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.a, self.b = Leaf(), Leaf()
    >>> _ = brainstate.nn.call_all_fns(Root(), 'hello', 'x', fn_if_not_exist='pass')
    >>> calls
    ['x', 'x']
    """
    if not isinstance(fn_name, str):
        raise TypeError(f"fn_name must be a string, but got {type(fn_name).__name__}: {fn_name!r}.")
    args, kwargs = _normalise_call(args, kwargs)
    _check_if_not_exist(fn_if_not_exist)
    ordered = []
    for fn, order in _bound_methods(target, fn_name, node_to_exclude, fn_if_not_exist):
        if order is None:
            fn(*args, **kwargs)
        else:
            ordered.append((order, fn))
    for _, fn in sorted(ordered, key=lambda item: item[0]):
        fn(*args, **kwargs)
    return target


def init_all_states(target: T, *init_args: Any, node_to_exclude: Any = None,
                    **init_kwargs: Any) -> T:
    """Call ``init_state(*init_args, **init_kwargs)`` on every module of ``target``.

    Parameters
    ----------
    target : Module
        The model.
    *init_args, **init_kwargs
        Forwarded to every ``init_state`` (e.g. ``batch_size=32``).
    node_to_exclude : filter, optional
        Modules matching it are skipped.

    Returns
    -------
    Module
        ``target``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Cell(brainstate.nn.Module):
    ...     def init_state(self, batch_size=None):
    ...         self.h = brainstate.HiddenState(jnp.zeros((batch_size or 1, 3)))
    >>> cell = brainstate.nn.init_all_states(Cell(), batch_size=4)
    >>> cell.h.value.shape
    (4, 3)
    """
    return call_all_fns(target, "init_state", init_args, init_kwargs, node_to_exclude)


def reset_all_states(target: T, *reset_args: Any, node_to_exclude: Any = None,
                     **reset_kwargs: Any) -> T:
    """Call ``reset_state(*reset_args, **reset_kwargs)`` on every module of ``target``.

    Parameters
    ----------
    target : Module
        The model.
    *reset_args, **reset_kwargs
        Forwarded to every ``reset_state``.
    node_to_exclude : filter, optional
        Modules matching it are skipped.

    Returns
    -------
    Module
        ``target``.
    """
    return call_all_fns(target, "reset_state", reset_args, reset_kwargs, node_to_exclude)


# --- the vmap variants -----------------------------------------------------------------------


def _check_axis_size(axis_size: Any) -> int:
    if isinstance(axis_size, bool) or not isinstance(axis_size, (int, np.integer)) \
            or axis_size <= 0:
        raise ValueError(
            f"axis_size must be a positive integer (the number of lanes), got {axis_size!r}."
        )
    return int(axis_size)


def _is_lane_state(st: State, axis_size: int) -> bool:
    """Whether ``st`` holds one value per lane (every leaf has a leading axis of ``axis_size``)."""
    if isinstance(st, NonBatchState) or (st.tag is not None and INIT_NO_BATCHING in st.tag):
        return False
    leaves = jax.tree_util.tree_leaves(st.value)
    return bool(leaves) and all(
        getattr(leaf, "ndim", 0) >= 1 and leaf.shape[0] == axis_size for leaf in leaves
    )


def _lane_independent_value(st: State, stacked: Any) -> Any:
    """The single value of a state that must not be batched; error when the lanes differ."""
    def first(leaf: Any) -> Any:
        if not bool(np.all(np.asarray(leaf == leaf[0]))):
            raise BatchAxisError(
                f"{describe_state(st)} is created inside vmap_call_all_fns with a value that "
                "differs across lanes, but it is a NonBatchState or tagged 'INIT_NO_BATCHING', "
                "so it must hold one value for all lanes. Make its value lane-independent or "
                "use a batched state type."
            )
        return leaf[0]

    return jax.tree_util.tree_map(first, stacked)


def vmap_call_all_fns(target: T, fn_name: str, args: Sequence[Any] | Any = (),
                      kwargs: Mapping[str, Any] | None = None, axis_size: int | None = None,
                      node_to_exclude: Any = None, state_tag: str | None = None,
                      fn_if_not_exist: str = "raise") -> T:
    """Run :func:`call_all_fns` once per lane of an ensemble of ``axis_size`` models.

    Inside, each existing state of ``target`` whose every leaf has a leading axis of size
    ``axis_size`` (and is not a ``NonBatchState`` nor tagged ``'INIT_NO_BATCHING'``) reads as
    its per-lane slice and is written back stacked; the other existing states are shared by
    all lanes (writing one of them with lane-dependent values raises
    :class:`~brainstate.transform.BatchAxisError`). States created inside get a leading axis
    of size ``axis_size`` (one value per lane), except ``NonBatchState``\\ s and states tagged
    ``'INIT_NO_BATCHING'``, which keep one lane-independent value.

    Parameters
    ----------
    target : Module
        The model.
    fn_name : str
        The method to call on every module.
    args, kwargs, node_to_exclude, fn_if_not_exist
        As :func:`call_all_fns` (arguments are broadcast to every lane).
    axis_size : int
        The number of lanes (required, positive).
    state_tag : str, optional
        Tag added to every state created inside.

    Returns
    -------
    Module
        ``target``.

    Raises
    ------
    ValueError
        ``axis_size`` missing or not positive.
    TypeError
        ``kwargs`` not a mapping.

    Notes
    -----
    Differs from upstream: the states created inside are committed with their batched values
    (upstream leaves them holding leaked tracers), and existing per-lane states are mapped, so
    ``vmap_reset_all_states`` after ``vmap_init_all_states`` resets every lane.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Cell(brainstate.nn.Module):
    ...     def init_state(self):
    ...         self.h = brainstate.HiddenState(jnp.ones(3))
    ...     def reset_state(self):
    ...         self.h.value = jnp.zeros_like(self.h.value)
    >>> cell = brainstate.nn.vmap_call_all_fns(Cell(), 'init_state', axis_size=4)
    >>> cell.h.value.shape
    (4, 3)
    """
    n = _check_axis_size(axis_size)
    if not isinstance(fn_name, str):
        raise TypeError(f"fn_name must be a string, but got {type(fn_name).__name__}: {fn_name!r}.")
    args, kwargs = _normalise_call(args, kwargs)
    _check_if_not_exist(fn_if_not_exist)
    lane_states = [st for st in target.states().values() if _is_lane_state(st, n)]
    created: list = []

    def lane() -> list:
        with catch_new_states(state_tag) as caught:
            call_all_fns(target, fn_name, args, kwargs, node_to_exclude, fn_if_not_exist)
        created[:] = caught.get_states()
        return [st.value for st in created]

    try:
        values = vmap(lane, axis_size=n, in_states=lane_states)()
    except BaseException:
        for st in created:
            st._recapture_trace()
        raise
    for st, value in zip(created, values):
        if isinstance(st, NonBatchState) or INIT_NO_BATCHING in (st.tag or ()):
            value = _lane_independent_value(st, value)
        st._restore_rebind(value)
        # Created inside the lane trace, they are ordinary outer-scope states from now on.
        st._recapture_trace()
    return target


def vmap_init_all_states(target: T, *init_args: Any, axis_size: int | None = None,
                         node_to_exclude: Any = None, state_to_exclude: Any = None,
                         state_tag: str | None = None, in_states: Any = None,
                         out_states: Any = None, **init_kwargs: Any) -> T:
    """Initialise an ensemble: every state ``init_state`` creates gets a leading lane axis.

    Built on :func:`brainstate.transform.vmap_new_states`: each lane runs
    :func:`init_all_states` and the new states hold the stacked per-lane values,
    shape ``(axis_size, *per_lane)``.

    Parameters
    ----------
    target : Module
        The model.
    *init_args, **init_kwargs
        Forwarded to every ``init_state``.
    axis_size : int
        The number of lanes (required, positive).
    node_to_exclude : filter, optional
        Modules matching it are skipped.
    state_to_exclude : filter, optional
        New states matching it are not batched (as ``vmap_new_states``): a state type, a tag,
        a predicate ``(path, state)`` or any :mod:`brainstate.util.filter` filter.
    state_tag : str, optional
        Tag added to every new state.
    in_states, out_states
        Not supported (``ValueError``), as :func:`~brainstate.transform.vmap_new_states`.

    Returns
    -------
    Module
        ``target``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Cell(brainstate.nn.Module):
    ...     def init_state(self, n):
    ...         self.h = brainstate.HiddenState(jnp.zeros(n))
    >>> cell = brainstate.nn.vmap_init_all_states(Cell(), 3, axis_size=8)
    >>> cell.h.value.shape
    (8, 3)
    """
    n = _check_axis_size(axis_size)

    def init_fn() -> None:
        init_all_states(target, *init_args, node_to_exclude=node_to_exclude, **init_kwargs)

    # A filter (type, tag, predicate...) is made a predicate here: the catcher calls it.
    exclude = None if state_to_exclude is None else to_predicate(state_to_exclude)
    vmap_new_states(init_fn, axis_size=n, state_tag=state_tag,
                    state_to_exclude=exclude, in_states=in_states,
                    out_states=out_states)()
    return target


def vmap_reset_all_states(target: T, *reset_args: Any, axis_size: int | None = None,
                          node_to_exclude: Any = None, state_tag: str | None = None,
                          **reset_kwargs: Any) -> T:
    """Reset every lane of an ensemble: :func:`vmap_call_all_fns` with ``'reset_state'``.

    Parameters
    ----------
    target : Module
        The model (typically initialised by :func:`vmap_init_all_states`).
    *reset_args, **reset_kwargs
        Forwarded to every ``reset_state``.
    axis_size : int
        The number of lanes (required, positive).
    node_to_exclude : filter, optional
        Modules matching it are skipped.
    state_tag : str, optional
        Tag added to states created during the reset.

    Returns
    -------
    Module
        ``target``.
    """
    return vmap_call_all_fns(target, "reset_state", reset_args, reset_kwargs,
                             axis_size=axis_size, node_to_exclude=node_to_exclude,
                             state_tag=state_tag)


# --- assigning values by path ----------------------------------------------------------------


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def assign_state_values(target: Module,
                        *state_by_abs_path: Mapping[Any, Any]) -> tuple[list, list]:
    """Write state values given by path into ``target``; report unexpected and missing keys.

    Parameters
    ----------
    target : Module
        The model.
    *state_by_abs_path : mapping
        ``{path: value}`` mappings, merged left to right (later ones win). A path is a tuple
        as in ``target.states()`` (e.g. ``('layer', 'weight')``) or its dotted string
        (``'layer.weight'``).

    Returns
    -------
    (list, list)
        ``(unexpected_keys, missing_keys)``: the given keys that name no state (as given), and
        the state paths given no value (tuples); both sorted.

    Raises
    ------
    TypeError
        An argument is not a mapping.
    StateSignatureError
        A value does not match its state's shape/dtype (the state is named).

    Notes
    -----
    Differs from upstream: dotted-string keys are accepted, and a non-mapping argument is a
    ``TypeError`` naming its position.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Net(brainstate.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = brainstate.ParamState(jnp.zeros(2))
    >>> net = Net()
    >>> brainstate.nn.assign_state_values(net, {'w': jnp.ones(2), 'b': 0.})
    (['b'], [])
    >>> net.w.value
    Array([1., 1.], dtype=float32)
    """
    merged: dict = {}
    for i, mapping in enumerate(state_by_abs_path):
        if not isinstance(mapping, Mapping):
            raise TypeError(
                f"assign_state_values argument {i + 1} must be a mapping {{path: value}}, got "
                f"{type(mapping).__name__}."
            )
        merged.update(mapping)
    states = dict(target.states().items())
    by_dotted = {_dotted(path): path for path in states}
    given: set = set()
    unexpected = []
    for key, value in merged.items():
        path = by_dotted.get(key) if isinstance(key, str) else key
        if path not in states:
            unexpected.append(key)
            continue
        given.add(path)
        states[path].value = jax.tree_util.tree_map(jnp.asarray, value)
    missing = [path for path in states if path not in given]
    return sorted(unexpected, key=str), sorted(missing, key=str)


for _fn in (call_order, call_all_fns, vmap_call_all_fns, init_all_states, vmap_init_all_states,
            reset_all_states, vmap_reset_all_states, assign_state_values):
    _fn.__module__ = "brainstate.nn"
del _fn
