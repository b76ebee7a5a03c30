"""brainstate: a typed, checked state runtime for JAX whose hot paths run in a compiled core.

A :class:`State` is a mutable slot holding a PyTree of arrays; its first value fixes an
abstract signature that every later write is checked against. ``brainstate._impl.IMPLEMENTATION``
says which core runs (``"c"`` compiled, ``"py"`` pure; ``BRAINSTATE_NO_EXTENSIONS=1`` forces
the pure one).
"""

import sys

from brainstate._error import (
    BatchAxisError,
    BrainStateError,
    StateSignatureError,
    TraceContextError,
)
from brainstate._hooks import (
    GlobalHookRegistry,
    Hook,
    HookCancellationError,
    HookConfig,
    HookContext,
    HookError,
    HookExecutionError,
    HookHandle,
    HookManager,
    HookRegistrationError,
    HookWarning,
    InitHookContext,
    MutableWriteHookContext,
    ReadHookContext,
    RestoreHookContext,
    WriteHookContext,
    clear_state_hooks,
    has_state_hooks,
    list_state_hooks,
    register_state_hook,
    unregister_state_hook,
)
from brainstate._state import (
    BatchState,
    DelayState,
    FakeState,
    HiddenGroupState,
    HiddenState,
    HiddenTreeState,
    LongTermState,
    NewStateCatcher,
    ParamState,
    ShortTermState,
    State,
    StateMetadata,
    TreefyState,
    catch_new_states,
    check_state_jax_tracer,
    check_state_value_tree,
    maybe_state,
)
from brainstate._trace import StateTraceStack
from brainstate.util._dict_manager import DictManager, StateDictManager

from brainstate import _wiring  # noqa: E402

# Wire the core before any subpackage loads: some create states at import (random's default
# stream), and every state operation runs through the core's configuration.
_wiring.wire()

from brainstate import (  # noqa: E402  (subpackages)
    checkpoint, environ, graph, mixin, nn, random, transform, typing, util,
)
from brainstate import _deprecated  # noqa: E402

# brainstate.augment / .compile / .functional: the old names, forwarding with a warning
_deprecated.install(sys.modules[__name__])

# The upstream API level this package implements (0.5.4), with a local label that marks this
# distribution: pip treats it as 0.5.4 when the ecosystem asks for ``brainstate>=0.5``, so
# installing braintools or brainpy-state keeps this package instead of fetching upstream's.
__version__ = "0.5.4+compiled.1"

__all__ = [
    "checkpoint",
    "environ",
    "graph",
    "mixin",
    "nn",
    "random",
    "transform",
    "typing",
    "util",
    # errors
    "BrainStateError",
    "TraceContextError",
    "BatchAxisError",
    "StateSignatureError",
    # states
    "State",
    "ShortTermState",
    "LongTermState",
    "ParamState",
    "BatchState",
    "HiddenState",
    "DelayState",
    "HiddenGroupState",
    "HiddenTreeState",
    "FakeState",
    "TreefyState",
    "StateMetadata",
    "maybe_state",
    "check_state_value_tree",
    "check_state_jax_tracer",
    "catch_new_states",
    "NewStateCatcher",
    "StateTraceStack",
    "DictManager",
    "StateDictManager",
    # hooks
    "Hook",
    "HookHandle",
    "HookConfig",
    "HookManager",
    "GlobalHookRegistry",
    "HookContext",
    "ReadHookContext",
    "WriteHookContext",
    "MutableWriteHookContext",
    "RestoreHookContext",
    "InitHookContext",
    "HookError",
    "HookExecutionError",
    "HookRegistrationError",
    "HookCancellationError",
    "HookWarning",
    "register_state_hook",
    "unregister_state_hook",
    "clear_state_hooks",
    "has_state_hooks",
    "list_state_hooks",
]
