"""The one switch between the compiled core (``brainstate._core``) and its pure twin.

``BRAINSTATE_NO_EXTENSIONS=1`` forces the pure-Python core at run time. Every other module
imports core names from here, never from ``_core`` or ``_core_py`` directly (the one exception
is the pure twin's hook dispatch, which hosted states use under either core). Wiring the chosen
core to the layers above it is ``brainstate/_wiring.py``'s job.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

__all__ = ["IMPLEMENTATION", "EXTENSION_ERROR", "NO_EXTENSIONS", "core", "EXPECTED_ABI"]

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
