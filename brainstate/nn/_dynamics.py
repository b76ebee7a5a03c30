"""``Dynamics``: modules with a population shape, update hooks and summed inputs; ``Prefetch``.

A :class:`Dynamics` is a :class:`~brainstate.nn.Module` for a population of units (neurons,
synapses...) of shape ``varshape``. Calling it runs its *before-updates*, then ``update``, then
its *after-updates* (other modules or functions registered under a key). Other modules feed it
*current* and *delta* inputs, summed on demand by ``sum_current_inputs`` / ``sum_delta_inputs``.
:class:`Prefetch` is a lazy reference to an attribute (usually a state) of a module, resolved
when called, so it can be created before the module's states exist.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, TypeVar, cast

import jax
import numpy as np

from brainstate import environ
from brainstate._state import State
from brainstate.graph import Node
from brainstate.nn._delay import Delay, StateWithDelay
from brainstate.nn._module import Module, _describe

__all__ = [
    "Dynamics",
    "Prefetch",
    "PrefetchDelay",
    "PrefetchDelayAt",
    "OutputDelayAt",
    "init_maybe_prefetch",
    "receive_update_output",
    "not_receive_update_output",
    "receive_update_input",
    "not_receive_update_input",
]

T = TypeVar("T")

# Marker attributes read by ``Dynamics.__call__`` (names as upstream, so objects marked by
# other libraries behave the same).
_RECEIVE_INPUT = "_receive_update_input"
_NOT_RECEIVE_OUTPUT = "_not_receive_update_output"


class _UpdateTable(dict):
    """The ``{key: callable}`` table of before/after updates.

    A plain dict held by a graph must have mutually sortable keys, and is rebuilt in sorted
    key order; update keys mix types (strings, ``id`` ints, describer tuples) and their order
    is the call order. So this dict is its own pytree: children in insertion order, paths
    named by the key (strings as they are, other keys by ``repr``).
    """

    __slots__ = ()


def _table_flatten_with_keys(table: _UpdateTable) -> tuple:
    keys = tuple(table)
    children = [(jax.tree_util.DictKey(k if isinstance(k, str) else repr(k)), table[k])
                for k in keys]
    return children, keys


def _table_flatten(table: _UpdateTable) -> tuple:
    return list(table.values()), tuple(table)


def _table_unflatten(keys: tuple, children: Any) -> _UpdateTable:
    return _UpdateTable(zip(keys, children))


jax.tree_util.register_pytree_with_keys(_UpdateTable, _table_flatten_with_keys, _table_unflatten,
                                        _table_flatten)


def _check_in_size(in_size: Any) -> tuple:
    """``in_size`` as a tuple of non-negative ints, or ``ValueError`` saying what was wrong."""
    def is_dim(d: Any) -> bool:
        return isinstance(d, (int, np.integer)) and not isinstance(d, bool) and bool(d >= 0)

    if is_dim(in_size):
        return (int(in_size),)
    if isinstance(in_size, (tuple, list)) and len(in_size) > 0 and all(map(is_dim, in_size)):
        return tuple(int(d) for d in in_size)
    raise ValueError(
        f'"in_size" must be a non-negative int or a non-empty tuple/list of them, but got '
        f"{type(in_size).__name__}: {in_size!r}. Example: Dynamics(in_size=100) or "
        "Dynamics(in_size=(10, 10))."
    )


def _input_key(key: Any, label: str | None) -> str:
    if not isinstance(key, str):
        raise TypeError(f"An input key must be a string, but got {type(key).__name__}: {key!r}.")
    if label is None:
        return key
    if not isinstance(label, str):
        raise TypeError(f"An input label must be a string, but got {type(label).__name__}: "
                        f"{label!r}.")
    return _label_prefix(label) + key


def _label_prefix(label: str) -> str:
    return f"{label} // "


class Dynamics(Module):
    """A population of units of shape ``varshape`` with update hooks and summed inputs.

    ``module(*args, **kwargs)`` runs, in registration order, every before-update (called with
    the same arguments if marked by :func:`receive_update_input`, else with none), then
    ``update(*args, **kwargs)``, then every after-update (called with ``update``'s result
    unless marked by :func:`not_receive_update_output`), and returns ``update``'s result.

    Current inputs (``add_current_input``) and delta inputs (``add_delta_input``) are arrays or
    callables registered under a string key (optionally grouped by a label). ``update``
    collects them with :meth:`sum_current_inputs` / :meth:`sum_delta_inputs`: an array is
    consumed by the first sum that includes it, a callable stays and is called at every sum.

    Parameters
    ----------
    in_size : int or sequence of int
        The population shape; ``out_size`` starts equal to it.
    name : str, optional
        A display name.

    Notes
    -----
    Differs from upstream: every entry of ``in_size`` is checked (non-negative ints; upstream
    looks at the first only); update hooks must be callable when registered; input keys and
    labels must be strings. The update tables keep their insertion (call) order and accept
    keys of mixed types through graph operations (``clone``, ``treefy_merge``...), where a plain
    dict would need sortable keys and come back sorted.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Leaky(brainstate.nn.Dynamics):
    ...     def init_state(self):
    ...         self.v = brainstate.HiddenState(jnp.zeros(self.varshape))
    ...     def update(self):
    ...         self.v.value = 0.5 * self.v.value + self.sum_current_inputs(0.)
    ...         return self.v.value
    >>> cell = Leaky(3, name='cell')
    >>> cell.init_state()
    >>> cell.add_current_input('bias', lambda: jnp.ones(3))
    >>> cell.add_current_input('kick', jnp.full(3, 2.))  # consumed by the next sum
    >>> cell(), cell()
    (Array([3., 3., 3.], dtype=float32), Array([2.5, 2.5, 2.5], dtype=float32))
    """

    __module__ = "brainstate.nn"

    # Class-level defaults: a population without hooks or inputs adds nothing to its graph.
    _before_updates: dict | None = None
    _after_updates: dict | None = None
    _current_inputs: dict | None = None
    _delta_inputs: dict | None = None

    def __init__(self, in_size: Any, name: str | None = None) -> None:
        super().__init__(name=name)
        size = _check_in_size(in_size)
        self.in_size = size
        self.out_size = size

    @property
    def varshape(self) -> tuple:
        """The shape of the population's variables (``in_size``)."""
        return cast(tuple, self.in_size)  # set by __init__

    # -- prefetch --

    def prefetch(self, item: str) -> "Prefetch":
        """A lazy reference to attribute ``item`` of this module (see :class:`Prefetch`).

        Parameters
        ----------
        item : str
            The attribute name, usually of a state created later by ``init_state``.

        Returns
        -------
        Prefetch
        """
        return Prefetch(self, item)

    def prefetch_delay(self, state: str, *time_and_index: Any, init: Any = None,
                       interpolation: str | None = None, **kwargs: Any) -> "PrefetchDelayAt":
        """A lazy reference to state ``state`` as it was ``time_and_index[0]`` ago.

        Registers (once per state and ``update_every``) a :class:`StateWithDelay` as an
        after-update of this module, so the state's history is recorded after each update.

        Parameters
        ----------
        state : str
            The attribute name of the state.
        *time_and_index
            The delay time (a scalar or 1-D array in the unit of dt), then optional integer
            indices applied to the delayed value.
        init : scalar, array or callable, optional
            The history before the first update (zeros by default).
        interpolation : str, optional
            The delay's interpolation method for reads by time.
        **kwargs
            Other :class:`Delay` arguments (e.g. ``update_every``).

        Returns
        -------
        PrefetchDelayAt
        """
        return PrefetchDelayAt(self, state, *time_and_index, delay_init=init,
                               interpolation=interpolation, **kwargs)

    def output_delay(self, *time_and_index: Any, init: Any = None,
                     interpolation: str | None = None, **kwargs: Any) -> "OutputDelayAt":
        """A lazy reference to this module's ``update`` result as it was ``time_and_index[0]`` ago.

        Registers (once per ``update_every``) a :class:`Delay` of shape ``out_size`` as an
        after-update receiving ``update``'s result. Arguments as :meth:`prefetch_delay`.

        Returns
        -------
        OutputDelayAt
        """
        return OutputDelayAt(self, *time_and_index, delay_init=init,
                             interpolation=interpolation, **kwargs)

    # -- before / after updates --

    @property
    def before_updates(self) -> dict | None:
        """The before-updates ``{key: callable}`` (``None`` until one is added)."""
        return self._before_updates

    @property
    def after_updates(self) -> dict | None:
        """The after-updates ``{key: callable}`` (``None`` until one is added)."""
        return self._after_updates

    def _add_update(self, which: str, key: Hashable, fun: Callable) -> None:
        if not callable(fun):
            raise TypeError(
                f"The {which} registered under {key!r} on {_describe(self)} must be callable, "
                f"but got {type(fun).__name__}."
            )
        attr = f"_{which}s"
        table = getattr(self, attr)
        if table is None:
            table = _UpdateTable()
            setattr(self, attr, table)
        if key in table:
            raise KeyError(
                f"{key!r} has been registered in {which}s of {_describe(self)}. Use another key "
                f"or check has_{which}({key!r}) first."
            )
        table[key] = fun

    def _get_update(self, which: str, key: Hashable) -> Callable:
        table = getattr(self, f"_{which}s")
        if table is None or key not in table:
            known = [] if table is None else list(table)
            raise KeyError(
                f"{key!r} is not registered in {which}s of {_describe(self)} (registered: "
                f"{known}). Add it with add_{which}({key!r}, fn)."
            )
        return table[key]

    def add_before_update(self, key: Hashable, fun: Callable) -> None:
        """Register ``fun`` to run before every ``update`` (``KeyError`` if ``key`` is taken)."""
        self._add_update("before_update", key, fun)

    def add_after_update(self, key: Hashable, fun: Callable) -> None:
        """Register ``fun`` to run after every ``update`` (``KeyError`` if ``key`` is taken)."""
        self._add_update("after_update", key, fun)

    def get_before_update(self, key: Hashable) -> Callable:
        """The before-update registered under ``key`` (``KeyError`` if none)."""
        return self._get_update("before_update", key)

    def get_after_update(self, key: Hashable) -> Callable:
        """The after-update registered under ``key`` (``KeyError`` if none)."""
        return self._get_update("after_update", key)

    def has_before_update(self, key: Hashable) -> bool:
        """Whether a before-update is registered under ``key``."""
        return self._before_updates is not None and key in self._before_updates

    def has_after_update(self, key: Hashable) -> bool:
        """Whether an after-update is registered under ``key``."""
        return self._after_updates is not None and key in self._after_updates

    def align_pre(self, dyn: Any) -> Any:
        """Run ``dyn`` after this module, fed with this module's output; return it.

        Parameters
        ----------
        dyn : Dynamics or ParamDescriber
            A module, or a ``ParamDescriber`` of a ``Dynamics`` class (``Cls.desc(...)``):
            instantiated once per describer (with ``in_size=self.varshape`` unless the
            describer gives ``in_size`` or positional arguments) and reused afterwards.

        Returns
        -------
        Dynamics
            The registered module.

        Raises
        ------
        TypeError
            ``dyn`` is neither, or describes a class that is not a ``Dynamics``.
        """
        if isinstance(dyn, Dynamics):
            self.add_after_update(id(dyn), dyn)
            return dyn
        from brainstate.mixin import ParamDescriber

        if not isinstance(dyn, ParamDescriber):
            raise TypeError(
                f"align_pre of {_describe(self)} takes a Dynamics or a ParamDescriber of a "
                f"Dynamics class, but got {type(dyn).__name__}: {dyn!r}."
            )
        if not (isinstance(dyn.cls, type) and issubclass(dyn.cls, Dynamics)):
            raise TypeError(
                f"align_pre of {_describe(self)} got a describer of {dyn.cls!r}, which is not a "
                "subclass of brainstate.nn.Dynamics."
            )
        key = dyn.identifier
        if not self.has_after_update(key):
            sized = "in_size" in dyn.kwargs or len(dyn.args) > 0
            self.add_after_update(key, dyn() if sized else dyn(in_size=self.varshape))
        return self.get_after_update(key)

    # -- current and delta inputs --

    @property
    def current_inputs(self) -> dict | None:
        """The current inputs ``{key: array or callable}`` (``None`` until one is added)."""
        return self._current_inputs

    @property
    def delta_inputs(self) -> dict | None:
        """The delta inputs ``{key: array or callable}`` (``None`` until one is added)."""
        return self._delta_inputs

    def _add_input(self, which: str, key: str, inp: Any, label: str | None) -> None:
        full = _input_key(key, label)
        attr = f"_{which}_inputs"
        table = getattr(self, attr)
        if table is None:
            table = {}
            setattr(self, attr, table)
        if full in table and table[full] is not inp:
            raise ValueError(
                f'Key "{full}" has been defined and used in the {which} inputs of '
                f"{_describe(self)}. Use another key or label (re-adding the same object is "
                "allowed)."
            )
        table[full] = inp

    def add_current_input(self, key: str, inp: Any, label: str | None = None) -> None:
        """Register a current input: an array (used once) or a callable (called at each sum).

        Parameters
        ----------
        key : str
            Unique key (``ValueError`` if it already holds another object).
        inp : array or callable
            The input.
        label : str, optional
            A group; the stored key becomes ``'<label> // <key>'``.
        """
        self._add_input("current", key, inp, label)

    def add_delta_input(self, key: str, inp: Any, label: str | None = None) -> None:
        """Register a delta input (an instantaneous change); as :meth:`add_current_input`."""
        self._add_input("delta", key, inp, label)

    def get_input(self, key: str) -> Any:
        """The current or delta input stored under ``key`` (the full, labelled key).

        Raises
        ------
        ValueError
            No input has that key.
        """
        for table in (self._current_inputs, self._delta_inputs):
            if table is not None and key in table:
                return table[key]
        known = list(self._current_inputs or ()) + list(self._delta_inputs or ())
        raise ValueError(
            f"Input key {key!r} is not in current/delta inputs of the module {_describe(self)} "
            f"(keys: {known}). Labelled keys read '<label> // <key>'."
        )

    def _sum_inputs(self, which: str, init: Any, args: tuple, label: str | None,
                    kwargs: dict) -> Any:
        table = getattr(self, f"_{which}_inputs")
        if not table:
            return init
        prefix = None if label is None else _label_prefix(label)
        for key in tuple(table):
            if prefix is not None and not key.startswith(prefix):
                continue
            inp = table[key]
            try:
                init = init + (inp(*args, **kwargs) if callable(inp) else inp)
            except Exception as exc:
                raise ValueError(
                    f"Error in the {which} input {key!r} of {_describe(self)}: {inp!r}\n"
                    f"Error: {exc}"
                ) from exc
            if not callable(inp):
                del table[key]
        return init

    def sum_current_inputs(self, init: Any, *args: Any, label: str | None = None,
                           **kwargs: Any) -> Any:
        """``init`` plus every current input (of ``label`` only, when given).

        Callables are called with ``*args, **kwargs`` and stay registered; arrays are added
        once and removed.

        Raises
        ------
        ValueError
            An input failed (to compute or to add); the message names its key.
        """
        return self._sum_inputs("current", init, args, label, kwargs)

    def sum_delta_inputs(self, init: Any, *args: Any, label: str | None = None,
                         **kwargs: Any) -> Any:
        """``init`` plus every delta input (of ``label`` only, when given); as
        :meth:`sum_current_inputs`."""
        return self._sum_inputs("delta", init, args, label, kwargs)

    # -- calling --

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the before-updates, ``update(*args, **kwargs)``, the after-updates."""
        if self._before_updates:
            for fun in tuple(self._before_updates.values()):
                if hasattr(fun, _RECEIVE_INPUT):
                    fun(*args, **kwargs)
                else:
                    fun()
        ret = self.update(*args, **kwargs)
        if self._after_updates:
            for fun in tuple(self._after_updates.values()):
                if hasattr(fun, _NOT_RECEIVE_OUTPUT):
                    fun()
                else:
                    fun(ret)
        return ret


# --- markers for update hooks ----------------------------------------------------------------


def receive_update_output(obj: T) -> T:
    """Mark an after-update to be called with ``update``'s result (the default); return it."""
    if _NOT_RECEIVE_OUTPUT in getattr(obj, "__dict__", {}):
        delattr(obj, _NOT_RECEIVE_OUTPUT)
    return obj


