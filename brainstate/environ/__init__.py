"""Process-wide computing defaults and thread-local overrides (``dt``, precision, custom keys).

Two layers answer :func:`get`:

* process-wide settings, written by :func:`set` (and :func:`set_dt`, :func:`set_precision`,
  :func:`pop`, :func:`reset`) and seen at once by every thread;
* nested :func:`context` blocks, local to the thread (more exactly, to the :mod:`contextvars`
  context, so each thread and each asyncio task) that entered them, restored on exit and on
  exceptions.

Models read ``dt`` and the default dtypes at every step, so reads are the hot path: each
environment keeps, per thread, one *merged view* (a plain dict of settings overlaid with the
active contexts). It is rebuilt only when a context is entered or left and patched in place when
a setting changes, so :func:`get_dt` and :func:`get` cost one context-variable read and one dict
lookup.

Examples
--------
>>> import brainstate.environ as environ
>>> environ.set(dt=0.1)
>>> environ.get_dt()
0.1
>>> with environ.context(dt=0.01):
...     environ.get_dt()
0.01
>>> environ.get_dt()
0.1
>>> _ = environ.pop('dt')
"""

from __future__ import annotations

# The package's names are defined in private submodules, one per topic: _keys (key names,
# constants, validation), _state (EnvironmentState, the default environment, behaviours),
# _settings (set/get/pop/reset, dt), _context, _precision (precision and dtypes), _platform.
from brainstate.environ._context import context
from brainstate.environ._keys import (
    DEFAULT_PRECISION,
    DT,
    FIT,
    HOST_DEVICE_COUNT,
    JIT_ERROR_CHECK,
    PLATFORM,
    PRECISION,
    SUPPORTED_PLATFORMS,
    SUPPORTED_PRECISIONS,
    I,
    T,
)
from brainstate.environ._platform import (
    get_host_device_count,
    get_platform,
    set_host_device_count,
    set_platform,
)
from brainstate.environ._precision import (
    dctype,
    dftype,
    ditype,
    dutype,
    get_precision,
    set_precision,
    tolerance,
)
from brainstate.environ._settings import all, get, get_dt, pop, reset, set, set_dt
from brainstate.environ._state import (
    EnvironmentState,
    list_registered_behaviors,
    register_default_behavior,
    unregister_default_behavior,
)

__all__ = [
    # settings and contexts
    "EnvironmentState",
    "set",
    "get",
    "all",
    "pop",
    "context",
    "reset",
    # platform and devices
    "set_platform",
    "get_platform",
    "set_host_device_count",
    "get_host_device_count",
    # precision and default dtypes
    "set_precision",
    "get_precision",
    "dftype",
    "ditype",
    "dutype",
    "dctype",
    "tolerance",
    # integration step
    "set_dt",
    "get_dt",
    # behaviours run when a key changes
    "register_default_behavior",
    "unregister_default_behavior",
    "list_registered_behaviors",
    # constants
    "DEFAULT_PRECISION",
    "SUPPORTED_PLATFORMS",
    "SUPPORTED_PRECISIONS",
    # key names
    "I",
    "T",
    "DT",
    "PRECISION",
    "PLATFORM",
    "HOST_DEVICE_COUNT",
    "JIT_ERROR_CHECK",
    "FIT",
]
