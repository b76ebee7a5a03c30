"""Neural-network building blocks: ``Module`` and the models built on it."""

from brainstate.nn._module import Module

__all__ = [
    "Module",
]
