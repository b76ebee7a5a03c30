"""What a hook receives and what the hook machinery raises: the contexts and the exceptions.

Each hook type gets one context class (``brainstate/_hooks.py`` lists them); the cores'
dispatch builds these objects directly into their slots (``configure_hooks`` hands it the
classes), so their fields are part of the contract with the cores: see docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

__all__ = [
    "HookError",
    "HookExecutionError",
    "HookRegistrationError",
    "HookCancellationError",
    "HookWarning",
    "HookContext",
    "ReadHookContext",
    "WriteHookContext",
    "MutableWriteHookContext",
    "RestoreHookContext",
    "InitHookContext",
]

#: The hook type names (``brainstate/_hooks.py`` keeps them in dispatch-bit order).
HookType = Literal["read", "write_before", "write_after", "restore", "init"]


# --- exceptions ---------------------------------------------------------------------------


class HookError(Exception):
    """Base class of every error raised by the hook machinery."""

    __module__ = "brainstate"


class HookExecutionError(HookError):
    """A hook callback raised; the original exception is chained as ``__cause__``."""

    __module__ = "brainstate"


class HookRegistrationError(HookError):
    """A hook could not be registered (unknown hook type or non-callable callback)."""

    __module__ = "brainstate"


class HookCancellationError(HookError):
    """A ``write_before`` hook vetoed a write by setting ``ctx.cancel = True``."""

    __module__ = "brainstate"


class HookWarning(UserWarning):
    """A hook failed under the ``on_error='log'`` policy and no ``error_logger`` was set."""

    __module__ = "brainstate"


# --- contexts -----------------------------------------------------------------------------


@dataclass(slots=True)
class HookContext:
    """Base of the objects passed to hook callbacks.

    Parameters
    ----------
    operation : str
        The hook type that fired: ``'read'``, ``'write_before'``, ``'write_after'``,
        ``'restore'`` or ``'init'``.
    state_ref : weakref.ref
        Weak reference to the state; a context never keeps its state alive.
    timestamp : float
        ``time.time()`` when the context was created.
    metadata : dict
        Free-form scratch space. Contexts of ``read``, ``write_after``, ``restore`` and
        ``init`` are shared by all hooks of one manager (global or per-state) for one
        operation, so earlier hooks can leave data here for later ones.
    """

    __module__ = "brainstate"

    operation: HookType
    state_ref: weakref.ref
    timestamp: float = field(default_factory=time.time)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # Only reached for unset slots. Dispatch leaves ``metadata`` unset until a hook reads
        # it: most hooks never do, and the dict costs as much as the rest of the context.
        if name == "metadata":
            md: dict[str, Any] = {}
            self.metadata = md
            return md
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def state(self) -> Any:
        """The state the operation acts on, or ``None`` once it was garbage collected."""
        return self.state_ref()

    @property
    def state_name(self) -> Optional[str]:
        """The state's ``name``, or ``None`` if it is unnamed or was garbage collected."""
        s = self.state_ref()
        return None if s is None else getattr(s, "name", None)


@dataclass(slots=True)
class ReadHookContext(HookContext):
    """Context of ``read`` hooks.

    Use ``ctx.value``, never ``ctx.state.value``: reading the state from inside its own
    ``read`` hook fires the hook again and recurses without end.

    Parameters
    ----------
    value : Any
        The value being read.
    """

    __module__ = "brainstate"

    value: Any = None


@dataclass(slots=True)
class WriteHookContext(HookContext):
    """Context of ``write_after`` hooks (and base of the other write contexts).

    Parameters
    ----------
    value : Any
        The new value (already stored when a ``write_after`` hook runs).
    old_value : Any
        The value before the write.
    """

    __module__ = "brainstate"

    value: Any = None
    old_value: Any = None


@dataclass(slots=True)
class MutableWriteHookContext(WriteHookContext):
    """Context of ``write_before`` hooks: transform the value or veto the write.

    Every hook gets a fresh context. ``value`` is the value that entered this manager's
    chain (for per-state hooks: the global chain's result); ``transformed_value`` is the
    result of the earlier hooks of the chain, ``None`` while none transformed.

    Parameters
    ----------
    transformed_value : Any
        Set it to replace the value written. ``None`` means "no change", so a hook cannot
        transform a value *to* ``None``.
    cancel : bool
        Set it to ``True`` to veto the write: the state keeps its value and the writer gets a
        :class:`HookCancellationError`.
    cancel_reason : str or None
        Text put into the :class:`HookCancellationError` message.

    Examples
    --------
    >>> def clip(ctx):
    ...     v = ctx.transformed_value if ctx.transformed_value is not None else ctx.value
    ...     ctx.transformed_value = min(v, 1.0)
    >>> def only_positive(ctx):
    ...     if ctx.value < 0:
    ...         ctx.cancel = True
    ...         ctx.cancel_reason = f"value must be >= 0, got {ctx.value}"
    """

    __module__ = "brainstate"

    transformed_value: Any = None
    cancel: bool = False
    cancel_reason: Optional[str] = None


@dataclass(slots=True)
class RestoreHookContext(WriteHookContext):
    """Context of ``restore`` hooks (``state.restore_value(v)``); observation only.

    Parameters
    ----------
    value : Any
        The restored value (already stored).
    old_value : Any
        The value before the restore.
    """

    __module__ = "brainstate"


@dataclass(slots=True)
class InitHookContext(HookContext):
    """Context of ``init`` hooks, fired at the end of ``State.__init__``; observation only.

    Parameters
    ----------
    value : Any
        The initial value.
    init_metadata : dict
        What the state was constructed with (name, tags, ...).
    """

    __module__ = "brainstate"

    value: Any = None
    init_metadata: dict[str, Any] = field(default_factory=dict)