def not_receive_update_output(obj: T) -> T:
    """Mark an after-update to be called with no argument; return it."""
    setattr(obj, _NOT_RECEIVE_OUTPUT, True)
    return obj


def receive_update_input(obj: T) -> T:
    """Mark a before-update to be called with the module's call arguments; return it."""
    setattr(obj, _RECEIVE_INPUT, True)
    return obj


def not_receive_update_input(obj: T) -> T:
    """Mark a before-update to be called with no argument (the default); return it."""
    if _RECEIVE_INPUT in getattr(obj, "__dict__", {}):
        delattr(obj, _RECEIVE_INPUT)
    return obj


# --- Prefetch --------------------------------------------------------------------------------


class Prefetch(Node):
    """A lazy reference to attribute ``item`` of ``module``, read when called.

    Calling it returns the attribute's value (``.value`` for a :class:`~brainstate.State`), so a
    Prefetch can be built before the module's ``init_state`` creates the state.

    Parameters
    ----------
    module : Module
        The module holding (or that will hold) the attribute.
    item : str
        The attribute name.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> pop = brainstate.nn.Dynamics(2)
    >>> v = pop.prefetch('V')
    >>> pop.V = brainstate.HiddenState(jnp.ones(2))
    >>> v()
    Array([1., 1.], dtype=float32)
    >>> v.get_item() is pop.V
    True
    """

    __module__ = "brainstate.nn"

    def __init__(self, module: Any, item: str) -> None:
        if not isinstance(item, str):
            raise TypeError(
                f"Prefetch item must be an attribute name (str), but got "
                f"{type(item).__name__}: {item!r}."
            )
        super().__init__()
        self.module = module
        self.item = item

    @property
    def delay(self) -> "PrefetchDelay":
        """Delayed reads of the item: ``prefetch.delay.at(time)`` (see :class:`PrefetchDelay`)."""
        return PrefetchDelay(self.module, self.item)

    def get_item(self) -> Any:
        """The referenced attribute itself (e.g. the State object).

        Raises
        ------
        AttributeError
            The module has no such attribute yet (or it is ``None``).
        """
        value = getattr(self.module, self.item, None)
        if value is None:
            raise AttributeError(
                f"The target {_describe(self.module)} should have an `{self.item}` attribute, "
                f"but it has none yet. Create it first (e.g. brainstate.nn.init_all_states(model)"
                f" runs init_state), or check the name given to prefetch."
            )
        return value

    def get_item_value(self) -> Any:
        """The referenced attribute's value (``.value`` for a State)."""
        item = self.get_item()
        return item.value if isinstance(item, State) else item

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The referenced attribute's value (arguments are ignored)."""
        return self.get_item_value()


