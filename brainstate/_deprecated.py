"""Old module names kept for code written against earlier brainstate: ``brainstate.compile``,
``brainstate.augment`` and ``brainstate.functional``.

Each is a module object that forwards a fixed set of names to where they live now
(``brainstate.transform`` and ``brainstate.nn``) and warns with a ``DeprecationWarning`` that
names the replacement. Python's default warning filters show it only for code run as
``__main__`` (and under test runners), so libraries that still use the old names keep working
quietly for their users.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import Any

__all__: list[str] = []

_AUGMENT = ("GradientTransform", "grad", "vector_grad", "hessian", "jacobian", "jacrev",
            "jacfwd", "vmap")
_COMPILE = ("checkpoint", "remat", "cond", "switch", "ifelse", "jit_error_if", "jit", "scan",
            "checkpointed_scan", "for_loop", "checkpointed_for_loop", "while_loop",
            "bounded_while_loop", "StatefulFunction", "make_jaxpr", "ProgressBar")
_FUNCTIONAL = ("weight_standardization", "clip_grad_norm", "tanh", "relu", "squareplus",
               "softplus", "soft_sign", "sigmoid", "silu", "swish", "log_sigmoid", "elu",
               "leaky_relu", "hard_tanh", "celu", "selu", "gelu", "glu", "logsumexp",
               "log_softmax", "softmax", "standardize", "relu6", "hard_sigmoid", "sparse_plus",
               "hard_silu", "hard_swish", "hard_shrink", "rrelu", "mish", "soft_shrink", "prelu",
               "softmin", "one_hot", "sparse_sigmoid")


class DeprecatedModule(types.ModuleType):
    """A module whose names forward to ``target`` with a ``DeprecationWarning``.

    Parameters
    ----------
    name : str
        The old module name, e.g. ``"brainstate.augment"``.
    target : str
        The module the names live in now, e.g. ``"brainstate.transform"``.
    names : sequence of str
        The names the old module had; any other name is an ``AttributeError``.

    Examples
    --------
    >>> import warnings, brainstate
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     grad = brainstate.augment.grad
    >>> grad is brainstate.transform.grad, str(seen[0].message).split(";")[0]
    (True, 'brainstate.augment.grad is deprecated')
    """

    def __init__(self, name: str, target: str, names: tuple) -> None:
        super().__init__(name, f"Deprecated: use {target} instead.")
        self._target = target
        self.__all__ = list(names)

    def __getattr__(self, name: str) -> Any:
        # Only called for names not set on the module (PEP 562 semantics for instances).
        if name.startswith("_") or name not in self.__all__:
            raise AttributeError(
                f"module {self.__name__!r} has no attribute {name!r} (a deprecated module "
                f"that keeps only its old names; look in {self._target})."
            )
        warnings.warn(
            f"{self.__name__}.{name} is deprecated; use {self._target}.{name} instead.",
            DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(self._target), name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.__all__))


def install(package: Any) -> None:
    """Attach the deprecated modules to ``package`` and to ``sys.modules``."""
    for short, target, names in (("augment", "brainstate.transform", _AUGMENT),
                                 ("compile", "brainstate.transform", _COMPILE),
                                 ("functional", "brainstate.nn", _FUNCTIONAL)):
        full = f"{package.__name__}.{short}"
        mod = DeprecatedModule(full, target, names)
        sys.modules.setdefault(full, mod)
        setattr(package, short, sys.modules[full])
