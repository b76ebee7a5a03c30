"""``EnvironmentState`` (process-wide settings plus per-thread context frames), the default
instance the module-level functions act on, and the behaviours registered on an environment."""

from __future__ import annotations

import contextvars
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any

from brainstate.environ._keys import (
    _MISSING,
    _X64,
    DEFAULT_PRECISION,
    HOST_DEVICE_COUNT,
    PLATFORM,
    PRECISION,
    _public,
)

# --- the environment object -------------------------------------------------------------------


class _Frame:
    """One entered context: its merged view and what to restore on exit."""

    __slots__ = ("view", "overridden", "owner", "token", "x64")

    def __init__(self, view: dict, overridden: frozenset, owner: object) -> None:
        self.view = view
        self.overridden = overridden
        self.owner = owner
        self.token: contextvars.Token | None = None
        self.x64: Any = None


@_public
class EnvironmentState:
    """A set of environment settings: process-wide values plus thread-local context stacks.

    The module-level functions act on one default instance; pass ``env=`` to any of them to use
    an isolated instance instead (a library keeping its own defaults apart from the user's).

    Parameters
    ----------
    settings : Mapping, optional
        Initial process-wide settings, validated as by :func:`set`.

    Notes
    -----
    Only the default environment drives jax: setting ``precision`` there switches
    ``jax_enable_x64``, while on another instance it only changes what :func:`dftype` and
    friends return for that instance.

    Differs from upstream: upstream's state is a ``threading.local``, so a value ``set`` in one
    thread is invisible to threads started later (they see bare defaults). Here settings are
    shared by all threads and only contexts are thread-local.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> mine = environ.EnvironmentState()
    >>> environ.set(dt=0.5, env=mine)
    >>> environ.get_dt(env=mine)
    0.5
    >>> environ.get('dt', default=None)  # the default environment is untouched
    """

    __slots__ = ("_settings", "_functions", "_lock", "_view", "_live", "_drives_jax")

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self._settings: dict[str, Any] = {}
        self._functions: dict[str, Callable[[Any], Any]] = {}
        # Guards the settings and the live frames; never held while a behaviour runs.
        self._lock = threading.Lock()
        # The merged view for the current thread/task; with no context active it *is* the
        # settings dict, so an in-place ``set`` is seen everywhere at once.
        self._view: contextvars.ContextVar[dict] = contextvars.ContextVar(
            "brainstate.environ.view", default=self._settings)
        # Every entered, not yet exited frame of every thread, by ``id`` of its view (unique
        # while the frame lives): ``set``/``pop`` patch these views, exit finds its frame here.
        self._live: dict[int, _Frame] = {}
        self._drives_jax = False
        if settings:
            # imported here: _settings builds on this module
            from brainstate.environ._settings import set

            set(env=self, **dict(settings))

    @property
    def settings(self) -> Mapping[str, Any]:
        """Read-only view of the process-wide settings (contexts not applied)."""
        return types.MappingProxyType(self._settings)

    @property
    def functions(self) -> Mapping[str, Callable[[Any], Any]]:
        """Read-only view of the registered behaviours, by key."""
        return types.MappingProxyType(self._functions)

    def __repr__(self) -> str:
        return f"EnvironmentState({self._settings!r})"

    # --- writes (all under the lock) -----------------------------------------------------------

    def _store(self, values: dict[str, Any]) -> None:
        with self._lock:
            self._settings.update(values)
            for frame in self._live.values():
                for key, value in values.items():
                    if key not in frame.overridden:
                        frame.view[key] = value

    def _remove(self, key: str) -> Any:
        with self._lock:
            value = self._settings.pop(key)
            for frame in self._live.values():
                if key not in frame.overridden:
                    frame.view.pop(key, None)
            return value

    def _clear(self) -> None:
        with self._lock:
            self._settings.clear()
            self._functions.clear()
            for frame in self._live.values():
                for key in [k for k in frame.view if k not in frame.overridden]:
                    del frame.view[key]

    # --- contexts ------------------------------------------------------------------------------

    def _top(self) -> _Frame | None:
        """The innermost frame of this thread, or None outside any context."""
        return self._live.get(id(self._view.get()))

    def _push(self, values: dict[str, Any], owner: object) -> _Frame:
        with self._lock:
            base = self._view.get()
            parent = self._live.get(id(base))
            view = dict(base)
            view.update(values)
            overridden = frozenset(values) if parent is None else parent.overridden.union(values)
            frame = _Frame(view, overridden, owner)
            self._live[id(view)] = frame
            frame.token = self._view.set(view)
        return frame

    def _pop_frame(self, owner: object) -> _Frame:
        frame = self._top()
        if frame is None or frame.owner is not owner:
            raise RuntimeError(
                "brainstate.environ.context exited out of order: the innermost active context "
                "of this thread is not the one being exited. Exit contexts in the reverse order "
                "of entering them (use `with` blocks rather than calling __enter__/__exit__)."
            )
        with self._lock:
            del self._live[id(frame.view)]
            self._view.reset(frame.token)  # type: ignore[arg-type]
        return frame

    # --- reads ---------------------------------------------------------------------------------

    def _precision(self) -> int | str:
        precision = self._view.get().get(PRECISION)
        if precision is None:
            return 64 if _X64.value else DEFAULT_PRECISION
        return precision

    def _missing(self, key: str, default: Any, desc: str | None) -> Any:
        """Answer a key absent from the merged view: computed keys, the default, or KeyError."""
        if key == PRECISION:
            return self._precision()
        if key in (PLATFORM, HOST_DEVICE_COUNT):
            # imported here: _platform builds on this module (its setters run behaviours)
            from brainstate.environ._platform import get_host_device_count, get_platform

            return get_platform() if key == PLATFORM else get_host_device_count()
        if default is not _MISSING:
            return default
        raise KeyError(_missing_message(key, desc))

    # --- behaviours ----------------------------------------------------------------------------

    def _notify(self, values: Mapping[str, Any]) -> None:
        """Run the behaviours registered for ``values``' keys; the first error is re-raised."""
        if not self._functions:
            return
        error: BaseException | None = None
        for key, value in values.items():
            behavior = self._functions.get(key)
            if behavior is None:
                continue
            try:
                behavior(value)
            except Exception as exc:  # noqa: BLE001  (re-raised below, after the others ran)
                exc.add_note(f"raised by the behaviour registered for environ key {key!r} "
                             f"(called with {value!r})")
                error = error or exc
        if error is not None:
            raise error