class PrefetchDelay(Node):
    """Delayed reads of attribute ``item`` of ``module``: ``.at(time)`` gives a reader.

    Made by ``module.prefetch(item).delay``.
    """

    __module__ = "brainstate.nn"

    def __init__(self, module: Any, item: str) -> None:
        super().__init__()
        self.module = module
        self.item = item

    def at(self, *time_and_index: Any, **kwargs: Any) -> "PrefetchDelayAt":
        """A :class:`PrefetchDelayAt` reading the item ``time_and_index[0]`` ago."""
        return PrefetchDelayAt(self.module, self.item, *time_and_index, **kwargs)


def _prefetch_delay_key(item: str, update_every: Any) -> str:
    return f"{item}-prefetch-delay-{update_every}"


def _output_delay_key(update_every: Any) -> str:
    return f"output-delay-{update_every}"


def _require_dynamics(module: Any, what: str) -> None:
    if not isinstance(module, Dynamics):
        raise TypeError(f"{what} needs a brainstate.nn.Dynamics (it records the history after "
                        f"the module's updates), but got {type(module).__name__}: {module!r}.")


class PrefetchDelayAt(Node):
    """A lazy reference to state ``module.<item>`` as it was a fixed delay ago.

    Creating it registers the delay on the module's :class:`StateWithDelay` (made and added
    as an after-update of the module on first use), so create every reader before
    ``brainstate.nn.init_all_states``. Calling it returns the delayed value; with no delay
    time it returns the current value.

    Parameters
    ----------
    module : Dynamics
        The module holding the state.
    item : str
        The attribute name of the state.
    *time_and_index
        The delay time, then optional integer indices (a single tuple is unpacked).
    delay_init, interpolation, update_every, **kwargs
        Passed to the :class:`StateWithDelay` when this reader creates it.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Counter(brainstate.nn.Dynamics):
    ...     def init_state(self):
    ...         self.n = brainstate.HiddenState(jnp.zeros(1))
    ...     def update(self):
    ...         self.n.value = self.n.value + 1.
    >>> with brainstate.environ.context(dt=1.0):
    ...     counter = Counter(1)
    ...     two_ago = counter.prefetch_delay('n', 2.0)
    ...     _ = brainstate.nn.init_all_states(counter)
    ...     for _ in range(5):
    ...         counter()
    ...     counter.n.value, two_ago()
    (Array([5.], dtype=float32), Array([3.], dtype=float32))
    """

    __module__ = "brainstate.nn"

    def __init__(self, module: Any, item: str, *time_and_index: Any, delay_init: Any = None,
                 interpolation: str | None = None, update_every: Any = None,
                 **kwargs: Any) -> None:
        _require_dynamics(module, "prefetch_delay")
        super().__init__()
        self.module = module
        self.item = item
        if len(time_and_index) == 1 and isinstance(time_and_index[0], (tuple, list)):
            time_and_index = tuple(time_and_index[0])
        self.delay_time = time_and_index
        if time_and_index:
            key = _prefetch_delay_key(item, update_every)
            if not module.has_after_update(key):
                delay = StateWithDelay(module, item, init=delay_init, interpolation=interpolation,
                                       update_every=update_every, **kwargs)
                module.add_after_update(key, not_receive_update_output(delay))
            self.state_delay = module.get_after_update(key)
            self.delay_info = self.state_delay.register_delay(*time_and_index)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The delayed value of the state (arguments are ignored)."""
        if not self.delay_time or self.delay_info is None:
            return Prefetch(self.module, self.item).get_item_value()
        return self.state_delay.retrieve_at_step(*self.delay_info)


class OutputDelayAt(Node):
    """A lazy reference to the ``update`` result of ``module`` a fixed delay ago.

    Creating it registers the delay on the module's output :class:`Delay` (shape
    ``module.out_size``, default float dtype; made and added as an after-update on first use).

    Parameters
    ----------
    module : Dynamics
        The module whose output is recorded.
    *time_and_index
        The delay time, then optional integer indices.
    delay_init, interpolation, update_every, **kwargs
        Passed to the :class:`Delay` when this reader creates it.
    """

    __module__ = "brainstate.nn"

    def __init__(self, module: Any, *time_and_index: Any, delay_init: Any = None,
                 interpolation: str | None = None, update_every: Any = None,
                 **kwargs: Any) -> None:
        _require_dynamics(module, "output_delay")
        super().__init__()
        self.module = module
        key = _output_delay_key(update_every)
        if not module.has_after_update(key):
            target = jax.ShapeDtypeStruct(tuple(module.out_size), environ.dftype())
            delay = Delay(target, take_aware_unit=True, init=delay_init,
                          interpolation=interpolation, update_every=update_every, **kwargs)
            module.add_after_update(key, receive_update_output(delay))
        self.out_delay = module.get_after_update(key)
        self.delay_info = self.out_delay.register_delay(*time_and_index) if time_and_index \
            else None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The delayed output (the latest one when no delay time was given)."""
        return self.out_delay.retrieve_at_step(*((0,) if self.delay_info is None
                                                 else self.delay_info))


