"""State hooks: hooks, handles, per-state managers and the global registry.

A hook is a Python callback that observes (or, for ``write_before``, transforms or vetoes) an
operation on a :class:`~brainstate.State`. The hook types and their contexts:

- ``init``: end of ``State.__init__``; :class:`InitHookContext`.
- ``read``: every ``state.value`` read; :class:`ReadHookContext`.
- ``write_before``: ``state.value = v`` before the store; :class:`MutableWriteHookContext`
  (may transform the value or veto the write).
- ``write_after``: after the store; :class:`WriteHookContext`.
- ``restore``: ``state.restore_value(v)`` after the store; :class:`RestoreHookContext`.

For every operation the global hooks (:class:`GlobalHookRegistry`) run before the per-state
hooks. Higher ``priority`` runs first; equal priorities run in registration order. The contexts
and the exceptions live in ``brainstate/_hook_contexts.py`` and are re-exported here.

Contract with the state core
----------------------------
The cores dispatch (``csrc/_core_hooks.pxi``, and its pure twin ``brainstate/_core_py/_hooks.py``
for the pure core and for hosted states), only while :func:`active_count` is non-zero (they
learn the count through the listener installed with :func:`set_activity_listener`), with the
classes of this module (contexts included) and its error policy (``_handle_error``, ``_cancel_error``), handed over
by ``configure_hooks``. Each manager keeps ``mask``, the OR of the bits
(:data:`READ`, :data:`WRITE_BEFORE`, ...) of the hook types that have at least one enabled hook,
and one priority-sorted tuple of enabled hooks per type. Both are rebuilt when hooks are
registered, removed, enabled, disabled or cleared, never while dispatching, so a dispatch with
nothing to run costs two attribute loads and two bit tests.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

from brainstate._core_constants import (
    HOOK_INIT,
    HOOK_READ,
    HOOK_RESTORE,
    HOOK_WRITE_AFTER,
    HOOK_WRITE_BEFORE,
)
from brainstate._core_py import _hooks as _dispatch  # the pure dispatch (hosted states, run_*)
from brainstate._hook_contexts import (
    HookCancellationError,
    HookContext,
    HookError,
    HookExecutionError,
    HookRegistrationError,
    HookType,
    HookWarning,
    InitHookContext,
    MutableWriteHookContext,
    ReadHookContext,
    RestoreHookContext,
    WriteHookContext,
)

__all__ = [
    # exceptions
    "HookError",
    "HookExecutionError",
    "HookRegistrationError",
    "HookCancellationError",
    "HookWarning",
    # contexts
    "HookContext",
    "ReadHookContext",
    "WriteHookContext",
    "MutableWriteHookContext",
    "RestoreHookContext",
    "InitHookContext",
    # hooks and managers
    "Hook",
    "HookHandle",
    "HookConfig",
    "HookManager",
    "GlobalHookRegistry",
    # global registration
    "register_state_hook",
    "unregister_state_hook",
    "clear_state_hooks",
    "has_state_hooks",
    "list_state_hooks",
]

#: The valid hook type strings, in dispatch-bit order.
HOOK_TYPES: tuple[str, ...] = ("read", "write_before", "write_after", "restore", "init")

#: Bits of :attr:`HookManager.mask`, one per hook type (``brainstate/_core_constants.py``).
READ = HOOK_READ
WRITE_BEFORE = HOOK_WRITE_BEFORE
WRITE_AFTER = HOOK_WRITE_AFTER
RESTORE = HOOK_RESTORE
INIT = HOOK_INIT

_BITS = (READ, WRITE_BEFORE, WRITE_AFTER, RESTORE, INIT)
_INDEX = {t: i for i, t in enumerate(HOOK_TYPES)}
_CHAIN_ATTRS = (
    "_read_chain",
    "_write_before_chain",
    "_write_after_chain",
    "_restore_chain",
    "_init_chain",
)
_EXPECTED_TYPES = "expected one of " + ", ".join(repr(t) for t in HOOK_TYPES)

_ref = weakref.ref


# --- Hook and HookHandle ------------------------------------------------------------------

_id_lock = threading.Lock()
_next_hook_id = 0


def _new_hook_id() -> int:
    # A lock, not itertools.count: ids must stay unique on free-threaded builds too.
    global _next_hook_id
    with _id_lock:
        hook_id = _next_hook_id
        _next_hook_id = hook_id + 1
    return hook_id


def _wrap_error(hook: Hook, exc: BaseException) -> HookExecutionError:
    err = HookExecutionError(
        f"Hook '{hook.name}' execution failed: {type(exc).__name__}: {exc}"
    )
    err.__cause__ = exc
    return err


class Hook:
    """A callback with a priority, a name and an enabled flag.

    Parameters
    ----------
    callback : callable
        Called with one :class:`HookContext`; its return value is ignored by dispatch.
    priority : int, default 0
        Higher runs earlier; equal priorities run in registration order.
    name : str, optional
        Shown in reprs and error messages; defaults to ``'hook_<hook_id>'``.
    enabled : bool, default True
        A disabled hook is skipped.

    Raises
    ------
    HookRegistrationError
        If ``callback`` is not callable.

    Examples
    --------
    >>> from brainstate import Hook
    >>> Hook(lambda ctx: None, priority=5, name="log")
    Hook(name='log', priority=5, enabled)
    """

    __module__ = "brainstate"
    # ``_owner``: weak reference to the manager the hook is registered in (None while it is
    # in none); ``enabled`` uses it to keep that manager's cached chain and mask exact.
    __slots__ = ("callback", "priority", "name", "_enabled", "hook_id", "_error_count", "_owner", "_index")

    def __init__(
        self,
        callback: Callable[[Any], Any],
        priority: int = 0,
        name: Optional[str] = None,
        enabled: bool = True,
    ):
        if not callable(callback):
            raise HookRegistrationError(
                f"Hook callback must be callable, got {type(callback)}; "
                f"pass a function taking one context argument."
            )
        self.callback = callback
        self.priority = priority
        self.hook_id = _new_hook_id()
        self.name = name or f"hook_{self.hook_id}"
        self._enabled = bool(enabled)
        self._error_count = 0
        self._owner: Optional[weakref.ref] = None
        self._index = 0

    @property
    def enabled(self) -> bool:
        """Whether the hook runs; setting it updates the owning manager at once."""
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        owner = self._owner
        mgr = None if owner is None else owner()
        if mgr is None:
            self._enabled = bool(value)
            return
        with mgr._lock:
            self._enabled = bool(value)
            if self._owner is owner:  # not unregistered meanwhile
                mgr._rebuild(self._index)

    @property
    def error_count(self) -> int:
        """How many times the callback raised (counted by the manager's error policy)."""
        return self._error_count

    def execute(self, context: HookContext) -> Any:
        """Call the callback with ``context``.

        Parameters
        ----------
        context : HookContext
            Passed to the callback.

        Returns
        -------
        Any
            The callback's return value, or ``None`` without calling it if the hook is disabled.

        Raises
        ------
        HookExecutionError
            If the callback raised; the original exception is its ``__cause__``.
        """
        if not self._enabled:
            return None
        try:
            return self.callback(context)
        except Exception as exc:
            raise _wrap_error(self, exc) from exc

    def __lt__(self, other: Hook) -> bool:
        if not isinstance(other, Hook):
            return NotImplemented
        if self.priority != other.priority:
            return self.priority > other.priority
        return self.hook_id < other.hook_id

    def __repr__(self) -> str:
        status = "enabled" if self._enabled else "disabled"
        return f"Hook(name='{self.name}', priority={self.priority}, {status})"


class HookHandle:
    """The handle returned by every hook registration: enable, disable or remove the hook.

    The handle keeps only a weak reference to its manager, so it never keeps a state alive.

    Examples
    --------
    >>> from brainstate import HookManager
    >>> manager = HookManager()   # a handle does not keep its manager alive
    >>> handle = manager.register_hook('read', lambda ctx: None, name='r')
    >>> handle.disable(); handle
    HookHandle(name='r', priority=0, disabled)
    >>> handle.remove()
    True
    >>> handle
    HookHandle(name='r', removed)
    """

    __module__ = "brainstate"
    __slots__ = ("_manager_ref", "_hook", "_hook_type", "_removed")

    def __init__(self, manager_ref: weakref.ref, hook: Hook, hook_type: str):
        self._manager_ref = manager_ref
        self._hook = hook
        self._hook_type = hook_type
        self._removed = False

    def _live_manager(self) -> Optional[HookManager]:
        mgr = self._manager_ref()
        if mgr is None or mgr._retired:
            return None
        return mgr

    def _set_enabled(self, enabled: bool) -> None:
        verb = "enable" if enabled else "disable"
        if self._removed:
            raise HookError(
                f"Cannot {verb} a removed hook ('{self._hook.name}'); register it again instead."
            )
        mgr = self._live_manager()
        if mgr is None:
            raise HookError(
                f"Cannot {verb} hook '{self._hook.name}': its HookManager has been garbage "
                f"collected (its state is gone, or GlobalHookRegistry.reset() was called)."
            )
        self._hook.enabled = enabled

    def enable(self) -> None:
        """Enable the hook.

        Raises
        ------
        HookError
            If the hook was removed or its manager was garbage collected.
        """
        self._set_enabled(True)

    def disable(self) -> None:
        """Disable the hook (it stays registered and can be enabled again).

        Raises
        ------
        HookError
            If the hook was removed or its manager was garbage collected.
        """
        self._set_enabled(False)

    def remove(self) -> bool:
        """Unregister the hook.

        Returns
        -------
        bool
            ``True`` if it was removed now; ``False`` if it was already removed or its manager
            is gone.
        """
        if self._removed:
            return False
        mgr = self._live_manager()
        if mgr is None:
            return False
        return mgr.unregister_hook(self)

    def is_enabled(self) -> bool:
        """Whether the hook is registered and enabled."""
        return not self._removed and self._hook._enabled

    def is_removed(self) -> bool:
        """Whether the hook was removed through this handle or its manager."""
        return self._removed

    @property
    def name(self) -> str:
        """The hook's name."""
        return self._hook.name

    @property
    def priority(self) -> int:
        """The hook's priority."""
        return self._hook.priority

    def __repr__(self) -> str:
        if self._removed:
            return f"HookHandle(name='{self.name}', removed)"
        status = "enabled" if self._hook._enabled else "disabled"
        return f"HookHandle(name='{self.name}', priority={self.priority}, {status})"


# --- activity count -----------------------------------------------------------------------
# The number of live managers whose mask is non-zero. The state core skips every dispatch
# call while it is zero, so it must never be lower than the truth.

_active_lock = threading.RLock()  # re-entrant: a manager's __del__ may run inside _adjust_active
_active = 0


def _no_listener(count: int) -> None:
    pass


_notify: Callable[[int], None] = _no_listener


def _adjust_active(delta: int) -> None:
    global _active
    with _active_lock:
        _active += delta
        # Called under the lock so the last notification always carries the final count.
        _notify(_active)


def active_count() -> int:
    """Return how many live hook managers (global registry included) have an enabled hook."""
    return _active


def set_activity_listener(fn: Optional[Callable[[int], None]]) -> Callable[[int], None]:
    """Install the callable told the active-manager count whenever it changes.

    The listener is called at once with the current count, then after every change, while
    a module lock is held: it must be quick and must not register or toggle hooks.

    Parameters
    ----------
    fn : callable or None
        ``fn(count: int)``; ``None`` restores the no-op listener.

    Returns
    -------
    callable
        The listener that was installed before.
    """
    global _notify
    with _active_lock:
        previous = _notify
        _notify = _no_listener if fn is None else fn
        _notify(_active)
    return previous


# --- HookConfig and HookManager -----------------------------------------------------------


@dataclass
class HookConfig:
    """Error policy of a :class:`HookManager`.

    When a hook callback raises, the manager counts the error on the hook and then:

    - ``'raise'``: raises :class:`HookExecutionError` (chained to the original) to the caller
      of the operation. Raised from a ``write_before`` hook, it aborts the write: the state
      keeps its value.
    - ``'log'`` (default): calls ``error_logger(msg, error, hook, ctx)`` if set, otherwise
      warns :class:`HookWarning`; the remaining hooks run and **the operation proceeds**. In
      particular a ``write_before`` hook that raises does *not* veto the write under this
      policy (as upstream brainstate).
    - ``'ignore'``: nothing; the operation proceeds.

    To veto a write, do not raise: set ``ctx.cancel = True`` (and ``ctx.cancel_reason``) in a
    ``write_before`` hook. That raises :class:`HookCancellationError` under every policy. Use
    ``on_error='raise'`` when any hook failure should abort the operation.

    Parameters
    ----------
    on_error : {'log', 'raise', 'ignore'}, default 'log'
        The policy above.
    error_logger : callable, optional
        ``error_logger(msg, error, hook, ctx)``, used by ``'log'`` instead of a warning.
    max_errors_per_hook : int, default 10
        Error count at which ``disable_on_error`` disables a hook.
    disable_on_error : bool, default False
        Disable a hook once it failed ``max_errors_per_hook`` times.

    Examples
    --------
    >>> from brainstate import HookConfig, HookManager
    >>> strict = HookManager(HookConfig(on_error='raise'))
    """

    __module__ = "brainstate"

    on_error: Literal["raise", "log", "ignore"] = "log"
    error_logger: Optional[Callable[[str, Exception, Hook, HookContext], None]] = None
    max_errors_per_hook: int = 10
    disable_on_error: bool = False

    def __post_init__(self) -> None:
        if self.on_error not in ("raise", "log", "ignore"):
            raise ValueError(
                f"HookConfig.on_error must be 'raise', 'log' or 'ignore', got {self.on_error!r}."
            )


class HookManager:
    """The hooks of one state (or, as :class:`GlobalHookRegistry`, of all states).

    Thread-safe: registration, toggling and execution take the manager's re-entrant lock, and
    execution holds it for a whole chain, so the hooks of one manager never run concurrently.
    A hook may read or write *other* states.

    Parameters
    ----------
    config : HookConfig, optional
        The error policy; a default :class:`HookConfig` is created on first use.

    Attributes
    ----------
    mask : int
        OR of the bits (``READ=1, WRITE_BEFORE=2, WRITE_AFTER=4, RESTORE=8, INIT=16``) of the
        hook types with at least one enabled hook.

    Examples
    --------
    >>> from brainstate import HookManager
    >>> manager = HookManager()
    >>> handle = manager.register_hook('read', lambda ctx: print(ctx.value), priority=10)
    >>> manager.has_hooks('read')
    True
    >>> handle.disable()
    >>> manager.has_hooks('read')
    False
    """

    __module__ = "brainstate"
    __slots__ = (
        "mask",
        "_lock",
        "_lists",
        "_config",
        "_retired",
        "_read_chain",
        "_write_before_chain",
        "_write_after_chain",
        "_restore_chain",
        "_init_chain",
        "__weakref__",
    )

    def __init__(self, config: Optional[HookConfig] = None):
        self.mask = 0
        self._lock = _new_lock()
        self._lists: tuple[list[Hook], ...] = ([], [], [], [], [])
        self._config = config
        self._retired = False
        self._read_chain = self._write_before_chain = self._write_after_chain = ()
        self._restore_chain = self._init_chain = ()

    def __del__(self) -> None:
        # A collected manager with enabled hooks must leave the active count.
        try:
            if self.mask:
                self.mask = 0
                _adjust_active(-1)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    @property
    def config(self) -> HookConfig:
        """The error policy (:class:`HookConfig`); assign a new one to change it."""
        cfg = self._config
        if cfg is None:
            cfg = self._config = HookConfig()
        return cfg

    @config.setter
    def config(self, value: HookConfig) -> None:
        self._config = value

    # -- bookkeeping (callers hold self._lock) --

    def _rebuild(self, index: int) -> None:
        chain = tuple(sorted(h for h in self._lists[index] if h._enabled))
        setattr(self, _CHAIN_ATTRS[index], chain)
        old = self.mask
        mask = (old | _BITS[index]) if chain else (old & ~_BITS[index])
        self.mask = mask
        if bool(old) != bool(mask):
            _adjust_active(1 if mask else -1)

    @staticmethod
    def _index(hook_type: Any, error: type[Exception]) -> int:
        try:
            return _INDEX[hook_type]
        except (KeyError, TypeError):
            raise error(f"Invalid hook type: {hook_type}; {_EXPECTED_TYPES}.") from None

    # -- registration --

    def register_hook(
        self,
        hook_type: HookType,
        callback: Callable[[Any], Any],
        priority: int = 0,
        name: Optional[str] = None,
        enabled: bool = True,
    ) -> HookHandle:
        """Register ``callback`` for ``hook_type``.

        Parameters
        ----------
        hook_type : {'read', 'write_before', 'write_after', 'restore', 'init'}
            When the hook fires.
        callback : callable
            Called with the operation's context.
        priority : int, default 0
            Higher runs earlier.
        name : str, optional
            Name shown in reprs and error messages.
        enabled : bool, default True
            Register it disabled with ``False``.

        Returns
        -------
        HookHandle
            Enables, disables or removes the hook.

        Raises
        ------
        HookRegistrationError
            If ``hook_type`` is not a valid type or ``callback`` is not callable.
        """
        index = self._index(hook_type, HookRegistrationError)
        hook = Hook(callback, priority, name, enabled)
        hook._index = index
        with self._lock:
            hook._owner = _ref(self)
            self._lists[index].append(hook)
            if hook._enabled:
                self._rebuild(index)
        return HookHandle(_ref(self), hook, HOOK_TYPES[index])

    def unregister_hook(self, handle: HookHandle) -> bool:
        """Remove the hook of ``handle``.

        Returns
        -------
        bool
            ``True`` if it was registered here and is now removed, ``False`` otherwise.
        """
        index = _INDEX[handle._hook_type]
        with self._lock:
            hooks = self._lists[index]
            for i, hook in enumerate(hooks):
                if hook is handle._hook:
                    del hooks[i]
                    hook._owner = None
                    self._rebuild(index)
                    handle._removed = True
                    return True
        return False

    def get_hooks(self, hook_type: Optional[HookType] = None) -> list[Hook]:
        """Return the registered hooks (enabled or not), in registration order.

        Parameters
        ----------
        hook_type : str, optional
            Only hooks of this type; ``None`` gives every type, ``init`` included (upstream
            omitted ``init`` hooks here; ours does not).

        Raises
        ------
        ValueError
            If ``hook_type`` is not a valid type.
        """
        if hook_type is None:
            with self._lock:
                return [h for hooks in self._lists for h in hooks]
        index = self._index(hook_type, ValueError)
        with self._lock:
            return list(self._lists[index])

    def clear_hooks(self, hook_type: Optional[HookType] = None) -> None:
        """Remove every hook, or every hook of ``hook_type``.

        Raises
        ------
        ValueError
            If ``hook_type`` is not a valid type.
        """
        indices = range(len(HOOK_TYPES)) if hook_type is None else (self._index(hook_type, ValueError),)
        with self._lock:
            for index in indices:
                for hook in self._lists[index]:
                    hook._owner = None
                self._lists[index].clear()
                self._rebuild(index)

    def has_hooks(self, hook_type: Optional[HookType] = None) -> bool:
        """Whether hooks are registered.

        Parameters
        ----------
        hook_type : str, optional
            With a type: whether an *enabled* hook of that type exists. With ``None``: whether
            any hook, enabled or not, is registered.

        Raises
        ------
        ValueError
            If ``hook_type`` is not a valid type (even when nothing is registered).
        """
        if hook_type is None:
            return any(self._lists)
        return bool(self.mask & _BITS[self._index(hook_type, ValueError)])

    # -- execution (the chain runners of the pure dispatch, brainstate/_core_py/_hooks.py) --

    def execute_read_hooks(self, value: Any, state_ref: weakref.ref) -> None:
        """Run the ``read`` hooks with one shared :class:`ReadHookContext`."""
        _dispatch._run_read(self, value, state_ref)

    def execute_write_before_hooks(self, new_value: Any, old_value: Any, state_ref: weakref.ref) -> Any:
        """Run the ``write_before`` chain and return the (possibly transformed) value.

        Raises
        ------
        HookCancellationError
            If a hook set ``ctx.cancel``.
        """
        return _dispatch._run_write_before(self, new_value, old_value, state_ref)

    def execute_write_after_hooks(self, new_value: Any, old_value: Any, state_ref: weakref.ref) -> None:
        """Run the ``write_after`` hooks with one shared :class:`WriteHookContext`."""
        _dispatch._run_write_after(self, new_value, old_value, state_ref)

    def execute_restore_hooks(self, new_value: Any, old_value: Any, state_ref: weakref.ref) -> None:
        """Run the ``restore`` hooks with one shared :class:`RestoreHookContext`."""
        _dispatch._run_restore(self, new_value, old_value, state_ref)

    def execute_init_hooks(
        self, value: Any, state_ref: weakref.ref, init_metadata: Optional[dict] = None
    ) -> None:
        """Run the ``init`` hooks with one shared :class:`InitHookContext`."""
        _dispatch._run_init(self, value, state_ref, init_metadata)

    def __repr__(self) -> str:
        counts = ", ".join(f"{t}={len(h)}" for t, h in zip(HOOK_TYPES, self._lists) if h)
        return f"{type(self).__name__}({counts})"


# --- what the cores' dispatch uses ---------------------------------------------------------
# The dispatch itself is the cores': csrc/_core_hooks.pxi and its pure twin
# brainstate/_core_py/_hooks.py, which learn this module's classes from ``configure_hooks``.


def _new_lock() -> Any:
    """The manager lock: the compiled core's ``FastRLock`` when available (its dispatch takes
    it from C), else ``threading.RLock``."""
    from brainstate._impl import core

    cls = getattr(core, "FastRLock", None)
    return cls() if cls is not None else threading.RLock()


def _cancel_error(hook: Hook, ctx: MutableWriteHookContext) -> HookCancellationError:
    """The error a ``write_before`` hook's veto (``ctx.cancel = True``) raises."""
    reason = ctx.cancel_reason or "Hook cancelled the operation"
    return HookCancellationError(f"{hook.name}: {reason}")


def _handle_error(mgr: HookManager, hook: Hook, exc: Exception, ctx: HookContext) -> None:
    """Apply ``mgr.config`` to ``exc`` raised by ``hook``; the caller holds ``mgr._lock``."""
    error = _wrap_error(hook, exc)
    cfg = mgr.config
    hook._error_count += 1
    count = hook._error_count
    if cfg.disable_on_error and count >= cfg.max_errors_per_hook:
        hook.enabled = False  # rebuilds mgr's chain (we hold its re-entrant lock)
        msg = f"Hook '{hook.name}' disabled after {count} errors. Last error: {error}"
    else:
        msg = f"Hook '{hook.name}' error #{count}: {error}"
    policy = cfg.on_error
    if policy == "raise":
        raise HookExecutionError(msg) from error
    if policy == "ignore":
        return
    if cfg.error_logger is not None:
        cfg.error_logger(msg, error, hook, ctx)
    else:
        warnings.warn(
            msg + " (the operation went ahead; set ctx.cancel=True to veto a write, or "
            "HookConfig(on_error='raise') to propagate hook errors)",
            HookWarning,
            stacklevel=4,
        )


# --- global registry ----------------------------------------------------------------------

#: The current global registry, or None before the first ``instance()``; read by dispatch.
_global: Optional[GlobalHookRegistry] = None
_global_lock = threading.Lock()


def _no_registry_listener(registry: Optional[GlobalHookRegistry]) -> None:
    pass


_publish_global: Callable[[Optional[GlobalHookRegistry]], None] = _no_registry_listener


def set_registry_listener(
    fn: Optional[Callable[[Optional[GlobalHookRegistry]], None]],
) -> Callable[[Optional[GlobalHookRegistry]], None]:
    """Install the callable told which registry holds the global hooks (``None``: none yet).

    Like :func:`set_activity_listener`: called at once with the current registry, then at each
    :meth:`GlobalHookRegistry.instance` that creates one and each :meth:`~GlobalHookRegistry.reset`,
    under the registry lock. ``None`` restores the no-op listener; returns the previous one.
    """
    global _publish_global
    with _global_lock:
        previous = _publish_global
        _publish_global = _no_registry_listener if fn is None else fn
        _publish_global(_global)
    return previous


class GlobalHookRegistry(HookManager):
    """The process-wide :class:`HookManager` whose hooks fire for every state.

    A singleton: ``GlobalHookRegistry()`` and :meth:`instance` return the same object until
    :meth:`reset`. Its hooks run before the per-state hooks of the same operation. Change its
    error policy through ``GlobalHookRegistry.instance().config``.

    Examples
    --------
    >>> from brainstate import GlobalHookRegistry
    >>> registry = GlobalHookRegistry.instance()
    >>> registry is GlobalHookRegistry()
    True
    """

    __module__ = "brainstate"
    __slots__ = ()

    _instance: Optional[GlobalHookRegistry] = None

    def __new__(cls, config: Optional[HookConfig] = None) -> GlobalHookRegistry:
        global _global
        with _global_lock:
            inst = GlobalHookRegistry._instance
            if inst is None:
                inst = super().__new__(cls)
                HookManager.__init__(inst, config)
                GlobalHookRegistry._instance = _global = inst
                _publish_global(inst)
        return inst

    def __init__(self, config: Optional[HookConfig] = None):
        # Initialised once in __new__; constructing again must not drop registered hooks.
        pass

    @classmethod
    def instance(cls) -> GlobalHookRegistry:
        """Return the singleton, creating it on first use."""
        inst = GlobalHookRegistry._instance
        return inst if inst is not None else cls()

    @classmethod
    def reset(cls) -> None:
        """Drop the singleton and all its hooks; the next :meth:`instance` is a fresh one.

        Handles of the old registry then behave as if their manager was garbage collected.
        """
        global _global
        with _global_lock:
            old = GlobalHookRegistry._instance
            GlobalHookRegistry._instance = _global = None
            _publish_global(None)
        if old is not None:
            with old._lock:
                old._retired = True
                old.clear_hooks()


def register_state_hook(
    hook_type: HookType,
    callback: Callable[[Any], Any],
    priority: int = 0,
    name: Optional[str] = None,
    enabled: bool = True,
) -> HookHandle:
    """Register a global hook, fired for every state before its own hooks.

    Parameters
    ----------
    hook_type : {'read', 'write_before', 'write_after', 'restore', 'init'}
        When the hook fires.
    callback : callable
        Called with the operation's context.
    priority : int, default 0
        Higher runs earlier among the global hooks.
    name : str, optional
        Name shown in reprs and error messages.
    enabled : bool, default True
        Register it disabled with ``False``.

    Returns
    -------
    HookHandle

    Examples
    --------
    >>> import brainstate
    >>> handle = brainstate.register_state_hook('write_after', lambda ctx: print(ctx.state_name))
    >>> handle.remove()
    True
    """
    return GlobalHookRegistry.instance().register_hook(hook_type, callback, priority, name, enabled)


def unregister_state_hook(handle: HookHandle) -> bool:
    """Remove a global hook; ``False`` if it was not registered (any more)."""
    return GlobalHookRegistry.instance().unregister_hook(handle)


def clear_state_hooks(hook_type: Optional[HookType] = None) -> None:
    """Remove every global hook, or every global hook of ``hook_type``."""
    GlobalHookRegistry.instance().clear_hooks(hook_type)


def has_state_hooks(hook_type: Optional[HookType] = None) -> bool:
    """Whether global hooks are registered (with a type: an enabled one of that type)."""
    return GlobalHookRegistry.instance().has_hooks(hook_type)


def list_state_hooks(hook_type: Optional[HookType] = None) -> list[Hook]:
    """Return the global hooks, optionally only those of ``hook_type``."""
    return GlobalHookRegistry.instance().get_hooks(hook_type)


for _fn in (register_state_hook, unregister_state_hook, clear_state_hooks, has_state_hooks, list_state_hooks):
    _fn.__module__ = "brainstate"
del _fn