_DEFAULT = EnvironmentState()
_DEFAULT._drives_jax = True
# Bound once: the hot readers call it directly (~10% faster than ``_DEFAULT._view.get()``).
_view = _DEFAULT._view.get
_X64_AT_IMPORT = bool(_X64.value)


def _env(env: EnvironmentState | None) -> EnvironmentState:
    if env is None:
        return _DEFAULT
    if not isinstance(env, EnvironmentState):
        raise TypeError(f"env must be a brainstate.environ.EnvironmentState or None; got "
                        f"{type(env).__name__} {env!r}. Create one with EnvironmentState().")
    return env


def _missing_message(key: str, desc: str | None) -> str:
    msg = (f"environ key {key!r} is not set: no context in this thread sets it and it has no "
           f"process-wide value. Set it with brainstate.environ.set({key}=...) for the whole "
           f"process or `with brainstate.environ.context({key}=...):` for a block, or pass "
           f"default= to get().")
    if desc:
        msg += f" Description of {key!r}: {desc}"
    return msg


# --- behaviours ---------------------------------------------------------------------------------


@_public
def register_default_behavior(key: str, behavior: Callable[[Any], Any],
                              replace_if_exist: bool = False,
                              env: EnvironmentState | None = None) -> None:
    """Register a callback run with the new value whenever ``key`` changes.

    It runs on :func:`set` (and :func:`set_dt`, :func:`set_precision`, :func:`set_platform`,
    :func:`set_host_device_count`), on entering a :func:`context` that sets ``key``, and on
    leaving it (with the value restored, if any). :func:`pop` and :func:`reset` do not run it.

    Parameters
    ----------
    key : str
        The key to watch.
    behavior : callable
        Called as ``behavior(value)``. An exception it raises propagates to the caller.
    replace_if_exist : bool
        Replace an existing behaviour for ``key`` instead of raising.
    env : EnvironmentState, optional
        The environment to watch; the default one if omitted.

    Raises
    ------
    TypeError
        If ``key`` is not a str or ``behavior`` is not callable.
    ValueError
        If ``key`` already has a behaviour and ``replace_if_exist`` is false.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> seen = []
    >>> mine = environ.EnvironmentState()
    >>> environ.register_default_behavior('dt', seen.append, env=mine)
    >>> with environ.context(dt=0.1, env=mine):
    ...     pass
    >>> seen
    [0.1]
    """
    if not isinstance(key, str):
        raise TypeError(f"behaviour key must be a str; got {type(key).__name__} {key!r}.")
    if not callable(behavior):
        raise TypeError(f"behaviour for environ key {key!r} must be callable; got "
                        f"{type(behavior).__name__} {behavior!r}.")
    target = _env(env)
    with target._lock:
        if key in target._functions and not replace_if_exist:
            raise ValueError(
                f"environ key {key!r} already has a behaviour ({target._functions[key]!r}); "
                f"pass replace_if_exist=True to replace it, or unregister_default_behavior() "
                f"first."
            )
        target._functions[key] = behavior


@_public
def unregister_default_behavior(key: str, env: EnvironmentState | None = None) -> bool:
    """Remove the behaviour registered for ``key``; return whether there was one.

    Parameters
    ----------
    key : str
        The watched key.
    env : EnvironmentState, optional
        The environment; the default one if omitted.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.unregister_default_behavior('no-such-key')
    False
    """
    target = _env(env)
    with target._lock:
        return target._functions.pop(key, None) is not None


@_public
def list_registered_behaviors(env: EnvironmentState | None = None) -> list[str]:
    """Return the keys that have a registered behaviour.

    Parameters
    ----------
    env : EnvironmentState, optional
        The environment; the default one if omitted.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.list_registered_behaviors(env=environ.EnvironmentState())
    []
    """
    return list(_env(env)._functions)