def init_maybe_prefetch(target: Any, *args: Any, **kwargs: Any) -> None:
    """Check that a prefetch target can be resolved now; other objects are left alone.

    Modules call it from ``init_state`` on the references they hold: a :class:`Prefetch`
    resolves its attribute (``AttributeError`` naming the module and attribute when it is
    missing); a :class:`PrefetchDelay` checks that the module records the item's history (a
    reader made by ``.at(time)`` registered it); anything else (including
    :class:`PrefetchDelayAt`, registered when created) is left alone.

    Parameters
    ----------
    target : Any
        The object to check.
    *args, **kwargs
        Ignored (the ``init_state`` arguments, accepted for call-site symmetry).
    """
    if isinstance(target, Prefetch):
        target.get_item()
    elif isinstance(target, PrefetchDelay):
        _require_dynamics(target.module, "a delayed prefetch")
        key = _prefetch_delay_key(target.item, None)
        if not target.module.has_after_update(key):
            raise KeyError(
                f"{_describe(target.module)} records no history of {target.item!r}: create a "
                f"reader first, e.g. module.prefetch({target.item!r}).delay.at(time) or "
                f"module.prefetch_delay({target.item!r}, time).")


for _fn in (init_maybe_prefetch, receive_update_output, not_receive_update_output,
            receive_update_input, not_receive_update_input):
    _fn.__module__ = "brainstate.nn"
del _fn
