"""The one switch between the compiled core (``brainstate._core``) and its pure twin.

``BRAINSTATE_NO_EXTENSIONS=1`` forces the pure-Python core at run time. Every other module
imports core names from here, never from ``_core`` or ``_core_py`` directly. ``hook_dispatch``
is the pure twin's hook dispatch under either core: states of the hosted core
(``brainstate/_hosted.py``) are plain Python objects, whose hooks the compiled dispatch cannot
fire.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

# (loads the pure twin under the compiled core too: about 2 ms of `import brainstate`)
from brainstate._core_py import _hooks as hook_dispatch

__all__ = ["IMPLEMENTATION", "EXTENSION_ERROR", "NO_EXTENSIONS", "core", "EXPECTED_ABI",
           "hook_dispatch"]

#: ABI number of the compiled core this Python layer was written against. Bump it together with
#: ``CORE_ABI`` in ``csrc/_core.pyx`` whenever the contract in ``_core.pyi`` changes, so a stale
#: ``.so`` left over from an older build is refused instead of run.
EXPECTED_ABI = 5

NO_EXTENSIONS = os.environ.get("BRAINSTATE_NO_EXTENSIONS", "") not in ("", "0")
EXTENSION_ERROR: BaseException | None = None

if TYPE_CHECKING or NO_EXTENSIONS:
    from brainstate import _core_py as core
else:
    try:
        from brainstate import _core as core  # type: ignore[no-redef]

        if getattr(core, "CORE_ABI", None) != EXPECTED_ABI:
            raise ImportError(
                f"stale brainstate._core (CORE_ABI={getattr(core, 'CORE_ABI', None)}, "
                f"expected {EXPECTED_ABI}); rebuild with `pip install -e .`"
            )
    except ImportError as exc:  # pragma: no cover - exercised by the pure CI leg
        EXTENSION_ERROR = exc
        from brainstate import _core_py as core  # type: ignore[no-redef]

IMPLEMENTATION: str = "py" if core.__name__.endswith("_core_py") else "c"


_CONFIGURED: list = []


def configure_core(mod=None, *, metadata_type: type) -> None:
    """Hand a core (the active one by default) the Python callables it needs.

    Called by ``brainstate._state`` once ``StateMetadata`` exists, and by the test fixture for
    the other core. The hook-activity listener is shared, so every configured core learns when
    hooks appear.
    """
    import jax

    from brainstate import _hooks, _hosted, _messages, _signature
    from brainstate._jax_internals import jax_core

    mod = core if mod is None else mod
    if mod in _CONFIGURED:
        return
    pkg = os.path.dirname(os.path.abspath(__file__)) + os.sep
    hook_dispatch.configure_hooks(_hooks)
    mod.configure(
        tree_flatten=jax.tree_util.tree_flatten,
        leaf_spec=_signature.leaf_spec,
        array_type=_array_type(),
        key_array_type=_key_array_type(),
        tracer_type=jax.core.Tracer,
        trace_ctx=jax_core.trace_ctx,
        make_error=_messages.make_error,
        hooks=hook_dispatch,
        metadata_type=metadata_type,
        pkg_prefix=pkg,
        source_site=_messages.SourceSite,
        hosted_type=_hosted.HostedStateCore,
    )
    _hosted.configure(metadata_type)
    mod.configure_hooks(_hooks)
    mod.set_global_hook_registry(_hooks._global)
    _CONFIGURED.append(mod)
    mod.set_hooks_active(_hooks.active_count())
    _hooks.set_activity_listener(_broadcast_hook_activity)


def _array_type() -> type:
    """The concrete type of JAX arrays (``jax.Array`` instances)."""
    from brainstate import _jax_internals

    found = _jax_internals.array_type()
    if found is None:  # pragma: no cover - moved: pay for one array instead
        import jax

        return type(jax.numpy.zeros(()))
    return found


def _key_array_type() -> type:
    """The concrete type of typed PRNG key arrays (``jax.random.key``), or ``NoneType``."""
    from brainstate import _jax_internals

    found = _jax_internals.key_array_type()
    return type(None) if found is None else found  # None: the core's generic check


def _broadcast_hook_activity(count: int) -> None:
    for mod in _CONFIGURED:
        mod.set_hooks_active(count)
